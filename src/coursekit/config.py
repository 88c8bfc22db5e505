"""Where things run: the device, the profile (quick or full) and the cache folder.

Every chapter and every ``coursekit`` function that trains or attacks takes its sizes from a
*profile*: ``quick`` (the default on a CPU: CI, a laptop) or ``full`` (the default on a GPU:
the paper's sizes). Both run the same code; only the sizes differ.

Environment variables (all optional):

``COURSEKIT_PROFILE``
    ``quick`` or ``full``; overrides the device-based default.
``COURSEKIT_DEVICE``
    a torch device string such as ``cpu`` or ``cuda:0``.
``COURSEKIT_CACHE``
    the folder for downloaded data and trained models (default ``~/.cache/coursekit``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

PROFILES = ("quick", "full")


def default_device() -> torch.device:
    """The device the course computes on: ``COURSEKIT_DEVICE``, else CUDA when present, else CPU."""
    name = os.environ.get("COURSEKIT_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_profile(profile: str | None = None) -> str:
    """Return ``profile`` checked, or the default: ``COURSEKIT_PROFILE``, else ``full`` on a GPU and ``quick`` on a CPU."""
    if profile is None:
        profile = os.environ.get("COURSEKIT_PROFILE") or (
            "full" if default_device().type == "cuda" else "quick"
        )
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


def cache_dir() -> Path:
    """The cache folder (created if absent): ``COURSEKIT_CACHE`` or ``~/.cache/coursekit``."""
    root = os.environ.get("COURSEKIT_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "coursekit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def describe_runtime(profile: str | None = None) -> str:
    """One line for a chapter's first output: device, GPU name, profile and torch version."""
    device = default_device()
    where = str(device)
    if device.type == "cuda":
        where += f" ({torch.cuda.get_device_name(device)})"
    return f"device: {where} | profile: {resolve_profile(profile)} | torch {torch.__version__}"


# How many images each experiment uses, per profile. The chapters and the reproduction script
# read them from here, so that both run the same experiment. "full" is the paper's scale.
EXPERIMENT_SIZES = {
    "quick": {
        "table1_images": 100,  # training images attacked per model (Table 1 distortion, Table 2 rows)
        "table4_images": 200,  # test images attacked per model (Tables 3-4)
        "units_random_directions": 100,
        "training_chapter_images": 100,  # test images attacked per model in the last chapter
    },
    "full": {
        "table1_images": 60_000,  # the whole training set, as the paper
        "table4_images": 10_000,  # the whole test set, as the paper
        "units_random_directions": 1000,
        "training_chapter_images": 10_000,
    },
}


def experiment_size(name: str, profile: str | None = None) -> int:
    """The number of images (or directions) experiment ``name`` uses under ``profile``."""
    sizes = EXPERIMENT_SIZES[resolve_profile(profile)]
    if name not in sizes:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sizes)}")
    return sizes[name]
