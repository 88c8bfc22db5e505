"""CPU thread settings (coursekit.config.cpu_threads / apply_cpu_threads)."""

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


def test_auto_leaves_the_other_processes_their_cores(monkeypatch):
    monkeypatch.delenv("COURSEKIT_THREADS", raising=False)
    monkeypatch.setattr(config, "_TORCH_THREADS", 2)
    for load, expected in ((0.05, 2), (0.4, 2), (0.9, 1), (1.6, 1), (5.0, 1), (None, None)):
        monkeypatch.setattr(config, "other_cpu_load", lambda window=0.2, value=load: value)
        assert config.cpu_threads() == expected, load
    monkeypatch.setattr(config, "_TORCH_THREADS", 16)
    monkeypatch.setattr(config, "other_cpu_load", lambda window=0.2: 3.2)
    assert config.cpu_threads() == 13
    monkeypatch.setenv("COURSEKIT_THREADS", "auto")
    assert config.cpu_threads() == 13
    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    assert config.cpu_threads() == 1


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


def test_auto_looks_again_after_a_while_but_keeps_the_users_choice(monkeypatch):
    monkeypatch.delenv("COURSEKIT_THREADS", raising=False)
    monkeypatch.setattr(config, "_THREADS_APPLIED", [])
    before = torch.get_num_threads()
    clock = [1000.0]
    monkeypatch.setattr(config.time, "monotonic", lambda: clock[0])
    answers = iter([1, 2, 1])
    monkeypatch.setattr(config, "cpu_threads", lambda: next(answers))
    try:
        assert config.apply_cpu_threads("cpu") == 1
        clock[0] += 5  # too soon: no second look
        assert config.apply_cpu_threads("cpu") == 1
        clock[0] += config.REPROBE_SECONDS
        assert config.apply_cpu_threads("cpu") == 2  # the other process has gone
        torch.set_num_threads(3)  # the user's own choice
        clock[0] += 2 * config.REPROBE_SECONDS
        assert config.apply_cpu_threads("cpu") == 3
    finally:
        torch.set_num_threads(before)


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


def test_training_applies_the_setting_once():
    fit = ("from coursekit.models import build\nfrom coursekit.train import fit, settings_for\n"
           "import dataclasses\n"
           "m = build('FC10(1e-4)'); x = torch.rand(20, 1, 28, 28); y = torch.arange(20) % 10\n"
           "s = dataclasses.replace(settings_for('FC10(1e-4)', 'quick'), epochs=1, lbfgs_iterations=2)\n"
           "fit(m, x, y, s)\nprint(torch.get_num_threads())\n"
           "torch.set_num_threads(2)\nfit(m, x, y, s)")  # a second fit leaves the user's choice
    first, second = _threads_after(fit, "1")
    assert (first, second) == (1, 2)


@pytest.mark.parametrize("window", [0, -1.0, float("nan"), "0.2", 60])
def test_other_cpu_load_names_a_bad_window(window):
    with pytest.raises(ValueError, match="window"):
        config.other_cpu_load(window=window)
