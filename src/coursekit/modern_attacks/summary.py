"""Summary tables of attacks: timing, one row per attack, error against ε."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .._checks import (
    check_choice,
    check_images,
    check_labels,
    eval_mode,
    to_model,
)
from ..results import AttackResult

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    import pandas as pd


from .common import NORMS
from .fgsm import fgsm
from .pgd import pgd

__all__ = ["timed", "attack_summary", "error_vs_eps"]


def timed(attack: Callable[..., AttackResult], *args: Any, **kwargs: Any) -> tuple[AttackResult, float]:
    """Run ``attack(*args, **kwargs)``; return (its result, the wall-clock seconds it took),
    with the GPU synchronised before and after so that the time is the attack's own.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    import time

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = attack(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def attack_summary(runs: dict) -> pd.DataFrame:
    """One row per attack from ``{name: (AttackResult, seconds)}`` (all on the same images).

    Columns: ``success`` (share of images), ``mean distortion`` (over the images *every*
    attack succeeded on, so that the rows compare like with like), ``median distortion``
    (same images), ``ms per image`` and ``gradients per image`` (``evaluations``).
    A pandas DataFrame.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    import pandas as pd

    if not runs:
        raise ValueError("runs must name at least one attack, got an empty mapping")
    results = {name: result for name, (result, _) in runs.items()}
    common = torch.stack([r.success.cpu() for r in results.values()]).all(0)
    rows = {}
    for name, (result, seconds) in runs.items():
        shared = result.distortion.cpu()[common]
        rows[name] = {
            "success": result.success.float().mean().item(),
            "mean distortion": shared.mean().item() if len(shared) else math.nan,
            "median distortion": shared.median().item() if len(shared) else math.nan,
            "ms per image": 1000 * seconds / len(result),
            "gradients per image": result.evaluations.float().mean().item(),
        }
    table = pd.DataFrame(rows).T
    table.attrs["images compared"] = int(common.sum())
    return table


def error_vs_eps(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: Sequence[float],
    *,
    steps: int = 20,
    norm: str = "inf",
    seed: int = 0,
) -> pd.DataFrame:
    """The error rate (share of the images misclassified, in [0, 1]) under FGSM and under PGD
    with ``steps`` steps, for each ε in ``epsilons`` (ε = 0: the clean error). FGSM is L∞ only,
    so with ``norm="2"`` only PGD is run. A pandas DataFrame indexed by ε.

    Every row is measured in eval mode, as the attacks measure theirs: the clean row too, so a
    model with dropout or batch norm gives its deterministic error, and its mode, batch-norm
    statistics and the global random generator are left as they were.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    import pandas as pd

    check_choice("norm", norm, NORMS)
    x_model = to_model(model, check_images("x", x))
    with eval_mode(model), torch.no_grad():
        logits = model(x_model)
    y = check_labels("y", y, len(x_model), logits.shape[1])
    clean = (logits.argmax(1).cpu() != y.cpu()).float().mean().item()
    rows = {}
    for eps in epsilons:
        if eps == 0:
            rows[0.0] = {"FGSM": clean, "PGD": clean} if norm == "inf" else {"PGD": clean}
            continue
        row = {"PGD": pgd(model, x, y, eps, norm=norm, steps=steps, seed=seed).success.float().mean().item()}
        if norm == "inf":
            row = {"FGSM": fgsm(model, x, y, eps).success.float().mean().item(), **row}
        rows[float(eps)] = row
    table = pd.DataFrame(rows).T
    table.index.name = "epsilon"
    return table
