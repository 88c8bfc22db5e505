"""Where things run: the device, the profile (quick, gpu or paper) and the cache folder.

Every chapter and every ``coursekit`` function that trains or attacks takes its sizes from a
*profile*; all run the same code, only the sizes differ:

``quick``
    the default on a CPU (CI, a laptop): few epochs, 100-200 images per experiment.
``gpu``
    the default on a GPU: the paper's training, experiments on a few thousand images, sized so
    that each chapter, run alone on a fresh Colab VM with a free T4, takes at most 10 minutes
    (the cost model and its figures: ``benchmarks/RESULTS.md``).
``paper``
    the paper's full scale (60,000 × 9 attacks per model): opt-in, about an hour per chapter
    on a T4. ``full`` is accepted as its old name.

The sizes of every profile are in one read-only table, ``PROFILE_TABLE`` (sections:
experiments, training, pools, modern, verify), read through ``profile_sizes`` only
(``experiment_size`` for one experiment); the modules' ``EXPERIMENT_SIZES``,
``PROFILE_SETTINGS``, ``POOL_PROFILES``, ``MODERN_SIZES`` and ``VERIFY_SIZES`` are views made
from it (``profile_views``), kept for the chapters that read them.

Environment variables (all optional); these are every ``COURSEKIT_*`` variable the package reads:

``COURSEKIT_PROFILE``
    ``quick``, ``gpu`` or ``paper``; overrides the device-based default (``resolve_profile``;
    a chapter's option cell sets it through ``use_options``).
``COURSEKIT_DEVICE``
    a torch device string such as ``cpu`` or ``cuda:0`` (``default_device``).
``COURSEKIT_CACHE``
    the folder for downloaded data, trained models and attack results (default
    ``~/.cache/coursekit``; ``use_options(drive=True)`` points it at Google Drive on Colab).
``COURSEKIT_THREADS``
    torch's intra-op threads on a CPU: a positive int, ``torch`` (torch's own default) or
    ``auto`` (the default: the CPUs other processes leave free). Read once, at set-up:
    ``use_options`` (every chapter's option cell) and the benchmarks' start call
    ``threads.apply_cpu_threads``; no library function changes torch's thread count (the thread
    code is its own module, ``coursekit.threads``; its names stay importable from here).
``COURSEKIT_PROGRESS``
    ``auto`` (default), ``text`` (text progress bars, as the book build uses) or ``off``
    (``coursekit.progress``).
``COURSEKIT_WORKLOG``
    a file to which every training and attack appends one JSON line of its time and sizes
    (``progress.record_work``; ``make colab`` sets it per chapter).

(``COURSEKIT_INSTALL_SOURCE`` is read by the chapters' first cell, not by the package: where
Colab installs ``coursekit`` from.)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from ._checks import check_choice, default_device  # default_device: importable from here too
from .threads import (  # kept importable from config, where the chapters and benchmarks import them
    CGROUP_ROOT,
    PROC_SELF_CGROUP,
    PROC_STAT,
    allowed_cpus,
    apply_cpu_threads,
    cgroup_cpu_quota,
    cpu_threads,
    other_cpu_load,
)

__all__ = [
    "CGROUP_ROOT",
    "DRIVE_CACHE",
    "EXPERIMENT_SIZES",
    "PROC_SELF_CGROUP",
    "PROC_STAT",
    "PROFILE_ALIASES",
    "PROFILES",
    "PROFILE_SECTIONS",
    "PROFILE_TABLE",
    "allowed_cpus",
    "apply_cpu_threads",
    "attack_chunk_size",
    "cache_dir",
    "cgroup_cpu_quota",
    "cpu_threads",
    "default_device",
    "describe_runtime",
    "experiment_size",
    "other_cpu_load",
    "profile_sizes",
    "profile_views",
    "resolve_profile",
    "use_options",
]

PROFILES = ("quick", "gpu", "paper")
PROFILE_ALIASES = {"full": "paper"}


def resolve_profile(profile: str | None = None) -> str:
    """Return ``profile`` checked, or the default: ``COURSEKIT_PROFILE``, else ``gpu`` on a GPU and
    ``quick`` on a CPU.

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    if profile is None:
        profile = os.environ.get("COURSEKIT_PROFILE") or ("gpu" if default_device().type == "cuda" else "quick")
    profile = PROFILE_ALIASES.get(profile, profile)
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


DRIVE_CACHE = "/content/drive/MyDrive/coursekit-cache"


def use_options(profile: str = "auto", drive: bool = False, drive_cache: str = DRIVE_CACHE) -> None:
    """Apply a chapter's option cell: the profile, torch's CPU threads, and (on Colab) Google
    Drive as the cache.

    ``profile``: ``"auto"`` (keep the default: ``COURSEKIT_PROFILE`` or the device's) or one of
    ``PROFILES``. ``drive``: on Colab, mount Google Drive and keep trained models and attacks in
    ``drive_cache``, so that the next chapter, on a new runtime, reuses them. Elsewhere (no
    ``google.colab``) ``drive=True`` only prints that the local cache is used. On a CPU the
    thread count is chosen here, once (``apply_cpu_threads``: ``COURSEKIT_THREADS``, or the CPUs
    other processes leave free; a count the caller set with ``torch.set_num_threads`` is kept).
    In IPython, figures are shown with their text descriptions from here on (``figures.install``).

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    chosen = None if profile == "auto" else resolve_profile(profile)  # every argument checked before
    if not isinstance(drive, bool):  # anything changes
        raise TypeError(f"drive must be True or False, got {drive!r}")
    if not isinstance(drive_cache, str) or not drive_cache:
        raise TypeError(f"drive_cache must be a folder path (a non-empty str), got {drive_cache!r}")
    if chosen is not None:
        os.environ["COURSEKIT_PROFILE"] = chosen
    apply_cpu_threads()
    from .figures import install

    install()  # figures shown with their text descriptions (alt text), in IPython
    if not drive:
        return
    if "google.colab" not in sys.modules:
        print(f"Google Drive is a Colab option; keeping the local cache {cache_dir()}")
        return
    from google.colab import drive as google_drive

    mountpoint = drive_cache.split("/MyDrive")[0] if "/MyDrive" in drive_cache else "/content/drive"
    google_drive.mount(mountpoint)
    os.environ["COURSEKIT_CACHE"] = drive_cache
    print(f"cache: {cache_dir()} (Google Drive)")


def cache_dir() -> Path:
    """The cache folder (created if absent): ``COURSEKIT_CACHE`` or ``~/.cache/coursekit``."""
    root = os.environ.get("COURSEKIT_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "coursekit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def describe_runtime(profile: str | None = None) -> str:
    """One line for a chapter's first output: device, GPU name, profile and torch version.

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    device = default_device()
    where = str(device)
    if device.type == "cuda":
        where += f" ({torch.cuda.get_device_name(device)})"
    line = f"device: {where} | profile: {resolve_profile(profile)} | torch {torch.__version__}"
    if device.type == "cpu" and "google.colab" in sys.modules:
        line += "\nNo GPU: on Colab choose Runtime → Change runtime type → T4 GPU, then run all."
    return line


# Every size any chapter or module uses, per profile: the one profile table, read through
# ``profile_sizes`` (and ``experiment_size``). Sections: "experiments" (images per experiment of
# the chapters and the reproduction script), "training" (``train.TrainSettings`` fields per kind of
# model; "fc10_lbfgs_iterations": the FC10 softmax models' full-batch L-BFGS), "pools"
# (``adversarial_training.PoolSettings``), "modern" (chapter 7: attacks after the paper, PGD
# training) and "verify" (exact verification; the solver runs on the CPU in every profile).
_PAPER_TRAINING = {  # on a GPU the paper's training is cheap (≤ 2 min on a T4): "gpu" uses it too
    "fc": {"epochs": 30, "batch_size": 64, "lr": 1e-2},
    "cnn": {"epochs": 15, "lr": 2e-3},
    "ae": {"ae_epochs": 60, "lr": 3e-3, "lbfgs_iterations": 500},
    "fc10_lbfgs_iterations": 500,
}
_PROFILES: dict[str, dict[str, dict]] = {
    "quick": {  # the default on a CPU (CI, a laptop)
        "experiments": {
            "table1_images": 100,  # training images attacked per model (Table 1 distortion, Table 2 rows)
            "table4_images": 200,  # test images attacked per model (Tables 3-4)
            "units_random_directions": 100,
            "training_chapter_images": 100,  # test images attacked per model in the last chapter
        },
        "training": {
            "fc": {"epochs": 12, "lr": 1e-2},
            "cnn": {"epochs": 3, "lr": 2e-3},
            "ae": {"ae_epochs": 8, "lr": 3e-3, "lbfgs_iterations": 200},
            "fc10_lbfgs_iterations": 200,
        },
        # refreshed every 600 steps (was 300): the refreshes' attacks were most of the pools' cost
        "pools": {"pool_size": 500, "refresh_fraction": 0.2, "refresh_every": 600, "pool_batch": 32},
        "modern": {
            "models": ("FC10(1e-4)", "FC100-100-10"),  # the zoo models compared
            "images": 100,  # test images attacked per model
            "pgd_steps": 20,  # PGD steps of the error-vs-ε curves
            "cw_search_steps": 5,  # C&W: values of c × Adam steps, learning rate
            "cw_steps": 200,
            "cw_lr": 0.05,
            "ddn_steps": 100,
            "madry_epochs": 4,  # PGD training: epochs, PGD steps per batch
            "madry_steps": 3,
        },
        "verify": {"images": 5, "widths": (16, 32), "timing_images": 2, "time_limit": 60.0},
    },
    "gpu": {  # each chapter ≤ 10 min on a free Colab T4 (cost model: benchmarks/RESULTS.md)
        "experiments": {
            "table1_images": 2_000,
            "table4_images": 2_000,
            "units_random_directions": 1000,
            "training_chapter_images": 1_000,
        },
        "training": _PAPER_TRAINING,
        "pools": {"pool_size": 2_000, "refresh_fraction": 0.1, "refresh_every": 200, "pool_batch": 64},
        "modern": {  # a Colab T4; not yet timed there
            "models": ("FC10(1e-4)", "FC100-100-10", "CNN"),
            "images": 1000,
            "pgd_steps": 40,
            "cw_search_steps": 9,
            "cw_steps": 500,
            "cw_lr": 0.01,
            "ddn_steps": 300,
            "madry_epochs": 15,
            "madry_steps": 7,
        },
        "verify": {"images": 20, "widths": (16, 32), "timing_images": 5, "time_limit": 60.0},
    },
    "paper": {  # the paper's scale
        "experiments": {
            "table1_images": 60_000,  # the whole training set, as the paper
            "table4_images": 10_000,  # the whole test set, as the paper
            "units_random_directions": 1000,
            "training_chapter_images": 10_000,
        },
        "training": _PAPER_TRAINING,
        "pools": {"pool_size": 10_000, "refresh_fraction": 0.1, "refresh_every": 200, "pool_batch": 64},
        "modern": {  # the scale of the papers cited (C&W: 9 × 10,000 steps)
            "models": ("FC10(1e-4)", "FC100-100-10", "CNN"),
            "images": 10_000,
            "pgd_steps": 100,
            "cw_search_steps": 9,
            "cw_steps": 10_000,
            "cw_lr": 0.01,
            "ddn_steps": 1000,
            "madry_epochs": 30,
            "madry_steps": 40,
        },
        "verify": {"images": 100, "widths": (16, 32, 64), "timing_images": 10, "time_limit": 300.0},
    },
}
PROFILE_SECTIONS = ("experiments", "training", "pools", "modern", "verify")


def _read_only(value: Any) -> Any:
    """``value`` with every dict in it turned into a read-only view (``MappingProxyType``)."""
    if isinstance(value, dict):
        return MappingProxyType({key: _read_only(item) for key, item in value.items()})
    return value


# Read-only: a chapter or a function that changed a size would change it for every later reader.
PROFILE_TABLE: Mapping[str, Mapping[str, Mapping[str, Any]]] = _read_only(_PROFILES)


def profile_sizes(section: str, profile: str | None = None) -> Mapping[str, Any]:
    """The sizes of ``section`` (one of PROFILE_SECTIONS) under ``profile`` (default: the current
    one, ``resolve_profile``), read-only: the one way the package reads the profile table. Every
    other way (``experiment_size``, the modules' views ``EXPERIMENT_SIZES``, ``PROFILE_SETTINGS``,
    ``POOL_PROFILES``, ``MODERN_SIZES``, ``VERIFY_SIZES``) is made from it."""
    check_choice("section", section, PROFILE_SECTIONS)
    return PROFILE_TABLE[resolve_profile(profile)][section]


def profile_views(section: str) -> Mapping[str, Mapping[str, Any]]:
    """{profile: ``profile_sizes(section, profile)``} for every profile, read-only: the modules'
    views of one section, kept importable for the chapters that read them (new code calls
    ``profile_sizes``)."""
    return MappingProxyType({profile: profile_sizes(section, profile) for profile in PROFILES})


# Kept for the readers of the old name (benchmarks/colab_budget.py); deprecated: ``profile_sizes``.
EXPERIMENT_SIZES = profile_views("experiments")


def experiment_size(name: str, profile: str | None = None) -> int:
    """The number of images (or directions) experiment ``name`` uses under ``profile``
    (``profile_sizes("experiments", profile)[name]``, with an error naming the known ones).

    Used in chapters 2 (book/02_unit_semantics.md), 3a (book/03a_lbfgs_attack.md),
    3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md) and
    6 (book/06_adversarial_training.md).
    """
    sizes = profile_sizes("experiments", profile)
    if name not in sizes:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sizes)}")
    return sizes[name]


def attack_chunk_size(
    device: torch.device | str,
    features: int,
    history: int = 10,
    extra_floats_per_pair: int = 0,
    fraction: float = 0.5,
    cap: int = 60_000,
) -> int:
    """How many (image, target) pairs one ``lbfgs_attack`` call may take on ``device``.

    Per pair the attack keeps its L-BFGS history (2·``history`` vectors of ``features``
    floats) and about 16 more such vectors (the start, the iterate, gradients, the best
    example, the search direction, backtracking copies), plus the model's activations
    (``extra_floats_per_pair``). On a GPU the chunk uses at most ``fraction`` of the memory
    that ``torch.cuda.mem_get_info`` reports free (a T4: about 15 GB); elsewhere ``cap``.
    """
    if features < 1 or history < 1 or not 0 < fraction <= 1:
        raise ValueError(f"need features ≥ 1, history ≥ 1, 0 < fraction ≤ 1; got {features}, {history}, {fraction}")
    device = torch.device(device)
    if device.type != "cuda":
        return cap
    free, _total = torch.cuda.mem_get_info(device)
    bytes_per_pair = 4 * ((2 * history + 16) * features + extra_floats_per_pair)
    return max(1, min(cap, int(fraction * free) // bytes_per_pair))
