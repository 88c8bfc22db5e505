"""Compute Tables 1 and 2 and record them (with provenance) as package data for the chapters.

Writes ``table1.json`` (per model: training and test error, average minimum distortion, success
rate over the attacked training images × 9 targets) and ``table2.json`` (the transfer errors, as
``coursekit.transfer.transfer_table``) into ``src/coursekit/records/`` (or ``--out``). The
chapters show them in a "paper scale (recorded)" column, labelled with this provenance. Run it
where the paper's scale is affordable (a GPU: about a minute per 10,000 images); on a CPU give a
modest ``--images`` and the record says so. Usage::

    python benchmarks/record_tables.py --profile paper    # the paper scale: 60,000 images
    python benchmarks/record_tables.py --images 10000 --out /tmp/records
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from coursekit.config import apply_cpu_threads, default_device, experiment_size, resolve_profile
from coursekit.data import load_mnist
from coursekit.models import TABLE1_MODELS
from coursekit.records import provenance, write_record
from coursekit.train import evaluate, train
from coursekit.transfer import transfer_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=None, help="training images attacked per model")
    parser.add_argument("--profile", default=None, help="quick, gpu or paper (default: the device's)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src" / "coursekit" / "records"))
    args = parser.parse_args()
    apply_cpu_threads()  # once, for the whole run (a no-op on a GPU)
    profile = resolve_profile(args.profile)
    count = args.images or experiment_size("table1_images", profile)
    command = "python benchmarks/record_tables.py " + shlex.join(sys.argv[1:])
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    if not 0 < count <= len(x):
        raise SystemExit(f"--images must be in 1..{len(x)}, got {count}")
    subset = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:count]
    zoo = {name: train(name, profile=profile) for name in TABLE1_MODELS}
    start = time.perf_counter()
    table = transfer_table(
        zoo, zoo, x[subset], y[subset], noise_stddevs=(0.1, 0.3), matched_noise=False, cache=False, progress_bar=False
    )
    seconds = time.perf_counter() - start
    import pandas as pd

    table1 = pd.DataFrame(
        {
            name: {
                "train error": evaluate(model, x, y),
                "test error": evaluate(model, xt, yt),
                "av. min. distortion": table.adversarial[name].distortion.mean().item(),
                "success rate": table.adversarial[name].success.float().mean().item(),
            }
            for name, model in zoo.items()
        }
    ).T
    table1.index.name = "model"
    table2 = table.errors.copy()
    table2.index.name = "examples for"
    prov = provenance(
        command, default_device(), profile, {"images": count, "targets": 9, "attack_seconds": round(seconds, 1)}
    )
    for name, title, frame in (
        ("table1", "Table 1: the model zoo and its average minimum distortion", table1),
        ("table2", "Table 2: cross-model error rates of adversarial examples", table2),
    ):
        path = write_record(args.out, name, title, frame, prov)
        print(f"wrote {path}")
    print(table1.to_string())


if __name__ == "__main__":
    main()
