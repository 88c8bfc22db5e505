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
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("COURSEKIT_THREADS", bad)
        with pytest.raises(ValueError, match="COURSEKIT_THREADS"):
            config.cpu_threads()


def test_default_keeps_torchs_threads(monkeypatch):
    monkeypatch.delenv("COURSEKIT_THREADS", raising=False)
    for cores in (2, 16):
        monkeypatch.setattr(config.os, "cpu_count", lambda: cores)
        assert config.cpu_threads() is None
    monkeypatch.setenv("COURSEKIT_THREADS", "1")
    assert config.cpu_threads() == 1


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
