"""Chapter 7a's larger run: the nearest errors with the pockets test, and FGSM against PGD.

Per model of ``MODERN_SIZES[profile]`` (the gpu profile: FC10(1e-4), FC100-100-10 and the CNN
on 1,000 test images), with the chapter's functions:

- "07a_nearest": ``linearity.pocket_table`` of the untargeted DDN's examples (``ddn_steps``
  steps): how many images it moved to an error, their median distortion, the share still
  misclassified at x + t·r, and at a random point at the same distance;
- "07a_fgsm_pgd": ``chapter7a.versus_table`` of ``linearity.fgsm_against_pgd`` at ε = ``EPS``
  (``pgd_steps`` PGD steps): both attacks' errors, compared image by image.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from coursekit.chapter7a import EPS, NEAREST, VERSUS, chapter_images, versus_table
from coursekit.config import default_device
from coursekit.linearity import fgsm_against_pgd, pocket_table, pocket_test
from coursekit.modern_attacks import MODERN_SIZES, ddn
from coursekit.records import provenance, write_record
from coursekit.train import train

if TYPE_CHECKING:
    from pathlib import Path

# The coursekit modules these numbers depend on (modern_attacks is a package, which
# records.code_version cannot hash yet).
MODULES = ("linearity", "chapter7a", "attack", "_checks", "report", "train", "models", "data")


def record(profile: str, out: Path, command: str) -> list[Path]:
    """Compute both tables at ``profile`` and write them into ``out``; return their paths."""
    sizes = MODERN_SIZES[profile]
    x, y = chapter_images(sizes["images"])
    zoo = {name: train(name, profile=profile) for name in sizes["models"]}
    start = time.perf_counter()
    tests, paired = {}, {}
    for name, model in zoo.items():
        found = ddn(model, x, y=y, steps=sizes["ddn_steps"])
        tests[name] = pocket_test(model, x, y, found.x_adv)
        paired[name] = fgsm_against_pgd(model, x, y, EPS, steps=sizes["pgd_steps"])
    seconds = time.perf_counter() - start
    parameters = {
        "images": len(x),
        "models": len(zoo),
        "ddn_steps": sizes["ddn_steps"],
        "pgd_steps": sizes["pgd_steps"],
        "attack_seconds": round(seconds, 1),
    }
    prov = provenance(command, default_device(), profile, parameters, modules=MODULES)
    nearest, versus = pocket_table(tests), versus_table(paired)
    nearest.index.name = versus.index.name = "model"
    return [
        write_record(out, NEAREST, "Nearest errors (untargeted DDN) and the pockets test", nearest, prov),
        write_record(out, VERSUS, f"FGSM against PGD at ε = {EPS:g}, image by image", versus, prov),
    ]
