"""Per-chapter time on Colab: measured on this CPU (quick profile), estimated on a free T4 (gpu profile).

Reads what `make colab` wrote: ``_build/colab/summary.json`` (each chapter's wall time, run alone
from an empty cache on Colab's stack) and ``_build/colab/work-<chapter>.jsonl`` (every training
run and attack the chapter did, with its sizes and seconds, from ``coursekit.progress.record_work``).

The T4 estimate is a cost model, not a measurement (no GPU was lent when it was written):

    T4 = Σ_train  cpu_s · (work_gpu / work_quick) / TRAIN_SPEEDUP[kind]
       + Σ_attack cpu_s · (pairs_gpu / pairs_quick) / ATTACK_SPEEDUP
       + rest (install, data, spectral, plots) at CPU speed

where work is samples × epochs (Adam) or samples × iterations (L-BFGS), taken from
``train.settings_for`` for both profiles, and pairs_gpu / pairs_quick is the largest ratio of
the experiment sizes (``config.EXPERIMENT_SIZES``): conservative. The speed-ups and why:

* ATTACK_SPEEDUP = 25: the attack is bound by memory traffic over its L-BFGS history. On an H100
  it ran 8,075 pairs/s at 50,000 pairs (benchmarks/RESULTS.md) against 30 pairs/s on this CPU;
  a T4 has about a tenth of an H100's memory bandwidth (320 vs 3,350 GB/s) and of its fp32 rate
  (8 vs 67 TFLOP/s), so about 800 pairs/s, 27× this CPU; rounded down.
* TRAIN_SPEEDUP = 8 for the fully connected models (64-image minibatches: a T4 is bound by kernel
  launches, about 40 per Adam step at 5-10 µs, against about 1 ms per step on this CPU) and 25 for
  the CNN (compute-bound convolutions; same fp32 ratio as above).

    python benchmarks/colab_budget.py [--summary _build/colab/summary.json] [--write benchmarks/chapter_times.json]

``--write`` records the table for the chapters' time lines (``tools/notebooks.py`` writes each
chapter's "Time." line from it): per chapter the measured CPU seconds and the T4 estimate, with
the commit, date and machine of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from coursekit.config import EXPERIMENT_SIZES
from coursekit.train import settings_for

ATTACK_SPEEDUP = 25.0
TRAIN_SPEEDUP = {"fc": 8.0, "cnn": 25.0}


def training_work(model: str, profile: str, samples: int) -> float:
    """Samples × passes for training ``model`` under ``profile`` (autoencoder passes included)."""
    settings = settings_for(model, profile)
    if settings.optimizer == "lbfgs":
        return samples * settings.lbfgs_iterations
    passes = settings.epochs + (settings.ae_epochs if model.startswith("AE") else 0)
    return samples * passes


def attack_ratio(profile: str = "gpu") -> float:
    """The largest growth of an experiment's image count from the quick profile to ``profile``."""
    quick, other = EXPERIMENT_SIZES["quick"], EXPERIMENT_SIZES[profile]
    return max(other[k] / quick[k] for k in quick if k.endswith("images"))


def estimate(records: list[dict], total_cpu: float, profile: str = "gpu") -> dict[str, float]:
    """Seconds by kind on this CPU and the T4 estimate for ``profile``."""
    cpu = {"train": 0.0, "attack": 0.0, "pool": 0.0}
    t4 = 0.0
    for r in records:
        cpu[r["kind"]] += r["seconds"]
        if r["kind"] == "attack":
            t4 += r["seconds"] * attack_ratio(profile) / ATTACK_SPEEDUP
        else:
            kind = "cnn" if r["model"] == "CNN" else "fc"
            ratio = training_work(r["model"], profile, r["samples"]) / training_work(r["model"], "quick", r["samples"])
            if r["kind"] == "pool":  # the pool's attacks grow with the pool; its training with the epochs
                ratio *= attack_ratio(profile) / 4
            t4 += r["seconds"] * ratio / TRAIN_SPEEDUP[kind]
    rest = max(0.0, total_cpu - sum(cpu.values()))
    return {**cpu, "rest": rest, "t4": t4 + rest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", default=Path("_build/colab/summary.json"), type=Path)
    parser.add_argument("--write", default=None, type=Path, help="record the times for the chapters' time lines")
    args = parser.parse_args()
    print("| chapter | CPU, quick (s) | of it: training | attacks | pool | rest | T4, gpu (estimate, min) |")
    print("|---|---|---|---|---|---|---|")
    times = {}
    for chapter in json.loads(args.summary.read_text()):
        log = args.summary.parent / f"work-{chapter['chapter']}.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        e = estimate(records, chapter["seconds"])
        print(
            f"| {chapter['chapter']} | {chapter['seconds']:.0f} | {e['train']:.0f} | {e['attack']:.0f} "
            f"| {e['pool']:.0f} | {e['rest']:.0f} | {e['t4'] / 60:.1f} |"
        )
        if chapter["ok"]:
            times[chapter["chapter"]] = {"cpu_seconds": round(chapter["seconds"]), "t4_minutes": round(e["t4"] / 60, 1)}
    if args.write:
        write_times(args.write, times)


def write_times(path: Path, times: dict[str, dict]) -> None:
    """Record ``times`` with where they come from (atomically: a temporary file, then a rename)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {
        "what": "each notebook run alone from an empty cache by `make colab` (quick profile, CPU); "
        "t4_minutes: this script's cost model for a free Colab T4 (gpu profile), not a measurement",
        "commit": commit,
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "chapters": times,
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    temporary.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
