"""Chapter 1's larger run: Table 1's training and test errors of the zoo trained at a profile.

The chapter trains the six Table 1 models at the profile of the machine it runs on (quick on a
CPU: fewer L-BFGS iterations and epochs) and compares their errors with the paper's. This
records the same computation (``coursekit.train.train`` and ``evaluate`` on all 60,000 training
and 10,000 test images) at a larger profile, as ``01_table1_errors`` (rows: the models; columns:
"training error", "test error", fractions), for the chapter's "What this run found".

    python benchmarks/record_chapters.py 01 --profile quick --out /tmp/records   # a quick try
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from coursekit.config import default_device, profile_sizes
from coursekit.data import load_mnist
from coursekit.models import TABLE1_MODELS
from coursekit.records import provenance, write_record
from coursekit.train import evaluate, settings_for, train

NAME = "01_table1_errors"
TITLE = "Table 1: training and test errors of the model zoo"
MODULES = ("models", "train", "data", "config")  # the code the numbers depend on


def table1_errors(profile: str) -> tuple[pd.DataFrame, dict]:
    """The Table 1 models trained at ``profile`` (cached like the chapter's), with their
    training and test errors: a DataFrame indexed by model, and the run's sizes."""
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    start = time.perf_counter()
    zoo = {name: train(name, profile=profile) for name in TABLE1_MODELS}
    errors = pd.DataFrame(
        {
            name: {"training error": evaluate(model, x, y), "test error": evaluate(model, xt, yt)}
            for name, model in zoo.items()
        }
    ).T
    errors.index.name = "model"
    sizes = profile_sizes("training", profile)
    ae = settings_for("AE400-10", profile)
    parameters = {
        "training images": len(x),
        "test images": len(xt),
        "FC10 L-BFGS iterations": sizes["fc10_lbfgs_iterations"],
        "sigmoid-network Adam epochs": settings_for("FC100-100-10", profile).epochs,
        "autoencoder epochs": ae.ae_epochs,
        "AE400-10 softmax L-BFGS iterations": ae.lbfgs_iterations,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return errors, parameters


def record(profile: str, out: Path, command: str) -> list[Path]:
    """Train (or load from the cache) and evaluate the zoo at ``profile``; write the record
    ``01_table1_errors`` into ``out``; return its path."""
    errors, parameters = table1_errors(profile)
    prov = provenance(command, default_device(), profile, parameters, modules=MODULES)
    return [write_record(out, NAME, TITLE, errors, prov)]
