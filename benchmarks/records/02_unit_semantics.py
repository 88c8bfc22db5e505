"""Chapter 2's larger run: single units against random directions, with more random directions.

The chapter scores the top-8 test images of every live unit of the last hidden layer of the CNN
and of FC100-100-10, and of random directions of the same layer (100 at the quick profile), by
label purity, and gives the 95% bootstrap interval of the difference of means (units − random).
A CPU's quick profile leaves that interval wide; this records the same computation
(``coursekit.units.compare_bases`` → ``coursekit.report.units_table``, the models trained at the
profile, FC200-200-10 as the reference features) at a larger profile, as ``02_units`` (rows: the
models; columns as ``units_table``), for the chapter's "What this run found".

    python benchmarks/record_chapters.py 02 --profile quick --out /tmp/records   # a quick try
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from coursekit.config import default_device, experiment_size
from coursekit.data import load_mnist
from coursekit.records import provenance, write_record
from coursekit.report import units_table
from coursekit.train import settings_for, train
from coursekit.units import activations, compare_bases

NAME = "02_units"
TITLE = "Single units against random directions: label purity of the top-8 test images"
MODULES = ("units", "report", "models", "train", "data", "config")  # the code the numbers depend on
MODELS = ("CNN", "FC100-100-10")
K = 8  # images per direction, as the chapter


def units_result(profile: str) -> tuple[pd.DataFrame, dict]:
    """The chapter's comparison at ``profile``: ``units_table`` of the CNN and FC100-100-10
    (models trained at ``profile``, cached like the chapter's), and the run's sizes."""
    x, y = load_mnist("test")
    start = time.perf_counter()
    reference = activations(train("FC200-200-10", profile=profile), x).cpu()
    directions = experiment_size("units_random_directions", profile)
    reports = {}
    for name in MODELS:
        phi = activations(train(name, profile=profile), x).cpu()
        reports[name] = compare_bases(phi, y, reference, k=K, random_count=directions, seed=0)
    parameters = {
        "test images": len(x),
        "random directions": directions,
        "k": K,
        "CNN epochs": settings_for("CNN", profile).epochs,
        "sigmoid-network epochs": settings_for("FC100-100-10", profile).epochs,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return units_table(reports), parameters


def record(profile: str, out: Path, command: str) -> list[Path]:
    """Train (or load from the cache) the models at ``profile``, compare their units with random
    directions, write the record ``02_units`` into ``out``; return its path."""
    table, parameters = units_result(profile)
    prov = provenance(command, default_device(), profile, parameters, modules=MODULES)
    return [write_record(out, NAME, TITLE, table, prov)]
