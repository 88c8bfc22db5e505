"""How close does each attack come to the minimum? Matched budgets, AttackBench's optimality,
and the ratio to the exact answer where a solver has it (``coursekit.verification``).

Every attack here is *targeted* (a target label per image) and *minimum-norm*: it returns the
closest point of the target class it found. Its cost is counted in forward+backward passes of
the model per example (AttackBench's and adv-lib's measure); ``run_attack`` runs each attack at
two matched budgets, about 100 and about 1,000 passes (``BUDGET_SETTINGS``; the L-BFGS attack
stops earlier where it has converged, and reports what it spent).

``optimality`` is AttackBench's (Cinà et al. 2024): the robust accuracy of an attack at radius
ε is the fraction of images it has not moved to the target within ε; with A the area under
that curve on [0, D], A* the area under the curve of the per-image best distance over all
attacks (the reference), D that reference's largest distance and A₀ = D × (the fraction of
images the reference needs to move), optimality = 1 − (A − A*) / (A₀ − A*): 1 for an attack
as good as the best on every image, 0 for one that never succeeds. The area under a step curve
is exact here: ∫₀ᴰ P(d > ε) dε = mean(min(d, D)).

``pgd_bisection`` is the ℓ∞ minimum-norm attack made from PGD: a bisection over ε per image.
``fmn`` wraps foolbox's fast minimum-norm attack (Pintor et al. 2021), when foolbox is installed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_int, logit_margin
from .attack import lbfgs_attack
from .modern_attacks import carlini_wagner_l2, ddn
from .modern_attacks.common import _images, _labels
from .results import AttackResult, attacking, distances, from_points, lp_distance

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

BUDGETS = (100, 1000)
L2_ATTACKS = ("L-BFGS, polish=0 (paper)", "L-BFGS (course)", "C&W-L2", "DDN", "FMN-L2")
LINF_ATTACKS = ("PGD bisection", "FMN-Linf")
_LBFGS_1000 = {"search_steps": 10, "max_iter": 100, "history": 10, "tol": 1e-6, "ftol": 1e-9}
# C&W's learning rate and first c: the best of lr in {0.01, 0.05, 0.1}, c_init in {1e-3, 1, 10}
# on 20 images of FC100-100-10 (pixels at 0 or 1 sit where tanh is flat: small steps barely move
# them, so few steps need a large rate). Foolbox's FMN runs with its defaults.
BUDGET_SETTINGS = {
    100: {
        "L-BFGS, polish=0 (paper)": {"polish": 0},
        "L-BFGS (course)": {},
        "C&W-L2": {"search_steps": 5, "steps": 20, "lr": 0.1, "c_init": 1.0},
        "DDN": {"steps": 100},
        "FMN-L2": {"steps": 100},
        "PGD bisection": {"bisection_steps": 10, "steps": 10},
        "FMN-Linf": {"steps": 100},
    },
    1000: {
        "L-BFGS, polish=0 (paper)": {**_LBFGS_1000, "polish": 0},
        "L-BFGS (course)": _LBFGS_1000,
        "C&W-L2": {"search_steps": 10, "steps": 100, "lr": 0.05, "c_init": 1.0},
        "DDN": {"steps": 1000},
        "FMN-L2": {"steps": 1000},
        "PGD bisection": {"bisection_steps": 20, "steps": 50},
        "FMN-Linf": {"steps": 1000},
    },
}


def _targeted_pgd(model, x, target, eps, steps: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """ℓ∞ PGD towards ``target`` with a radius per image (eps [N]): random start, ``steps``
    signed-gradient steps of 2.5 ε / steps on CE(f(x'), target), each projected onto the ε-cube
    and the box. Returns the closest point (in ℓ∞) that reached the target at any step [N, ...]
    and whether one did [N]."""
    col = eps.view(-1, *[1] * (x.dim() - 1))
    delta = (2 * torch.rand(x.shape, generator=generator).to(x) - 1) * col
    delta = (x + delta).clamp(0, 1) - x
    best, best_d = x.clone(), torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device)
    for _ in range(steps):
        point = (x + delta).detach().requires_grad_(True)
        logits = model(point)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, target, reduction="sum"), point)
        hit = logits.argmax(1) == target
        d = lp_distance(delta, "inf")
        better = hit & (d < best_d)
        best, best_d = torch.where(better.view_as(col), point.detach(), best), torch.where(better, d, best_d)
        delta = (delta - 2.5 * col / steps * grad.sign()).clamp(-col, col)
        delta = (x + delta).clamp(0, 1) - x
    with torch.no_grad():  # the last iterate
        point = x + delta
        hit = model(point).argmax(1) == target
        d = lp_distance(delta, "inf")
        better = hit & (d < best_d)
        best, best_d = torch.where(better.view_as(col), point, best), torch.where(better, d, best_d)
    return best, torch.isfinite(best_d)


def pgd_bisection(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    steps: int = 10,
    bisection_steps: int = 10,
    seed: int = 0,
) -> AttackResult:
    """The ℓ∞ minimum-norm attack made from PGD: per image, a bisection over ε in [0, 1] (the
    whole box), ``bisection_steps`` times PGD of ``steps`` steps (``_targeted_pgd``) at the
    midpoint of the bracket; a success lowers the bracket's top to the found point's |r|∞.
    Returns the closest point that reached the target (x itself where none did) as an
    AttackResult; ``evaluations`` = bisection_steps × steps forward+backward passes."""
    check_int("steps", steps)
    check_int("bisection_steps", bisection_steps)
    generator = torch.Generator().manual_seed(seed)
    x, _, _ = _images(model, x, (0.0, 1.0))
    with attacking(model, x) as passes:
        target = _labels(model, x, {"target": target})["target"]
        low = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        high = torch.ones_like(low)
        best, best_d = x.clone(), torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device)
        for _ in range(bisection_steps):
            mid = (low + high) / 2
            point, hit = _targeted_pgd(model, x, target, mid, steps, generator)
            d = torch.where(hit, lp_distance(point - x, "inf"), torch.full_like(best_d, math.inf))
            better = d < best_d
            best = torch.where(better.view(-1, *[1] * (x.dim() - 1)), point, best)
            best_d = torch.minimum(best_d, d)
            high = torch.where(hit, torch.minimum(high, d.to(x.dtype)), high)
            low = torch.where(hit, low, mid)
        return from_points(model, x, best, target, passes=passes)


def fmn(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, norm: str = "2", steps: int = 100) -> AttackResult:
    """Foolbox's fast minimum-norm attack (L2FMNAttack / LInfFMNAttack, foolbox 3.3.4), targeted,
    ``steps`` forward+backward passes (and the forward-only ones of its own checks). Needs
    foolbox (``pip install foolbox``): an ImportError says so."""
    check_choice("norm", norm, ("2", "inf"))
    check_int("steps", steps)
    try:
        import foolbox as fb
    except ImportError:
        raise ImportError("the FMN attack comes from foolbox: `pip install foolbox==3.3.4`") from None
    x, _, _ = _images(model, x, (0.0, 1.0))
    with attacking(model, x) as passes:
        target = _labels(model, x, {"target": target})["target"]
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        attack = (fb.attacks.L2FMNAttack if norm == "2" else fb.attacks.LInfFMNAttack)(steps=steps)
        _, clipped, _ = attack(fmodel, x, fb.criteria.TargetedMisclassification(target), epsilons=None)
        return from_points(model, x, clipped, target, passes=passes)


def run_attack(name: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor, budget: int) -> AttackResult:
    """Attack ``name`` (one of L2_ATTACKS + LINF_ATTACKS) at ``budget`` (100 or 1000 passes per
    example, ``BUDGET_SETTINGS``), targeted at ``target``."""
    check_choice("name", name, L2_ATTACKS + LINF_ATTACKS)
    check_choice("budget", budget, BUDGETS)
    options = BUDGET_SETTINGS[budget][name]
    if name.startswith("L-BFGS"):
        return lbfgs_attack(model, x, target, **options)  # type: ignore[arg-type]
    if name == "C&W-L2":
        return carlini_wagner_l2(model, x, target, **options)  # type: ignore[arg-type]
    if name == "DDN":
        return ddn(model, x, target, **options)  # type: ignore[arg-type]
    if name == "PGD bisection":
        return pgd_bisection(model, x, target, **options)  # type: ignore[arg-type]
    return fmn(model, x, target, norm="2" if name == "FMN-L2" else "inf", **options)  # type: ignore[arg-type]


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
    worst ratio), exact {norm: VerificationResult}. FMN needs foolbox: without it, it is left out."""
    import pandas as pd

    from .verification import exact_relu_distortion

    try:
        import foolbox  # noqa: F401

        names = L2_ATTACKS + LINF_ATTACKS
    except ImportError:
        names = tuple(n for n in L2_ATTACKS + LINF_ATTACKS if not n.startswith("FMN"))  # type: ignore[assignment]
    runs = {name: run_attack(name, model, x, target, budget) for name in names}
    columns, rows, exact = {}, [], {}
    for norm in ("2", "inf"):
        mine = [n for n in names if (n in LINF_ATTACKS) == (norm == "inf")]
        start = closest_start(model, x, target, [runs[n] for n in names], norm)
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
