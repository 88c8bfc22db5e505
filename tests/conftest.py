import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # tools/ (the build tools: tools.notebooks)
sys.path.insert(0, str(ROOT / "benchmarks"))  # what only the benchmarks use: sharding, certified_norm
os.environ.setdefault("COURSEKIT_CACHE", str(ROOT / ".cache" / "coursekit"))
os.environ.setdefault("COURSEKIT_PROGRESS", "off")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder for the test."""
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def mnist_test():
    from coursekit.data import load_mnist

    return load_mnist("test")


@pytest.fixture(scope="session")
def device():
    from coursekit.config import default_device

    return default_device()


def small_mlp(inputs: int = 16, hidden: int = 12, classes: int = 4, seed: int = 0) -> torch.nn.Module:
    """A small sigmoid network on [N, 1, √inputs, √inputs] images, for property tests."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(inputs, hidden), torch.nn.Sigmoid(), torch.nn.Linear(hidden, classes)
    ).eval()


def attackable_model(seed: int = 0) -> torch.nn.Module:
    """A softmax on 4×4 images whose logits vary enough over the box that attacks succeed."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 10)).eval()
    with torch.no_grad():
        model[1].weight.mul_(8)
    return model


class CountingNet(torch.nn.Module):
    """A small ReLU network that counts, in its own forward, the rows of each forward pass with
    and without a graph for backward, and the rows of each backward pass through its output:
    what the model saw, whatever the attack (or its PassCounter) believes."""

    def __init__(self, classes: int = 4):
        super().__init__()
        torch.manual_seed(2)
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(16, 20), torch.nn.ReLU(), torch.nn.Linear(20, classes)
        )
        with torch.no_grad():
            self.net[1].weight.mul_(3)
        self.rows = {"forward with graph": 0, "forward only": 0, "backward": 0}

    def forward(self, x):
        out = self.net(x)
        if out.requires_grad:
            self.rows["forward with graph"] += len(x)
            out.register_hook(lambda grad: self.rows.__setitem__("backward", self.rows["backward"] + len(grad)))
        else:
            self.rows["forward only"] += len(x)
        return out
