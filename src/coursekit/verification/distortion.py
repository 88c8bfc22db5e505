"""``exact_relu_distortion``: the exact minimum distortion, image by image, and what it costs.

Per image (``_verify_one``): the attack's start checked (and, ℓ2, its activation pattern's exact
QP), the bounds, the MIP, the solve, and every candidate point checked in float64 and in the
model's own dtype before it is reported. ``solve_times`` times it on several networks.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._checks import (
    NotCertifiedError,
    check_choice,
    check_images,
    check_labels,
    check_positive,
    to_model,
)
from .cuts import _closest
from .mip import _Mip, build_mip, start_values
from .network import (
    ReluNetwork,
    _check_network,
    activation_patterns,
    input_domain,
    layer_bounds,
    pattern_qp,
    relu_network,
)
from .result import VerificationResult, _checked, _margins, _norm, _PointCheck, _status
from .solvers import FORMULATIONS, SOLVERS, _highs, _scip, solve_highs, solve_scip

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MARGIN",
    "exact_relu_distortion",
    "NORMS",
    "solve_times",
    "START_ATTACKS",
]


NORMS = ("2", "inf")


DEFAULT_MARGIN = 1e-3  # the attacks' success margin in logits (coursekit.attack.SUCCESS_MARGIN)


def _check_start(
    model64: nn.Module,
    xi: np.ndarray,
    start_i: torch.Tensor | None,
    target: int,
    margin: float,
    norm: str,
    shape: torch.Size,
) -> tuple[np.ndarray | None, float | None]:
    """(r, radius) of a usable start (inside the box, target reached with the margin in
    float64), or (None, None)."""
    if start_i is None:
        return None, None
    v = start_i.flatten().double().cpu().numpy()
    if v.min() < 0 or v.max() > 1 or _margins(model64, v, target, shape) < margin:
        return None, None  # (exactly the margin: a closer point with less margin may not bound the optimum)
    r = v - xi
    dist = _norm(r, norm)
    return r, dist * (1 + 1e-7) + 1e-9


def _patterns_of(mip: _Mip, values: np.ndarray) -> list[np.ndarray]:
    return [values[d] > 0.5 for _, _, d in mip.layers]


def _solve(mip: _Mip, initial: Any, settings: dict) -> Any:
    """The MIP solved by the chosen solver from the incumbent ``initial`` (or none)."""
    common = dict(
        start=initial,
        time_limit=settings["time_limit"],
        gap_tol=settings["gap_tol"],
        options=settings["solver_options"],
    )
    if settings["solver"] == "highs":
        return solve_highs(mip, **common)
    return solve_scip(mip, formulation=settings["formulation"], **common)


def _solution_points(
    net: ReluNetwork, mip: _Mip, solved: Any, xi: np.ndarray, target: int, radius: float | None, settings: dict
) -> list[np.ndarray]:
    """The candidate points the solver's solution gives (none without one): for ℓ2 the exact
    QP of the solution's activation pattern (it can fail on degenerate tiny problems) and the
    least-norm r giving the solution's z_1; for ℓ∞ the solution's own r."""
    if solved.values is None:
        return []
    if settings["norm"] != "2":
        return [np.clip(xi + solved.values[mip.r], 0.0, 1.0)]
    domain = input_domain(xi, radius, settings["norm"])
    r = pattern_qp(net, xi, target, _patterns_of(mip, solved.values), *domain, settings["margin"])
    points = [] if r is None else [np.clip(xi + r, 0.0, 1.0)]
    return points + [np.clip(xi + _closest(mip.projection, solved.values[mip.first]), 0.0, 1.0)]  # type: ignore[arg-type]


def _proven_lower(mip: _Mip, solved: Any, norm: str, radius: float | None) -> float:
    """The lower bound on the distance the solver proved (0 when it aborted: no bound is
    claimed). Refuses (NotCertifiedError) a solver that claims no point reaches the target
    although the start does."""
    lower = solved.dual if norm == "inf" or math.isinf(solved.dual) else math.sqrt(max(solved.dual * mip.scale, 0.0))
    if solved.status == "error":
        lower = 0.0  # the solver aborted (numerical trouble): no bound is claimed
    lower = max(lower, 0.0)
    if math.isinf(lower) and radius is not None:
        raise NotCertifiedError(
            "the solver claims no point reaches the target although the start does: "
            "refusing its answer (numerical trouble)"
        )
    return lower


def _verify_one(
    net: ReluNetwork,
    model64: nn.Module,
    xi: np.ndarray,
    target: int,
    start_i: torch.Tensor | None,
    shape: torch.Size,
    settings: dict,
) -> dict:
    """One image: the start (and, ℓ2, its activation pattern's exact QP), the bounds, the MIP,
    the solve, and the float64 check of every candidate point."""
    norm, margin, check = settings["norm"], settings["margin"], settings["check"]
    if _margins(model64, xi, target, shape) >= margin and check.in_own_precision(xi, target):
        return dict(v=xi, distance=0.0, lower=0.0, status="optimal", seconds=0.0, nodes=0, unstable=0, start_used=False)
    r_start, radius = _check_start(model64, xi, start_i, target, margin, norm, shape)
    candidates = [] if r_start is None else [xi + r_start]
    if norm == "2" and r_start is not None:  # the start's own pattern, solved exactly
        r = pattern_qp(net, xi, target, activation_patterns(net, xi + r_start), *input_domain(xi, radius, norm), margin)
        candidates += [] if r is None else [np.clip(xi + r, 0.0, 1.0)]
    v0, d0, _ = _checked(check, xi, candidates, target, norm)
    if math.isfinite(d0):  # the best start so far: incumbent and radius (a candidate came from a start)
        within = d0 * (1 + 1e-7) + 1e-9
        r_start, radius = v0 - xi, within if radius is None else min(radius, within)
    bounds = layer_bounds(net, xi, radius=radius, norm=norm, tighten=settings["tighten"])
    mip = build_mip(net, xi, target, bounds, norm=norm, margin=margin, radius=radius)
    solved = _solve(mip, None if r_start is None else start_values(mip, net, xi, r_start, norm), settings)
    candidates += _solution_points(net, mip, solved, xi, target, radius, settings)
    v, distance, below = _checked(check, xi, candidates, target, norm)
    lower = _proven_lower(mip, solved, norm, radius)
    status = "solver error" if solved.status == "error" else _status(distance, lower, settings["gap_tol"], below)
    unstable = sum(int(((low < 0) & (up > 0)).sum()) for low, up in bounds[:-1])
    row = dict(
        v=v,
        distance=distance,
        lower=lower,
        status=status,
        seconds=solved.seconds,
        nodes=solved.nodes,
        unstable=unstable,
        start_used=start_i is not None and math.isfinite(d0),
    )
    time_left = settings["time_limit"] - solved.seconds
    if status == "gap open" and start_i is None and time_left > 0:  # again, from the point found
        again = _verify_one(
            net, model64, xi, target, torch.from_numpy(v).view(shape), shape, {**settings, "time_limit": time_left}
        )
        best = again if again["distance"] <= distance else row
        lower = max(again["lower"], lower)  # both are proven
        return {
            **best,
            "lower": lower,
            "status": _status(best["distance"], lower, settings["gap_tol"]),
            "seconds": again["seconds"] + solved.seconds,
            "nodes": again["nodes"] + solved.nodes,
            "start_used": False,
        }
    return row


def exact_relu_distortion(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    norm: str = "2",
    start: torch.Tensor | None = None,
    margin: float = DEFAULT_MARGIN,
    time_limit: float = 60.0,
    gap_tol: float = 1e-4,
    tighten: bool | str = "auto",
    solver: str = "scip",
    solver_options: dict | None = None,
    formulation: str = "projected",
) -> VerificationResult:
    """The exact minimum |r| (``norm`` "2": |r|₂, an MIQP; "inf": |r|∞, an MILP) with x + r in
    [0, 1] on which ``target`` beats every other logit by ``margin``, for a ReLU MLP
    (``relu_network`` says what is encoded; anything else is refused by name).

    x [N, ...] images in [0, 1]; target [N] labels; start [N, ...] (optional): points from an
    attack, used where they reach the target with the margin: the first incumbent, and their
    distance bounds the domain (tighter big-M constants). ``time_limit`` seconds per image;
    ``gap_tol``: "optimal" when the best point and the proven lower bound are within this
    relative gap. ``tighten``: LP-tighten the bounds of the second and later hidden layers
    ("auto": for ℓ∞ when there are such layers: measured on 784-16-16-10, it halved the
    unstable units and the time of ℓ∞ and changed nothing for ℓ2, whose ball bounds the LP
    cannot express). ``solver``: "scip" (both norms, one thread) or
    "highs" (the ℓ∞ MILP only; slower here, see benchmarks/RESULTS.md); ``solver_options``:
    the solver's parameters; ``formulation``: the ℓ2 objective's encoding (``solve_scip``).
    Needs ``pyscipopt`` (an ImportError says how to install it). N = 0 images: an empty result.

    A point is reported only where the float64 copy of the model reaches the target with the
    margin (up to MARGIN_TOL) *and* the model's own dtype honours it (``_PointCheck``: the
    float64 margin above the rounding of that dtype, and the model itself classifying the point
    as the target). With a margin below the model's rounding (0 for a float32 model, say) the
    optimum lies where the model may decide either way; the row then says "below precision".
    """
    settings = _verify_settings(norm, solver, formulation, margin, time_limit, gap_tol, tighten, solver_options)
    net, target = _check_inputs(model, x, target, start)
    _highs() if solver == "highs" else _scip()  # fail early, naming the package
    model64 = copy.deepcopy(model).to("cpu", torch.float64).eval()
    if len(x) == 0:  # nothing to solve: the empty result
        return _verification_result([], model64, target, x.shape[1:], norm, gap_tol)
    _check_network(model, net, x)
    roundoff = float(torch.finfo(to_model(model, x[:1]).dtype).eps) / 2
    settings["check"] = _PointCheck(model64, model, net, x.shape[1:], margin, roundoff)  # what a point must pass
    if tighten == "auto":  # LP-tightening pays for ℓ∞ when there are later hidden layers
        settings["tighten"] = len(net.weights) > 2 and norm == "inf"
    shape = x.shape[1:]
    rows = [
        _verify_one(
            net,
            model64,
            x[i].flatten().double().cpu().numpy(),
            int(target[i]),
            None if start is None else start[i],
            shape,
            settings,
        )
        for i in range(len(x))
    ]
    return _verification_result(rows, model64, target, shape, norm, gap_tol)


def _check_inputs(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, start: torch.Tensor | None
) -> tuple[ReluNetwork, torch.Tensor]:
    """``exact_relu_distortion``'s model, images, targets and start checked (each error naming
    the argument): the model's ``ReluNetwork`` and the targets as int64 on the CPU."""
    check_images("x", x)
    net = relu_network(model)
    pixels = math.prod(x.shape[1:])
    if pixels != net.inputs:
        raise ValueError(f"x has {pixels} pixels per image, the model's first layer expects {net.inputs}")
    target = check_labels("target", target, len(x), len(net.biases[-1])).cpu()
    if start is not None:
        check_images("start", start)
        if start.shape != x.shape:
            raise ValueError(f"start must have x's shape {tuple(x.shape)}, got {tuple(start.shape)}")
    return net, target


def _verify_settings(
    norm: str,
    solver: str,
    formulation: str,
    margin: float,
    time_limit: float,
    gap_tol: float,
    tighten: bool | str,
    solver_options: dict | None,
) -> dict:
    """The options of ``exact_relu_distortion`` checked (each error naming the option), as the
    settings ``_verify_one`` reads."""
    check_choice("norm", norm, NORMS)
    check_choice("solver", solver, SOLVERS)
    check_choice("formulation", formulation, FORMULATIONS)
    if solver == "highs" and norm == "2":
        raise ValueError("solver='highs' solves the ℓ∞ MILP only; the ℓ2 MIQP needs solver='scip'")
    check_positive("margin", margin, allow_zero=True)
    check_positive("time_limit", time_limit)
    check_positive("gap_tol", gap_tol)
    if tighten not in (True, False, "auto"):
        raise ValueError(f"tighten must be True, False or 'auto', got {tighten!r}")
    return dict(
        norm=norm,
        margin=margin,
        time_limit=time_limit,
        gap_tol=gap_tol,
        solver=solver,
        formulation=formulation,
        tighten=tighten,
        solver_options=solver_options or {},
    )


def _verification_result(
    rows: list[dict], model64: nn.Module, target: torch.Tensor, shape: torch.Size, norm: str, gap_tol: float
) -> VerificationResult:
    """The rows of ``_verify_one`` (one per image) as a VerificationResult; each point's margin
    measured again in float64."""
    as_tensor = lambda key, dtype=torch.float64: torch.tensor([row[key] for row in rows], dtype=dtype)  # noqa: E731
    x_adv = (
        torch.from_numpy(np.stack([row["v"] for row in rows])).view(len(rows), *shape)
        if rows
        else torch.empty(0, *shape, dtype=torch.float64)
    )
    margins = [_margins(model64, row["v"], int(t), shape) for row, t in zip(rows, target)]
    distance, lower = as_tensor("distance"), as_tensor("lower")
    return VerificationResult(
        x_adv=x_adv,
        target=target,
        distance=distance,
        lower_bound=lower,
        margin=torch.tensor(margins, dtype=torch.float64),
        optimal=torch.tensor([row["status"] == "optimal" for row in rows], dtype=torch.bool),
        status=[row["status"] for row in rows],
        seconds=as_tensor("seconds"),
        nodes=as_tensor("nodes", torch.int64),
        unstable=as_tensor("unstable", torch.int64),
        start_used=as_tensor("start_used", torch.bool),
        norm=norm,
        gap_tol=gap_tol,
    )


START_ATTACKS = {
    "2": "L-BFGS (course)",
    "inf": "PGD bisection",
}  # the attack (its budget of 100) that starts each solve


def solve_times(
    models: dict, x: torch.Tensor, target: torch.Tensor, *, norm: str = "2", time_limit: float = 60.0
) -> pd.DataFrame:
    """What exactness costs: for each ReLU network of ``models`` ({label: model}), the exact
    solve of every image (``exact_relu_distortion``, started from the course's L-BFGS attack
    for ℓ2 or the PGD bisection for ℓ∞), one at a time. Returns a DataFrame, one row per model:
    hidden units, images, proven (gap closed),
    mean and largest solver seconds per image, mean unstable units (binary variables).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import pandas as pd

    from ..modern_attacks.registry import run_attack

    rows = []
    for label, model in models.items():
        start = run_attack(START_ATTACKS[norm], model, x, target, 100).x_adv.detach()
        result = exact_relu_distortion(model, x, target, norm=norm, start=start, time_limit=time_limit)
        net = relu_network(model)
        rows.append(
            {
                "network": label,
                "hidden units": sum(len(b) for b in net.biases[:-1]),
                "images": len(x),
                "proven": int(result.optimal.sum()),
                "mean s/image": result.seconds.mean().item(),
                "max s/image": result.seconds.max().item(),
                "unstable units": result.unstable.double().mean().item(),
            }
        )
    return pd.DataFrame(rows).set_index("network")
