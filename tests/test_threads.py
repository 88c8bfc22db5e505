"""CPU thread settings (coursekit.threads: cpu_threads / apply_cpu_threads; config.use_options): the count
is chosen once, at set-up; library calls leave it as the caller set it."""

import os
import subprocess
import sys

import pytest
import torch

from coursekit import config, threads


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    """Every test gets torch's count back, and a fresh record of the counts coursekit set."""
    monkeypatch.setattr(threads, "_APPLIED", [])
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_cpu_threads_reads_the_environment(monkeypatch):
    monkeypatch.setenv("COURSEKIT_THREADS", "3")
    assert threads.cpu_threads() == 3
    monkeypatch.setenv("COURSEKIT_THREADS", "torch")
    assert threads.cpu_threads() is None
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("COURSEKIT_THREADS", bad)
        with pytest.raises(ValueError, match="COURSEKIT_THREADS"):
            threads.cpu_threads()


def _machine(monkeypatch, cpus: int, torch_threads: int, quota=None):
    monkeypatch.delenv("COURSEKIT_THREADS", raising=False)
    monkeypatch.setattr(threads, "_TORCH_THREADS", torch_threads)
    monkeypatch.setattr(threads, "allowed_cpus", lambda: list(range(cpus)))
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: quota)


def test_auto_leaves_the_other_processes_their_cores(monkeypatch):
    _machine(monkeypatch, cpus=2, torch_threads=2)
    for load, expected in ((0.05, 2), (0.4, 2), (0.9, 1), (1.6, 1), (5.0, 1), (None, None)):
        monkeypatch.setattr(threads, "other_cpu_load", lambda window=0.2, value=load: value)
        assert threads.cpu_threads() == expected, load
    _machine(monkeypatch, cpus=16, torch_threads=16)
    monkeypatch.setattr(threads, "other_cpu_load", lambda window=0.2: 3.2)
    assert threads.cpu_threads() == 13
    monkeypatch.setenv("COURSEKIT_THREADS", "auto")
    assert threads.cpu_threads() == 13
    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    assert threads.cpu_threads() == 1
    _machine(monkeypatch, cpus=16, torch_threads=16, quota=2.5)  # a container's CPU quota
    assert threads.cpu_threads() == 2


def _stat(busy: dict, total: int = 1000) -> str:
    """A /proc/stat with 4 CPUs, ``total`` jiffies each since boot, ``busy`` {cpu: busy jiffies}."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{c} {busy.get(c, 0)} 0 0 {total - busy.get(c, 0)} 0 0 0 0 0 0" for c in range(4)]
    return "\n".join(lines + ["intr 0"]) + "\n"


def test_the_load_is_read_on_the_cpus_this_process_may_use(monkeypatch, tmp_path):
    """Issue 24 item 9: the load was read over the whole machine, so a job pinned to two idle
    CPUs of a busy machine dropped to one thread. Two CPUs busy elsewhere: none here."""
    stat = tmp_path / "stat"
    stat.write_text(_stat({}))
    monkeypatch.setattr(threads, "PROC_STAT", str(stat))
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: stat.write_text(_stat({2: 1000, 3: 1000}, 2000)))
    monkeypatch.setattr(threads.time, "process_time", lambda: 0.0)
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1])
    assert threads.other_cpu_load() == 0
    stat.write_text(_stat({}))
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1, 2, 3])
    assert threads.other_cpu_load() == pytest.approx(2.0)
    stat.write_text(_stat({}))
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: stat.write_text(_stat({1: 500, 2: 1000}, 2000)))
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1])
    assert threads.other_cpu_load() == pytest.approx(0.5)


def test_allowed_cpus_is_the_affinity():
    assert threads.allowed_cpus() == sorted(os.sched_getaffinity(0))


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_the_cgroup_quota_is_read_along_the_cgroups_ancestors(monkeypatch, tmp_path, version):
    root = tmp_path / "cgroup"
    if version == "v2":
        (root / "a" / "b").mkdir(parents=True)
        (root / "a" / "b" / "cpu.max").write_text("max 100000\n")
        (root / "a" / "cpu.max").write_text("150000 100000\n")
        (root / "cpu.max").write_text("400000 100000\n")
        line = "0::/a/b"
    else:
        (root / "cpu" / "x").mkdir(parents=True)
        (root / "cpu" / "x" / "cpu.cfs_quota_us").write_text("150000\n")
        (root / "cpu" / "x" / "cpu.cfs_period_us").write_text("100000\n")
        (root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
        (root / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
        line = "4:cpu,cpuacct:/x\n0::/"
    (tmp_path / "cgroup_of_self").write_text(line + "\n")
    monkeypatch.setattr(threads, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(threads, "PROC_SELF_CGROUP", str(tmp_path / "cgroup_of_self"))
    assert threads.cgroup_cpu_quota() == 1.5
    monkeypatch.setattr(threads, "PROC_SELF_CGROUP", str(tmp_path / "absent"))
    assert threads.cgroup_cpu_quota() is None


class _ThreadsSeen(torch.nn.Module):
    """A small softmax that records torch's thread count at each forward pass."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(16, 10)
        with torch.no_grad():
            self.fc.weight.mul_(8)
        self.seen = set()

    def forward(self, x):
        self.seen.add(torch.get_num_threads())
        return self.fc(x.flatten(1))


def test_a_count_the_caller_set_is_kept(monkeypatch):
    """Issue 24 item 9: on an idle 4-core machine the first call set 4 threads over the caller's
    explicit torch.set_num_threads(1)."""
    monkeypatch.setenv("COURSEKIT_DEVICE", "cpu")
    _machine(monkeypatch, cpus=4, torch_threads=4)
    monkeypatch.setattr(threads, "other_cpu_load", lambda window=0.2: 0.0)
    torch.set_num_threads(1)
    config.use_options()
    assert threads.apply_cpu_threads("cpu") == 1 and torch.get_num_threads() == 1


def test_use_options_chooses_the_count(monkeypatch):
    """The chapters' option cell sets torch's count: COURSEKIT_THREADS, or (auto) the allowed
    CPUs the other processes leave free; run again, it looks again (a count it set itself is
    not the caller's); on a GPU it leaves the count alone."""
    monkeypatch.setenv("COURSEKIT_DEVICE", "cpu")
    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    torch.set_num_threads(2)
    config.use_options()
    assert torch.get_num_threads() == 1
    _machine(monkeypatch, cpus=2, torch_threads=2)
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "other_cpu_load", lambda window=0.2: 0.9)  # another process on one core
    config.use_options()
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(threads, "other_cpu_load", lambda window=0.2: 0.0)  # it has gone
    config.use_options()
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("COURSEKIT_DEVICE", "cuda")
    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    config.use_options()
    assert torch.get_num_threads() == 2


def _attack_problem():
    model = _ThreadsSeen().eval()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    return model, x, torch.tensor([0, 1])


def test_an_attack_leaves_the_callers_count(monkeypatch):
    """No library call changes torch's count, even where COURSEKIT_THREADS says otherwise (it
    is read at set-up, by use_options)."""
    from coursekit.attack import lbfgs_attack, min_distortion_attack

    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    torch.set_num_threads(2)
    model, x, target = _attack_problem()
    lbfgs_attack(model, x, target, search_steps=1, max_iter=3)
    min_distortion_attack(model, x, target, progress_bar=False, search_steps=1, max_iter=3)
    assert model.seen == {2} and torch.get_num_threads() == 2
    monkeypatch.setenv("COURSEKIT_THREADS", "auto")  # auto on an idle machine would choose 4
    _machine(monkeypatch, cpus=4, torch_threads=4)
    monkeypatch.setattr(threads, "other_cpu_load", lambda window=0.2: 0.0)
    lbfgs_attack(model, x, target, search_steps=1, max_iter=3)
    assert model.seen == {2} and torch.get_num_threads() == 2


def test_training_leaves_the_callers_count(monkeypatch):
    import dataclasses

    from coursekit.models import build
    from coursekit.train import fit, settings_for

    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    torch.set_num_threads(2)
    model = build("FC10(1e-4)")
    seen = set()
    model.register_forward_hook(lambda *args: seen.add(torch.get_num_threads()))
    x, y = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 10
    settings = dataclasses.replace(settings_for("FC10(1e-4)", "quick"), epochs=1, lbfgs_iterations=2)
    fit(model, x, y, settings)
    assert seen == {2} and torch.get_num_threads() == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_other_cpu_load_sees_a_busy_process_and_not_this_one():
    busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        import time

        time.sleep(0.3)
        with_competitor = threads.other_cpu_load(window=0.5)
    finally:
        busy.kill()
        busy.wait()
    assert with_competitor is not None and with_competitor >= 0.6


@pytest.mark.parametrize("window", [0, -1.0, float("nan"), "0.2", 60])
def test_other_cpu_load_names_a_bad_window(window):
    with pytest.raises(ValueError, match="window"):
        threads.other_cpu_load(window=window)
