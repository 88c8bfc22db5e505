"""CPU thread settings (coursekit.config.cpu_threads / cpu_threads_for / apply_cpu_threads)."""

import os
import subprocess
import sys

import pytest
import torch

from coursekit import config


def test_cpu_threads_reads_the_environment(monkeypatch):
    monkeypatch.setenv("COURSEKIT_THREADS", "3")
    assert config.cpu_threads() == 3
    monkeypatch.setenv("COURSEKIT_THREADS", "torch")
    assert config.cpu_threads() is None
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("COURSEKIT_THREADS", bad)
        with pytest.raises(ValueError, match="COURSEKIT_THREADS"):
            config.cpu_threads()


def _machine(monkeypatch, cpus: int, torch_threads: int, quota=None):
    monkeypatch.delenv("COURSEKIT_THREADS", raising=False)
    monkeypatch.setattr(config, "_TORCH_THREADS", torch_threads)
    monkeypatch.setattr(config, "allowed_cpus", lambda: list(range(cpus)))
    monkeypatch.setattr(config, "cgroup_cpu_quota", lambda: quota)


def test_auto_leaves_the_other_processes_their_cores(monkeypatch):
    _machine(monkeypatch, cpus=2, torch_threads=2)
    for load, expected in ((0.05, 2), (0.4, 2), (0.9, 1), (1.6, 1), (5.0, 1), (None, None)):
        monkeypatch.setattr(config, "other_cpu_load", lambda window=0.2, value=load: value)
        assert config.cpu_threads() == expected, load
    _machine(monkeypatch, cpus=16, torch_threads=16)
    monkeypatch.setattr(config, "other_cpu_load", lambda window=0.2: 3.2)
    assert config.cpu_threads() == 13
    monkeypatch.setenv("COURSEKIT_THREADS", "auto")
    assert config.cpu_threads() == 13
    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    assert config.cpu_threads() == 1
    _machine(monkeypatch, cpus=16, torch_threads=16, quota=2.5)  # a container's CPU quota
    assert config.cpu_threads() == 2


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
    monkeypatch.setattr(config, "PROC_STAT", str(stat))
    monkeypatch.setattr(config.time, "sleep", lambda seconds: stat.write_text(_stat({2: 1000, 3: 1000}, 2000)))
    monkeypatch.setattr(config.time, "process_time", lambda: 0.0)
    monkeypatch.setattr(config, "allowed_cpus", lambda: [0, 1])
    assert config.other_cpu_load() == 0
    stat.write_text(_stat({}))
    monkeypatch.setattr(config, "allowed_cpus", lambda: [0, 1, 2, 3])
    assert config.other_cpu_load() == pytest.approx(2.0)
    stat.write_text(_stat({}))
    monkeypatch.setattr(config.time, "sleep", lambda seconds: stat.write_text(_stat({1: 500, 2: 1000}, 2000)))
    monkeypatch.setattr(config, "allowed_cpus", lambda: [0, 1])
    assert config.other_cpu_load() == pytest.approx(0.5)


def test_allowed_cpus_is_the_affinity():
    assert config.allowed_cpus() == sorted(os.sched_getaffinity(0))


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
    monkeypatch.setattr(config, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(config, "PROC_SELF_CGROUP", str(tmp_path / "cgroup_of_self"))
    assert config.cgroup_cpu_quota() == 1.5
    monkeypatch.setattr(config, "PROC_SELF_CGROUP", str(tmp_path / "absent"))
    assert config.cgroup_cpu_quota() is None


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
    from coursekit.attack import min_distortion_attack

    _machine(monkeypatch, cpus=4, torch_threads=4)
    monkeypatch.setattr(config, "other_cpu_load", lambda window=0.2: 0.0)
    monkeypatch.setattr(config, "_PROBE", [])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model = _ThreadsSeen().eval()
        x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
        min_distortion_attack(model, x, torch.tensor([0, 1]), progress_bar=False, search_steps=1, max_iter=3)
        assert model.seen == {1} and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_library_call_restores_the_callers_count(monkeypatch):
    """The thread count a call chose is the caller's again when it returns, also when it raises."""
    from coursekit.attack import lbfgs_attack

    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model = _ThreadsSeen().eval()
        x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
        lbfgs_attack(model, x, torch.tensor([0, 1]), search_steps=1, max_iter=3)
        assert model.seen == {1} and torch.get_num_threads() == 2
        with config.cpu_threads_for("cpu"), pytest.raises(RuntimeError):
            raise RuntimeError("a failing computation")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_other_cpu_load_sees_a_busy_process_and_not_this_one():
    busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        import time

        time.sleep(0.3)
        with_competitor = config.other_cpu_load(window=0.5)
    finally:
        busy.kill()
        busy.wait()
    assert with_competitor is not None and with_competitor >= 0.6


def test_auto_looks_again_after_a_while(monkeypatch):
    _machine(monkeypatch, cpus=4, torch_threads=torch.get_num_threads())
    monkeypatch.setattr(config, "_PROBE", [])
    clock = [1000.0]
    monkeypatch.setattr(config.time, "monotonic", lambda: clock[0])
    answers = iter([1, 2])
    monkeypatch.setattr(config, "cpu_threads", lambda: next(answers))
    with config.cpu_threads_for("cpu") as first:
        assert first == 1
    clock[0] += 5  # too soon: no second look
    with config.cpu_threads_for("cpu") as second:
        assert second == 1
    clock[0] += config.REPROBE_SECONDS
    with config.cpu_threads_for("cpu") as third:
        assert third == 2  # the other process has gone


def _threads_after(code: str, env_value: str | None) -> list[int]:
    """Run ``code`` in a fresh interpreter (torch's thread count is per process); the thread
    counts it printed."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "COURSEKIT_THREADS"}
    env["COURSEKIT_DEVICE"] = "cpu"
    if env_value is not None:
        env["COURSEKIT_THREADS"] = env_value
    script = f"import torch\ntorch.set_num_threads(2)\n{code}\nprint(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    return [int(line) for line in out.stdout.split()]


def test_training_sets_the_threads_for_itself_only():
    fit = (
        "from coursekit.models import build\nfrom coursekit.train import fit, settings_for\n"
        "import dataclasses\n"
        "m = build('FC10(1e-4)'); x = torch.rand(20, 1, 28, 28); y = torch.arange(20) % 10\n"
        "s = dataclasses.replace(settings_for('FC10(1e-4)', 'quick'), epochs=1, lbfgs_iterations=2)\n"
        "seen = []\nm.register_forward_hook(lambda *a: seen.append(torch.get_num_threads()))\n"
        "fit(m, x, y, s)\nprint(min(seen))\nprint(max(seen))"
    )
    during_min, during_max, after = _threads_after(fit, "1")
    assert (during_min, during_max, after) == (1, 1, 2)  # the caller's 2 threads again afterwards


@pytest.mark.parametrize("window", [0, -1.0, float("nan"), "0.2", 60])
def test_other_cpu_load_names_a_bad_window(window):
    with pytest.raises(ValueError, match="window"):
        config.other_cpu_load(window=window)
