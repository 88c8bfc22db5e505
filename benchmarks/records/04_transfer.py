"""Chapter 4's larger run: Tables 2 and 4 and the chapter's headline rates with 95% intervals.

At the quick profile (100 training images for Table 2, 200 test images for Table 4) the key
contrast of Table 4 (the examples of FC100-100-10 on a model trained on the same half against
one trained on the other half) has overlapping intervals; this records the same computation at
a larger profile (the gpu profile: 2,000 images each, models trained with the paper's
settings), with the chapter's ``coursekit`` functions: ``transfer_table`` and ``fooled_pairs``
on the training sample of ``experiment_size("table1_images")`` (seed 0), ``robustness_table``
and ``cross_training_table`` on the first ``experiment_size("table4_images")`` test images, and
``report.transfer_headline``. Writes ``04_table2``, ``04_table4`` and ``04_headline``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from coursekit.config import default_device, experiment_size
from coursekit.data import load_mnist, load_subset
from coursekit.models import TABLE1_MODELS
from coursekit.records import DEFAULT_MODULES, provenance, write_record
from coursekit.report import robustness_table, transfer_headline
from coursekit.train import train
from coursekit.transfer import PAPER_METHOD, cross_training_table, fooled_pairs, transfer_table

MODULES = (*DEFAULT_MODULES, "report", "paper", "box_lbfgs", "_checks")


def _halves(profile: str) -> dict:
    return {
        "FC100-100-10": train("FC100-100-10", subset="P1", profile=profile),
        "FC123-456-10": train("FC123-456-10", subset="P1", profile=profile),
        "FC100-100-10'": train("FC100-100-10", subset="P2", profile=profile),
    }


def record(profile: str, out: Path, command: str) -> list[Path]:
    """Compute Tables 2 and 4 and the headline at ``profile``; write the three records."""
    x, y = load_mnist("train")
    count = experiment_size("table1_images", profile)
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:count]
    xs, ys = x[pick], y[pick]
    zoo = {name: train(name, profile=profile) for name in TABLE1_MODELS}
    start = time.perf_counter()
    options = {"cache": False, "progress_bar": False, **PAPER_METHOD}
    table = transfer_table(zoo, zoo, xs, ys, noise_stddevs=(0.1, 0.3), **options)
    adversarial_pairs, noise_pairs = fooled_pairs(zoo, xs, ys, table.adversarial)
    x_test, y_test = load_mnist("test")
    count4 = experiment_size("table4_images", profile)
    xt, yt = x_test[:count4], y_test[:count4]
    halves = _halves(profile)
    error_sets = {"error on P1": load_subset("P1"), "error on P2": load_subset("P2"), "error on test": (x_test, y_test)}
    _, test_attacks = robustness_table(halves, error_sets, (xt, yt), **options)
    table4 = cross_training_table(halves, test_attacks, xt, yt, noise_stddev=0.06)
    headline = transfer_headline(adversarial_pairs, noise_pairs, table4, count4)
    seconds = round(time.perf_counter() - start, 1)
    sizes = {"images": count, "test_images": count4, "targets": 9, "attack_seconds": seconds}
    prov = provenance(command, default_device(), profile, sizes, MODULES)
    table2 = table.errors.copy()
    table2.index.name = "examples for"
    table4.index.name = "examples"
    headline.index.name = "measured"
    return [
        write_record(out, "04_table2", "Table 2: cross-model error rates (the paper's method)", table2, prov),
        write_record(out, "04_table4", "Table 4: cross-training-set error rates", table4, prov),
        write_record(out, "04_headline", "Chapter 4's headline rates with 95% intervals", headline, prov),
    ]
