"""Chapter 3b's larger run: Table 1's last column with its 95% interval, per model.

The chapter computes the column at the quick profile (100 training images per model), where
the interval is a few thousandths wide; this record holds the same computation at a larger
profile (the gpu profile: 2,000 images per model, the models trained with the paper's
settings), with the same ``coursekit`` functions: the sample of ``experiment_size
("table1_images")`` training images drawn with seed 0, ``adversarial_examples(...,
**PAPER_ATTACK)`` and ``report.distortion_column``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from coursekit.config import default_device, experiment_size
from coursekit.data import load_mnist
from coursekit.models import TABLE1_MODELS
from coursekit.paper import PAPER_ATTACK, TABLE1
from coursekit.records import DEFAULT_MODULES, provenance, write_record
from coursekit.report import distortion_column
from coursekit.train import train
from coursekit.transfer import adversarial_examples

NAME = "03b_table1"
TITLE = "Table 1, last column: average minimum distortion with its 95% interval (the paper's method)"
COLUMNS = ["ours", "low", "high", "reached", "images"]


def record(profile: str, out: Path, command: str) -> list[Path]:
    """Compute the column at ``profile`` and write ``out/03b_table1.json``; returns its path."""
    x, y = load_mnist("train")
    count = experiment_size("table1_images", profile)
    subset = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:count]
    models = {name: train(name, profile=profile) for name in TABLE1_MODELS}
    start = time.perf_counter()
    attacks = {
        name: adversarial_examples(model, x[subset], y[subset], cache=False, progress_bar=False, **PAPER_ATTACK)
        for name, model in models.items()
    }
    seconds = time.perf_counter() - start
    column = distortion_column(attacks, {name: TABLE1[name][2] for name in TABLE1_MODELS})[COLUMNS]
    sizes = {"images": count, "targets": 9, "attack_seconds": round(seconds, 1)}
    modules = (*DEFAULT_MODULES, "report", "paper", "box_lbfgs", "_checks")
    prov = provenance(command, default_device(), profile, sizes, modules)
    return [write_record(out, NAME, TITLE, column, prov)]
