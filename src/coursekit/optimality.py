"""How close does each attack come to the minimum? Matched budgets, AttackBench's optimality,
and the ratio to the exact answer where a solver has it (``coursekit.verification``).

Every attack here is *targeted* (a target label per image) and *minimum-norm*: it returns the
closest point of the target class it found. Its cost is counted in forward+backward passes of
the model per example (AttackBench's and adv-lib's measure, counted by hooks on the model);
``run_attack`` runs each attack at two matched budgets, about 100 and about 1,000 passes (the
L-BFGS attack stops earlier where it has converged, and reports what it spent). The attacks,
their norms and the options of each budget are the entries of the registry
(``modern_attacks.registry.ATTACKS``): this module reads it and names no attack itself.

``optimality`` is AttackBench's (Cinà et al. 2024): the robust accuracy of an attack at radius
ε is the fraction of images it has not moved to the target within ε; with A the area under
that curve on [0, D], A* the area under the curve of the per-image best distance over all
attacks (the reference), D that reference's largest distance and A₀ = D × (the fraction of
images the reference needs to move), optimality = 1 − (A − A*) / (A₀ − A*): 1 for an attack
as good as the best on every image, 0 for one that never succeeds. The area under a step curve
is exact here: ∫₀ᴰ P(d > ε) dε = mean(min(d, D)).

``pgd_bisection`` (the ℓ∞ minimum-norm attack made from PGD) and ``fmn`` (foolbox's fast
minimum-norm attack) live beside the other minimum-norm attacks in ``modern_attacks``; they,
``run_attack`` and ``distances`` stay importable from here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ._checks import check_choice, logit_margin
from .modern_attacks import fmn, pgd_bisection
from .modern_attacks import registry as _registry
from .modern_attacks.registry import BUDGETS, run_attack
from .results import distances, lp_distance

if TYPE_CHECKING:
    from typing import Any

    import pandas as pd


__all__ = [
    "BUDGET_SETTINGS",
    "BUDGETS",
    "L2_ATTACKS",
    "LINF_ATTACKS",
    "closest_start",
    "compare_with_exact",
    "distances",
    "fmn",
    "optimality",
    "pgd_bisection",
    "run_attack",
]

# Views of the registry (``modern_attacks.registry.ATTACKS``, where each attack's entry is), kept
# for their readers: the minimum-norm attacks by norm, and the options each budget sets.
L2_ATTACKS = tuple(entry.name for entry in _registry.attacks("minimum-norm", "2"))
LINF_ATTACKS = tuple(entry.name for entry in _registry.attacks("minimum-norm", "inf"))
BUDGET_SETTINGS = {
    budget: {entry.name: dict(entry.budgets[budget]) for entry in _registry.attacks("minimum-norm")}
    for budget in BUDGETS
}


def optimality(d: torch.Tensor, best: torch.Tensor) -> float:
    """AttackBench's optimality (module docstring) of per-image distances d [N] (inf: failed)
    against the reference ``best`` [N] (finite, ≤ d where the reference includes the attack)."""
    d, best = d.double().cpu(), best.double().cpu()
    if d.shape != best.shape or d.dim() != 1 or len(d) == 0:
        raise ValueError(
            f"d and best must be non-empty [N] tensors of one shape, got {tuple(d.shape)} and {tuple(best.shape)}"
        )
    if not bool(torch.isfinite(best).all()) or bool((best < 0).any()):
        raise ValueError("best must be finite and >= 0 (the reference reaches every image)")
    top = best.max()
    area_best = best.mean()
    area_never = top * (best > 0).double().mean()
    if area_never <= area_best:
        return 1.0  # the reference needs no distance (every image is already in its target class)
    area = torch.minimum(d, top).mean()
    return float(1 - (area - area_best) / (area_never - area_best))


def closest_start(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, results: list, norm: str, margin: float = 1e-3
) -> torch.Tensor:
    """Per image the closest of the attack results' points (in ``norm``) that reaches the target
    by ``margin`` in the float64 model: an exact solver's first incumbent (x where none does).
    results: AttackResults for these images (any attacks, any budgets)."""
    import copy

    check_choice("norm", norm, ("2", "inf"))
    model64 = copy.deepcopy(model).to("cpu", torch.float64).eval()
    x = x.cpu()
    best, best_d = x.clone(), torch.full((len(x),), math.inf, dtype=torch.float64)
    for result in results:
        points = result.x_adv.detach().cpu()
        with torch.no_grad():
            z = model64(points.double())
        t = target.cpu()[:, None]
        reached = logit_margin(z, t.squeeze(1)) >= margin
        d = torch.where(reached, lp_distance(points - x, norm), torch.full_like(best_d, math.inf))
        better = d < best_d
        best[better], best_d = points[better], torch.minimum(best_d, d)
    return best


def compare_with_exact(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, budget: int = 100, time_limit: float = 60.0
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Every attack at ``budget`` passes per example, and the exact minimum of each norm
    (``coursekit.verification.exact_relu_distortion``, started from the closest attack point).
    Returns (per_image, summary, exact): per_image a DataFrame of each attack's distance over
    the proven optimum (rows: images; columns: (norm, attack); NaN where the gap did not close
    or the attack failed), summary one row per attack (passes per example, success, mean and
    worst ratio), exact {norm: VerificationResult}. FMN needs foolbox: without it, it is left out.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import pandas as pd

    from .verification import exact_relu_distortion

    entries = [entry for entry in _registry.attacks("minimum-norm") if entry.available()]
    runs = {entry.name: run_attack(entry.name, model, x, target, budget) for entry in entries}
    columns, rows, exact = {}, [], {}
    for norm in ("2", "inf"):
        mine = [entry.name for entry in entries if entry.norm == norm]
        start = closest_start(model, x, target, list(runs.values()), norm)
        exact[norm] = result = exact_relu_distortion(model, x, target, norm=norm, start=start, time_limit=time_limit)
        optimum = torch.where(result.optimal, result.distance, torch.full_like(result.distance, math.nan))
        for name in mine:
            ratio = distances(runs[name], x, norm) / optimum
            ratio = torch.where(torch.isfinite(ratio), ratio, math.nan)  # failed, or not proven
            known = ratio[torch.isfinite(ratio)]  # may be empty: an attack that failed everywhere
            columns["ℓ2" if norm == "2" else "ℓ∞", name] = ratio.numpy()
            rows.append(
                {
                    "norm": "ℓ2" if norm == "2" else "ℓ∞",
                    "attack": name,
                    "passes/ex": runs[name].evaluations.float().mean().item(),
                    "success": runs[name].success.float().mean().item(),
                    "mean ratio": float(known.mean()) if len(known) else math.nan,
                    "worst ratio": float(known.max()) if len(known) else math.nan,
                }
            )
    per_image = pd.DataFrame(columns)
    per_image.columns = pd.MultiIndex.from_tuples(per_image.columns)
    return per_image, pd.DataFrame(rows).set_index(["norm", "attack"]), exact
