"""Chapter 6's larger run: the paper's §4.2 claim, paired by training seed, at a profile.

The chapter trains FC100-100-10 with weight decay alone and with adversarial pools at every
layer for three seeds in the quick profile and judges the change in test error with a paired
t-test (``coursekit.adversarial_training.pools_by_seed`` and ``paired_change``). This records the
same computation at a larger profile, with more seeds, as ``06_pool_seeds`` (rows: "seed s";
columns: "weight decay", "pools" (test error, fractions of all 10,000 test images) and
"change (points)"), for the chapter's "What this run found".

    python benchmarks/record_chapters.py 06 --profile quick --out /tmp/records   # a quick try
"""

from __future__ import annotations

import time
from pathlib import Path

from coursekit.adversarial_training import POOL_PROFILES, pools_by_seed
from coursekit.config import default_device
from coursekit.records import provenance, write_record
from coursekit.train import settings_for

NAME = "06_pool_seeds"
TITLE = "§4.2: FC100-100-10's test error with weight decay alone and with adversarial pools, per seed"
MODULES = ("adversarial_training", "attack", "models", "train", "data", "config")  # what the numbers depend on
SEEDS = {"quick": (0, 1, 2), "gpu": (0, 1, 2, 3, 4), "paper": tuple(range(10))}


def record(profile: str, out: Path, command: str) -> list[Path]:
    """Train (or load from the cache) both networks for each of the profile's ``SEEDS``; write
    the record ``06_pool_seeds`` into ``out``; return its path."""
    seeds = SEEDS[profile]
    start = time.perf_counter()
    table = pools_by_seed(seeds, profile=profile)
    pools = POOL_PROFILES[profile]
    parameters = {
        "seeds": len(seeds),
        "test images": 10_000,
        "Adam epochs": settings_for("FC100-100-10", profile).epochs,
        "pool size": pools.pool_size,
        "refresh every (steps)": pools.refresh_every,
        "seconds": round(time.perf_counter() - start, 1),
    }
    prov = provenance(command, default_device(), profile, parameters, modules=MODULES)
    return [write_record(out, NAME, TITLE, table, prov)]
