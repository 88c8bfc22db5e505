"""Benchmark: the attack and training at 1 and 2 torch threads, with and without a competing process.

On a 2-core machine torch's default (2 intra-op threads) is fastest when the machine is idle, but a
second CPU-bound process (another notebook, a test run) can make its threads wait for each other at
every operation. This script measures, in one run and interleaved (each configuration once per
repeat, in turn), for threads ∈ {1, 2, auto} × competitor ∈ {off, on} ("auto": coursekit's
default, ``COURSEKIT_THREADS=auto``: ``threads.apply_cpu_threads`` looks at the other processes'
load just before the work starts, as ``use_options`` does at a chapter's set-up; the count it
chose is printed):

* ``attack``: ``lbfgs_attack`` on the quick FC100-100-10, ``--images`` test images, targets
  (y + 1) mod 10 (examples/s), and optionally (``--classic``) the classic scipy algorithm of
  ``benchmarks/attack.py`` on the same images;
* ``training``: one Adam epoch of a fresh FC100-100-10 on ``--train-images`` training images (s).

The competitor is ``python -c "while 1: pass"`` (one busy core, normal priority), started before
and stopped after each "on" measurement. Usage::

    python benchmarks/threads.py --images 100 --train-images 10000 --repeats 2
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time

import torch

from coursekit.attack import lbfgs_attack
from coursekit.data import load_mnist
from coursekit.models import build
from coursekit.train import fit, settings_for, train


def _competitor(on: bool):
    return subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if on else None


def _stop(process) -> None:
    if process is not None:
        process.kill()
        process.wait()


def measure(threads, competing: bool, model, x, y, x_train, y_train, classic: bool) -> dict:
    """One measurement of each workload under (threads: an int or "auto", competitor)."""
    process = _competitor(competing)
    try:
        time.sleep(0.5)  # let the competitor get going
        if threads == "auto":
            from coursekit import threads

            torch.set_num_threads(threads._TORCH_THREADS)  # torch's default: not a count of the caller's
            os.environ["COURSEKIT_THREADS"] = "auto"
            threads.apply_cpu_threads("cpu")
        else:
            torch.set_num_threads(threads)
        start = time.perf_counter()
        lbfgs_attack(model, x, (y + 1) % 10)
        attack = len(x) / (time.perf_counter() - start)
        row = {"threads used": torch.get_num_threads(), "attack ex/s": attack}
        if classic:
            from attack import classic_lbfgs_attack

            start = time.perf_counter()
            classic_lbfgs_attack(model, x, (y + 1) % 10)
            row["classic ex/s"] = len(x) / (time.perf_counter() - start)
        fresh = build("FC100-100-10")
        settings = dataclasses.replace(settings_for("FC100-100-10", "quick"), epochs=1)
        start = time.perf_counter()
        fit(fresh, x_train, y_train, settings)
        row["training s"] = time.perf_counter() - start
    finally:
        _stop(process)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--classic", action="store_true", help="also time the classic scipy algorithm")
    args = parser.parse_args()
    model = train("FC100-100-10", profile="quick", device="cpu")
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = load_mnist("test")
    x, y = x[: args.images], y[: args.images]
    x_train, y_train = load_mnist("train")
    x_train, y_train = x_train[: args.train_images], y_train[: args.train_images]
    lbfgs_attack(model, x[:8], (y[:8] + 1) % 10)  # warm-up
    configs = [(t, c) for c in (False, True) for t in (1, 2, "auto")]
    results = {config: [] for config in configs}
    for repeat in range(args.repeats):
        for config in configs:
            results[config].append(measure(*config, model, x, y, x_train, y_train, args.classic))
            print(
                f"repeat {repeat + 1}: threads {config[0]}, competitor {'on' if config[1] else 'off'}: "
                + ", ".join(f"{k} {v:.2f}" for k, v in results[config][-1].items()),
                flush=True,
            )
    print(
        f"\n{os.cpu_count()} cores | torch {torch.__version__} | median of {args.repeats} | "
        f"{args.images} images attacked, {args.train_images} training images"
    )
    keys = list(results[configs[0]][0])
    print(f"{'threads':>8}{'competitor':>12}" + "".join(f"{k:>16}" for k in keys))
    for config in configs:
        medians = [statistics.median(r[k] for r in results[config]) for k in keys]
        print(f"{config[0]!s:>8}{'on' if config[1] else 'off':>12}" + "".join(f"{m:>16.2f}" for m in medians))


if __name__ == "__main__":
    main()
