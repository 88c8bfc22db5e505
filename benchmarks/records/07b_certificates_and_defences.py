"""Chapter 7b's larger run: attacks against the exact optimum, and PGD training over seeds.

With the chapter's functions, at ``profile`` (the gpu profile: 20 images solved exactly; three
training seeds of 15 epochs with 7 PGD steps):

- "07b_exact": ``optimality.compare_with_exact`` on the 784-16-10 ReLU network for the
  chapter's first ``verify["images"]`` test images (targets (y + 1) mod 10): per norm and attack,
  the passes spent, success, and the mean and worst distance over the proven optimum, with the
  number of images proven (``chapter7b.exact_record_table``);
- "07b_pgd_seeds": per training seed, the clean test error (all 10,000 test images) of
  FC100-100-10 trained as many epochs as the PGD model ("plain clean") and of mixed PGD training
  at ε = 0.1 (``modern_attacks.madry_training``, "trained clean"), and both networks' PGD error
  at ε = 0.1 on the chapter's ``images`` test images; the chapter pairs them by seed
  (``chapter7b.seeds_change``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from coursekit.chapter7b import ATTACK_LABELS, EXACT_RECORD, SEEDS_RECORD, chapter_images, exact_record_table
from coursekit.config import default_device
from coursekit.data import load_mnist
from coursekit.modern_attacks import MODERN_SIZES, madry_training, pgd
from coursekit.optimality import compare_with_exact
from coursekit.records import provenance, write_record
from coursekit.train import evaluate, settings_for, train
from coursekit.verification import solver_available, train_relu_mlp, verify_size

if TYPE_CHECKING:
    from pathlib import Path

EPS = 0.1  # the chapter's ε
SEEDS = (0, 1, 2)
# The coursekit modules these numbers depend on (modern_attacks is a package, which
# records.code_version cannot hash yet).
MODULES = ("chapter7b", "optimality", "verification", "attack", "box_lbfgs", "exact", "_checks", "train", "models")


def _exact(profile: str, out: Path, command: str) -> Path:
    count = verify_size("images", profile)
    x, y = chapter_images(count)
    target = (y + 1) % 10
    start = time.perf_counter()
    _, summary, exact = compare_with_exact(
        train_relu_mlp((16,)), x, target, budget=100, time_limit=verify_size("time_limit", profile)
    )
    summary = summary.rename(index=ATTACK_LABELS, level=1)
    proven = {"ℓ2": int(exact["2"].optimal.sum()), "ℓ∞": int(exact["inf"].optimal.sum())}
    table = exact_record_table(summary, proven)
    parameters = {"images": count, "budget": 100, "seconds": round(time.perf_counter() - start, 1)}
    prov = provenance(command, default_device(), profile, parameters, modules=MODULES)
    return write_record(out, EXACT_RECORD, "Attacks against the proven optimum, 784-16-10 ReLU network", table, prov)


def _seeds(profile: str, out: Path, command: str) -> Path:
    sizes = MODERN_SIZES[profile]
    x, y = chapter_images(sizes["images"])
    x_test, y_test = load_mnist("test")
    short = replace(settings_for("FC100-100-10", profile), epochs=sizes["madry_epochs"])
    start = time.perf_counter()
    rows = {}
    for seed in SEEDS:
        plain = train("FC100-100-10", settings=short, seed=seed, profile=profile)
        trained = madry_training("FC100-100-10", eps=EPS, seed=seed, profile=profile)
        rows[f"seed {seed}"] = {
            "plain clean": evaluate(plain, x_test, y_test),
            "trained clean": evaluate(trained, x_test, y_test),
            "plain PGD": pgd(plain, x, y, EPS, steps=sizes["pgd_steps"]).success.float().mean().item(),
            "trained PGD": pgd(trained, x, y, EPS, steps=sizes["pgd_steps"]).success.float().mean().item(),
        }
    table = pd.DataFrame(rows).T
    table.index.name = "seed"
    parameters = {
        "seeds": len(SEEDS),
        "epochs": sizes["madry_epochs"],
        "madry_steps": sizes["madry_steps"],
        "eps": EPS,
        "images": len(x),
        "pgd_steps": sizes["pgd_steps"],
        "seconds": round(time.perf_counter() - start, 1),
    }
    prov = provenance(command, default_device(), profile, parameters, modules=MODULES)
    title = f"Mixed PGD training at ε = {EPS:g} against the same network trained as long, per seed"
    return write_record(out, SEEDS_RECORD, title, table, prov)


def record(profile: str, out: Path, command: str) -> list[Path]:
    """Compute both records at ``profile`` and write them into ``out``; return their paths (the
    exact one only where the solver, pyscipopt, is installed)."""
    paths = [_exact(profile, out, command)] if solver_available() else []
    return paths + [_seeds(profile, out, command)]
