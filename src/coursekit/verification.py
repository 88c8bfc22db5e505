"""The provable answer for small ReLU networks: exact minimum distortion by mixed-integer programming.

For a ReLU network f (``nn.Linear`` / ``nn.ReLU`` / ``nn.Flatten`` in a chain), an image x
[n pixels in 0..1] and a target label t, ``exact_relu_distortion`` finds

    min |r|   subject to   x + r in [0, 1]^n,   z_t(x + r) − z_j(x + r) ≥ margin for all j ≠ t,

z the logits, |r| = |r|₂ (a mixed-integer quadratic programme, MIQP) or |r|∞ (a mixed-integer
linear programme, MILP), and proves it (Tjeng et al. 2019, MIPVerify; Carlini et al. 2017):

* each hidden unit a = max(ẑ, 0) with pre-activation bounds l ≤ ẑ ≤ u is *stable* (u ≤ 0:
  a = 0; l ≥ 0: a = ẑ) or gets a binary δ and the big-M constraints a ≥ ẑ, a ≥ 0,
  a ≤ ẑ − l(1 − δ), a ≤ u δ, which are exact for δ in {0, 1};
* l and u come from interval arithmetic layer by layer (``layer_bounds``), over the box and,
  when an attack's point is given (``start``), over the ball of its distance around x (no
  closer point lies outside it): for ℓ2 each first-layer bound is the exact maximum over
  ball ∩ box, by a one-variable dual (``_ball_box_max``); deeper layers are tightened by one
  LP per unstable unit (``tighten``);
* the attack's point is also the solver's first incumbent (ℓ2: first replaced by the exact
  optimum of its own activation pattern, ``pattern_qp``, often the answer already);
* ℓ2: SCIP's own handling of |r|² (outer approximation in all 784 pixels, ``formulation=
  "native"``: the issue's probe, 13–48 s per 784-16-10 image) is replaced by cuts in the 16
  first-layer outputs: for z_1 = W r + c, φ(z_1) = min |r|² over the box with that z_1 is
  convex and every dual vector μ gives an affine minorant of it in closed form (``Projection``),
  added lazily by a constraint handler at each LP solution, with extra cuts between the LP
  point and the start (in-out stabilisation, which cut the time ×6); r stays in the LP only to
  keep z_1 reachable. (Measured in benchmarks/RESULTS.md.)
* the solver (SCIP through ``pyscipopt``; HiGHS for the ℓ∞ MILP on request) returns its best
  point and a proven lower bound: the result says "optimal" only when the two are within
  ``gap_tol`` (relative); the point reported is the exact optimum of the solver's activation
  pattern (ℓ2) or the solver's own (ℓ∞), recomputed by the model in float64 (target reached
  with the margin, inside the box, distance as reported) and checked in the model's own dtype
  (the margin above its rounding, the model itself predicting the target) before it is
  reported ("below precision" where only float64 agrees). The bound
  holds up to the solver's tolerances (feasibility 1e-9 for ℓ2, SCIP's defaults for ℓ∞):
  "proven" in floating point, not in exact arithmetic.

Anything else (sigmoid, convolution, max-pooling, a custom forward) is refused by name: no
silent approximation. The solver is an optional dependency: ``pip install pyscipopt`` (one
wheel, also for Colab's Python 3.13); importing this module does not need it.

Distances are reported as norms of r: |r|₂ (``norm="2"``; the paper's distortion is
|r|₂ / sqrt(n), ``VerificationResult.distortion``) or |r|∞ (``norm="inf"``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ._checks import (
    NotCertifiedError,
    check_choice,
    check_images,
    check_int,
    check_labels,
    check_positive,
    eval_mode,
    to_model,
)
from .config import profile_sizes, profile_views
from .records import modules_version

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    import pandas as pd


__all__ = [
    "DEFAULT_MARGIN",
    "EXTRA_CUTS",
    "FEASTOL",
    "FORMULATIONS",
    "MARGIN_TOL",
    "NORMS",
    "RELU_CODE_VERSION",
    "SOLVER_PACKAGE",
    "SOLVERS",
    "START_ATTACKS",
    "VERIFY_SIZES",
    "activation_patterns",
    "build_mip",
    "exact_relu_distortion",
    "input_domain",
    "layer_bounds",
    "pattern_qp",
    "Projection",
    "relu_mlp",
    "relu_network",
    "ReluNetwork",
    "solve_highs",
    "solve_scip",
    "solve_times",
    "solver_available",
    "start_values",
    "train_relu_mlp",
    "VerificationResult",
    "verify_size",
]

NORMS = ("2", "inf")
SOLVERS = ("scip", "highs")
SOLVER_PACKAGE = "pyscipopt"
DEFAULT_MARGIN = 1e-3  # the attacks' success margin in logits (coursekit.attack.SUCCESS_MARGIN)
MARGIN_TOL = 1e-5  # a returned point must reach the target by margin − MARGIN_TOL (solver feasibility)
_PASS_THROUGH = (nn.Flatten, nn.Identity, nn.Dropout)  # identity maps in eval mode (Flatten: on the input)


def _scip():
    """pyscipopt, or an ImportError that names the package and the pip command."""
    try:
        import pyscipopt
    except ImportError:
        raise ImportError(
            f"exact verification needs the SCIP solver: `pip install {SOLVER_PACKAGE}` "
            f"(or `pip install coursekit[verify]`)"
        ) from None
    return pyscipopt


def solver_available() -> bool:
    """Whether the MIP solver (pyscipopt) can be imported."""
    try:
        _scip()
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class ReluNetwork:
    """A ReLU MLP as float64 arrays: z_1 = W_1 v + b_1, a_k = max(z_k, 0), …, logits = W_L a + b_L.

    weights[k] [out, in] and biases[k] [out]; a ReLU follows every layer but the last.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    @property
    def inputs(self) -> int:
        return self.weights[0].shape[1]

    def logits(self, v: np.ndarray) -> np.ndarray:
        """Logits [N, K] for inputs v [N, n] (flattened images), in float64."""
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            v = v @ w.T + b
            if k < len(self.weights) - 1:
                v = np.maximum(v, 0.0)
        return v


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaf layers of a chain of nn.Sequential (or coursekit ZooModel) containers, in order;
    a ValueError naming the first container whose forward we cannot read as a chain."""
    from .models import ZooModel

    if isinstance(model, (nn.Sequential, ZooModel)):
        out = []
        for name, child in model.named_children():
            out += [(f"{name}.{sub}" if sub else name, m) for sub, m in _leaves(child)]
        return out
    if len(list(model.children())):
        raise ValueError(
            f"cannot encode a {type(model).__name__}: only chains (nn.Sequential) of "
            f"nn.Linear, nn.ReLU and nn.Flatten layers"
        )
    return [("", model)]


def relu_network(model: nn.Module) -> ReluNetwork:
    """The float64 ``ReluNetwork`` of ``model``, a chain of ``nn.Linear``, ``nn.ReLU`` and
    ``nn.Flatten`` (``nn.Identity`` and ``nn.Dropout`` read as the identity: eval mode).
    Consecutive linear layers are multiplied out. A ValueError names any other layer (a
    sigmoid, a convolution, max-pooling, …): the MIP encodes ReLU networks exactly, nothing else.
    """
    weights, biases, relu_after = [], [], []  # type: ignore[var-annotated]
    for name, layer in _leaves(model):
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach().to("cpu", torch.float64).numpy()
            b = np.zeros(len(w)) if layer.bias is None else layer.bias.detach().to("cpu", torch.float64).numpy()
            if weights and not relu_after[-1]:  # two affine maps in a row: one affine map
                w, b = w @ weights[-1], w @ biases[-1] + b
                weights.pop(), biases.pop(), relu_after.pop()
            weights.append(w)
            biases.append(b)
            relu_after.append(False)
        elif isinstance(layer, nn.ReLU):
            if weights:  # before any Linear the input is in [0, 1]: ReLU is the identity there
                relu_after[-1] = True
        elif not isinstance(layer, _PASS_THROUGH):
            raise ValueError(
                f"cannot encode layer {name or 'model'!r} ({type(layer).__name__}) exactly: "
                f"only nn.Linear, nn.ReLU and nn.Flatten (a ReLU MLP)"
            )
    if not weights:
        raise ValueError("model has no nn.Linear layer")
    if relu_after[-1]:
        raise ValueError("the last layer must be an nn.Linear giving the logits, not a ReLU")
    return ReluNetwork(tuple(weights), tuple(biases))


def _check_network(model: nn.Module, net: ReluNetwork, x: torch.Tensor) -> None:
    """Refuse when our reading of the layers does not compute the model's logits on x (e.g. a
    custom forward that reorders its modules)."""
    with torch.no_grad(), eval_mode(model):
        theirs = model(to_model(model, x)).double().cpu().numpy()
    ours = net.logits(x.flatten(1).double().cpu().numpy())
    if theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=1e-4, atol=1e-4 * (1 + np.abs(ours).max())):
        raise ValueError(
            "the model's output differs from the chain of its layers (a custom forward?): refusing to verify it"
        )


# ---------------------------------------------------------------- bounds on the pre-activations


def _ball_box_max(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, radius: float) -> np.ndarray:
    """Per row of w [h, n]: an upper bound on max w·r over lo ≤ r ≤ hi, |r|₂ ≤ radius (tight to
    ~1e-9 relative). Weak duality: for every μ ≥ 0 the maximum is at most
    g(μ) = μ R² + Σ_i max over lo_i ≤ r_i ≤ hi_i of (w_i r_i − μ r_i²), the inner maximiser being
    clip(w_i / 2μ, lo_i, hi_i); g is convex in μ, minimised by bisection on log μ."""

    def g(mu):
        r = np.clip(w / (2 * mu[:, None]), lo, hi)
        return mu * radius**2 + (w * r - mu[:, None] * r**2).sum(1), (r**2).sum(1)

    box = np.maximum(w * lo, w * hi).sum(1)  # μ = 0: the box alone
    top = np.maximum(np.linalg.norm(w, axis=1) / (2 * max(radius, 1e-300)), 1e-300)
    low, high = np.log(top) - 40.0, np.log(top) + 1.0  # |r(μ)| ≤ R at μ = top
    best = np.minimum(box, g(np.exp(high))[0])
    for _ in range(80):
        mid = (low + high) / 2
        value, norm2 = g(np.exp(mid))
        best = np.minimum(best, value)
        outside = norm2 > radius**2
        low, high = np.where(outside, mid, low), np.where(outside, high, mid)
    return best


def _interval(w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of w v + b over the box lo ≤ v ≤ hi (exact for one affine map)."""
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    return wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b


def input_domain(x: np.ndarray, radius: float | None, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """The box of r: x + r in [0, 1] and, given a radius (the distance of a known adversarial
    point), |r_i| ≤ radius (for ℓ∞ that is the whole ball; for ℓ2 its bounding box)."""
    lo, hi = -x, 1.0 - x
    if radius is not None:
        lo, hi = np.maximum(lo, -radius), np.minimum(hi, radius)
    return lo, hi


def layer_bounds(
    net: ReluNetwork, x: np.ndarray, *, radius: float | None = None, norm: str = "2", tighten: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bounds (l, u) on the outputs of every affine map (the hidden pre-activations ẑ_k, then
    the logits) for inputs x + r, r in ``input_domain`` and (ℓ2, given ``radius``) |r|₂ ≤ radius.
    x [n] float64 in [0, 1].

    The first map: interval arithmetic over the box, and for ℓ2 with a radius the exact
    maximum over ball ∩ box (``_ball_box_max``). Later maps: interval arithmetic on the
    previous layer's [max(l, 0), max(u, 0)], then, with ``tighten``, one LP per bound of each
    hidden unit that is still unstable (``_lp_tighten``). Every bound is valid (never a guess).
    """
    lo, hi = input_domain(x, radius, norm)
    w, b = net.weights[0], net.biases[0] + net.weights[0] @ x
    low, up = _interval(w, b, lo, hi)
    if radius is not None and norm == "2":
        up = np.minimum(up, b + _ball_box_max(w, lo, hi, radius))
        low = np.maximum(low, b - _ball_box_max(-w, lo, hi, radius))
    bounds = [(low, up)]
    for k in range(1, len(net.weights)):
        prev_l, prev_u = bounds[-1]
        bounds.append(_interval(net.weights[k], net.biases[k], np.maximum(prev_l, 0), np.maximum(prev_u, 0)))
        if tighten and k < len(net.weights) - 1:
            bounds[-1] = _lp_tighten(net, x, lo, hi, bounds)
    return bounds


def _relaxation(
    net: ReluNetwork, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]]
):
    """The LP (triangle) relaxation of the layers below the last entry of ``bounds``: sparse
    rows A_eq, b_eq, A_ub, b_ub and variable bounds over [r, z_1, a_1, …, z_k] (z_k last)."""
    from scipy import sparse

    n = len(x)
    blocks_eq, rhs_eq, blocks_ub, rhs_ub = [], [], [], []
    var_lo, var_hi = [lo], [hi]
    offset, inp, inp_size = n, 0, n
    for k, (low, up) in enumerate(bounds):
        h = len(low)
        w = net.weights[k]
        b = net.biases[k] + (w @ x if k == 0 else 0)
        z = offset
        blocks_eq.append((sparse.hstack([-sparse.csr_matrix(w), sparse.identity(h)]), inp, inp_size + h))
        rhs_eq.append(b)  # z − W in = b (the input and z are adjacent blocks)
        var_lo.append(low)
        var_hi.append(up)
        offset += h
        if k == len(bounds) - 1:
            break
        a = offset
        var_lo.append(np.maximum(low, 0))
        var_hi.append(np.maximum(up, 0))
        offset += h
        # a ≥ z (always valid), a ≤ u (z − l) / (u − l) where unstable, a = z where active
        slope = np.where(low >= 0, 1.0, np.where(up <= 0, 0.0, up / np.where(up > low, up - low, 1.0)))
        blocks_ub.append((sparse.hstack([sparse.identity(h), -sparse.identity(h)]), z, 2 * h))
        rhs_ub.append(np.zeros(h))
        blocks_ub.append((sparse.hstack([-sparse.diags(slope), sparse.identity(h)]), z, 2 * h))
        rhs_ub.append(np.where((low < 0) & (up > 0), -slope * low, 0.0))
        inp, inp_size = a, h
    total = offset

    def assemble(blocks):
        rows = [
            sparse.hstack(
                [sparse.csr_matrix((m.shape[0], start)), m, sparse.csr_matrix((m.shape[0], total - start - width))]
            )
            for m, start, width in blocks
        ]
        return sparse.vstack(rows).tocsr() if rows else None

    return (
        assemble(blocks_eq),
        np.concatenate(rhs_eq),
        assemble(blocks_ub),
        np.concatenate(rhs_ub) if rhs_ub else None,
        np.concatenate(var_lo),
        np.concatenate(var_hi),
        total,
    )


def _lp_tighten(net, x, lo, hi, bounds):
    """Tighter (l, u) for the last layer of ``bounds``: min and max of each unstable unit's
    pre-activation over the LP relaxation of the layers below (scipy's HiGHS)."""
    from scipy.optimize import linprog

    a_eq, b_eq, a_ub, b_ub, var_lo, var_hi, total = _relaxation(net, x, lo, hi, bounds)
    low, up = (v.copy() for v in bounds[-1])
    h = len(low)
    for j in np.flatnonzero((low < 0) & (up > 0)):
        for sign in (1.0, -1.0):
            cost = np.zeros(total)
            cost[total - h + j] = sign  # minimise ±z_j
            out = linprog(
                cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=np.stack([var_lo, var_hi], 1), method="highs"
            )
            if out.status != 0:
                continue  # keep the interval bound (always valid)
            if sign > 0:
                low[j] = max(low[j], out.fun - 1e-6 * (1 + abs(out.fun)))
            else:
                up[j] = min(up[j], -out.fun + 1e-6 * (1 + abs(out.fun)))
    return low, up


# ---------------------------------------------------------------- ℓ2: the pixels projected out


class Projection:
    """φ(y) = min |r|² over lo ≤ r ≤ hi with W r + c = y: the least squared distortion that
    gives the first layer the outputs y [h] (+inf where no r in the box does). W [h, n], c [h].

    φ is convex, and for every μ in R^h weak duality gives the affine minorant
    φ(y) ≥ μ·(y − c) + Σ_i min over lo_i ≤ r_i ≤ hi_i of (r_i² − g_i r_i),   g = Wᵀμ,
    the inner minimiser being clip(g_i / 2, lo_i, hi_i): a valid cut s ≥ μ·y + const for ANY μ,
    tight at y when μ maximises the right-hand side (``cut`` finds it by Newton's method). The
    MIQP keeps y (h variables) instead of r (n = 784), and these cuts replace |r|².
    """

    def __init__(self, w: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: float = 1.0):
        self.w, self.c, self.lo, self.hi, self.scale = w, c, lo, hi, scale
        self.mu = np.zeros(len(c))  # warm start of the next ``cut``

    def _dual(self, mu: np.ndarray, y: np.ndarray):
        g = self.w.T @ mu
        r = np.clip(g / 2, self.lo, self.hi)
        const = float(np.dot(r, r) - np.dot(g, r) - np.dot(mu, self.c))
        return float(np.dot(mu, y)) + const, const, r, (y - self.c) - self.w @ r, (g / 2 > self.lo) & (g / 2 < self.hi)

    def cut(self, y: np.ndarray, iterations: int = 60) -> tuple[np.ndarray, float, float]:
        """(μ, const, value) / ``scale``: the cut s ≥ μ·y' + const, its value μ·y + const at y (≤ φ(y),
        = φ(y) when converged; it grows without bound where φ(y) = inf). Newton's method on
        the dual from the last converged μ or from 0 (whichever is higher), with backtracking;
        where the free pixels' Hessian gives no ascent, the step of the all-free Hessian is
        tried. The constant is lowered by a bound on the rounding error."""
        warm, cold = self._dual(self.mu, y), self._dual(np.zeros(len(y)), y)
        mu, state = (self.mu, warm) if warm[0] > cold[0] else (np.zeros(len(y)), cold)
        full = 0.5 * self.w @ self.w.T
        ridge = 1e-12 * np.trace(full) / len(y) * np.eye(len(y))
        converged = False
        for _ in range(iterations):
            value, const, r, grad, free = state
            if np.abs(grad).max() <= 1e-11 * (1 + np.abs(y - self.c).max()):
                converged = True
                break
            wf = self.w[:, free]
            improved = False
            for hessian in (0.5 * wf @ wf.T + ridge, full + ridge):
                step = np.linalg.solve(hessian, grad)
                for t in 0.5 ** np.arange(40):  # backtrack until the dual rises
                    trial = self._dual(mu + t * step, y)
                    if trial[0] > value:
                        mu, state, improved = mu + t * step, trial, True
                        break
                if improved:
                    break
            if not improved:
                break
        self.mu = mu if converged else np.zeros(len(y))  # warm-start only from a converged μ
        value, const = state[0], state[1]
        slack = 1e-12 * (1 + abs(const) + np.abs(mu).sum() * (1 + np.abs(y).max()))  # rounding
        return mu / self.scale, (const - slack) / self.scale, (value - slack) / self.scale


def _closest(projection: Projection, y: np.ndarray) -> np.ndarray:
    """The r of least |r|² in the box with W r + c = y (the primal point of ``Projection.cut``)."""
    projection.cut(y, iterations=200)
    return np.clip(projection.w.T @ projection.mu / 2, projection.lo, projection.hi)


EXTRA_CUTS = (0.25, 0.5, 0.75)
FEASTOL = 1e-9  # SCIP's feasibility tolerance for the ℓ2 problem (its default 1e-6 would hide small distances)


def _norm_cuts_handler(scip, projection: Projection, y_vars: list, s_var, enforce: bool = True):
    """A SCIP constraint handler for s ≥ φ(y): at each LP solution (and candidate solution) it
    computes the tight cut of ``Projection`` and adds it when violated (Kelley/Benders cuts)."""

    class NormCuts(scip.Conshdlr):
        cuts = 0
        center = None

        def _violated(self, sol, add: bool, tol: float) -> bool:
            y = np.array([self.model.getSolVal(sol, v) for v in y_vars])
            s = self.model.getSolVal(sol, s_var)
            mu, const, value = projection.cut(y)
            scale = max(1.0, abs(const), abs(value - const))  # the row's size: SCIP's tolerance is relative
            if value - s <= tol * abs(value) + 10 * FEASTOL * scale:
                return False
            if add:
                self._add(mu, const)
                if self.center is not None:  # in-out: cuts between y and a centre also shape the model
                    for t in EXTRA_CUTS:
                        mu2, const2, _ = projection.cut((1 - t) * y + t * self.center)
                        if float(np.dot(mu2, y)) + const2 > s:
                            self._add(mu2, const2)
            return True

        def _add(self, mu, const):
            self.model.addCons(
                scip.quicksum(float(m) * v for m, v in zip(mu, y_vars)) - s_var <= -const, removable=True, local=False
            )
            self.cuts += 1

        def conscheck(self, constraints, solution, checkintegrality, checklprows, printreason, completely):
            bad = enforce and self._violated(solution, False, 1e-6)
            return {"result": scip.SCIP_RESULT.INFEASIBLE if bad else scip.SCIP_RESULT.FEASIBLE}

        def consenfolp(self, constraints, nusefulconss, solinfeasible):
            added = self._violated(None, True, 1e-6)
            return {"result": scip.SCIP_RESULT.CONSADDED if added else scip.SCIP_RESULT.FEASIBLE}

        def consenfops(self, constraints, nusefulconss, solinfeasible, objinfeasible):
            bad = self._violated(None, False, 1e-6)  # a pseudo solution: the LP decides
            return {"result": scip.SCIP_RESULT.SOLVELP if bad else scip.SCIP_RESULT.FEASIBLE}

        def conssepalp(self, constraints, nusefulconss):
            added = self._violated(None, True, 1e-4)
            return {"result": scip.SCIP_RESULT.CONSADDED if added else scip.SCIP_RESULT.DIDNOTFIND}

        def conslock(self, constraint, locktype, nlockspos, nlocksneg):
            pass  # dual reductions are switched off instead (misc/allowdualreds = 0)

    return NormCuts()


def pattern_qp(
    net: ReluNetwork, x: np.ndarray, target: int, patterns: list, lo: np.ndarray, hi: np.ndarray, margin: float
) -> np.ndarray | None:
    """The exact closest point with a fixed activation pattern: min |r|² over lo ≤ r ≤ hi where
    unit j of hidden layer k is on (ẑ ≥ 0) iff patterns[k][j], and the target wins by ``margin``;
    with the pattern fixed the network is affine in r, so this is a convex QP
    (``coursekit.exact.box_qp``, float64; solved with the margin raised by 1e-9 so that
    rounding cannot take the point below it). Returns r [n], or None if the QP is infeasible
    or not solved."""
    from .exact import box_qp

    a_map, c_map = net.weights[0], net.weights[0] @ x + net.biases[0]
    rows, rhs = [], []
    for k, on in enumerate(patterns):
        sign = np.where(on, -1.0, 1.0)[:, None]  # on: −ẑ ≤ 0; off: ẑ ≤ 0
        rows.append(sign * a_map)
        rhs.append(-sign[:, 0] * c_map)
        a_map, c_map = net.weights[k + 1] @ (on[:, None] * a_map), net.weights[k + 1] @ (on * c_map) + net.biases[k + 1]
    others = [j for j in range(len(c_map)) if j != target]
    rows.append(a_map[others] - a_map[target])
    rhs.append(c_map[target] - c_map[others] - margin - 1e-9)
    A, h = (torch.from_numpy(np.concatenate(v))[None] for v in (rows, rhs))
    solved = box_qp(A, h, torch.from_numpy(lo)[None], torch.from_numpy(hi)[None], iterations=200)
    r, violation = solved.r, solved.violation  # a candidate only: the caller checks it in the network
    if violation.item() > 1e-9 * (1 + h.abs().max().item()):
        return None
    return r[0].numpy()


def activation_patterns(net: ReluNetwork, v: np.ndarray) -> list[np.ndarray]:
    """The on/off pattern (ẑ > 0) of every hidden layer at the input v [n]."""
    patterns = []
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = w @ v + b
        patterns.append(z > 0)
        v = np.maximum(z, 0.0)
    return patterns


# ---------------------------------------------------------------- the mixed-integer programme


@dataclass
class _Mip:
    """min cost·v over lb ≤ v ≤ ub, v_integer in {0, 1}, linear rows (equalities lo = hi, or
    one-sided). Variables: ℓ∞: [r, t, z_1, (a, δ, z) per hidden layer]; ℓ2: [s, r, z_1, …] with
    s ≥ φ(z_1) enforced by ``projection``'s cuts (r has no cost: it only keeps z_1 reachable)."""

    lb: list = field(default_factory=list)
    ub: list = field(default_factory=list)
    integer: list = field(default_factory=list)
    cost: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # (column indices, coefficients, lo, hi)
    r: np.ndarray | None = None
    objective: int = -1  # the index of t (ℓ∞) or s (ℓ2)
    layers: list = field(default_factory=list)  # (z, a, δ) index arrays per hidden layer
    first: np.ndarray | None = None  # z_1: the first affine map's outputs
    scale: float = 1.0  # ℓ2: s = |r|² / scale (the start's |r|², so that s is about 1)
    logits: np.ndarray | None = None
    projection: Projection | None = None

    def add(self, lb, ub, *, integer: bool = False, cost: float = 0.0) -> np.ndarray:
        start = len(self.lb)
        self.lb += list(lb)
        self.ub += list(ub)
        self.integer += [integer] * len(lb)
        self.cost += [cost] * len(lb)
        return np.arange(start, start + len(lb))

    def rows_of(self, coefficients: np.ndarray, columns: np.ndarray, lo, hi) -> None:
        """One row per line of coefficients [k, len(columns)] (zeros dropped), lo ≤ row ≤ hi."""
        for line, row_lo, row_hi in zip(
            coefficients, np.broadcast_to(lo, len(coefficients)), np.broadcast_to(hi, len(coefficients))
        ):
            keep = line != 0
            self.rows.append((columns[keep], line[keep], float(row_lo), float(row_hi)))


def _affine(mip: _Mip, w: np.ndarray, b: np.ndarray, inputs: np.ndarray, low, up) -> np.ndarray:
    """Variables z in [low, up] with z = W·inputs + b; returns their indices."""
    z = mip.add(low, up)
    mip.rows_of(np.hstack([np.eye(len(b)), -w]), np.concatenate([z, inputs]), b, b)
    return z


def _relu(mip: _Mip, z: np.ndarray, low: np.ndarray, up: np.ndarray) -> np.ndarray:
    """a = max(z, 0) for l ≤ z ≤ u: stable units need no binary; the others get δ and the
    big-M rows a ≥ z, a ≤ z − l(1 − δ), a ≤ u δ (a ≥ 0 by its bound). Returns a's indices."""
    inactive, active = up <= 0, low >= 0
    a = mip.add(np.maximum(low, 0), np.maximum(up, 0))
    d = mip.add(np.where(active, 1.0, 0.0), np.where(inactive, 0.0, 1.0), integer=True)
    for j in range(len(z)):
        if inactive[j]:
            continue  # a_j = 0 by its bounds
        if active[j]:
            mip.rows.append((np.array([a[j], z[j]]), np.array([1.0, -1.0]), 0.0, 0.0))
            continue
        mip.rows.append((np.array([a[j], z[j]]), np.array([1.0, -1.0]), 0.0, math.inf))
        mip.rows.append((np.array([a[j], z[j], d[j]]), np.array([1.0, -1.0, -low[j]]), -math.inf, -low[j]))
        mip.rows.append((np.array([a[j], d[j]]), np.array([1.0, -up[j]]), -math.inf, 0.0))
    mip.layers.append((z, a, d))
    return a


def build_mip(
    net: ReluNetwork,
    x: np.ndarray,
    target: int,
    bounds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    norm: str,
    margin: float,
    radius: float | None = None,
) -> _Mip:
    """The MIP of the module docstring for one image x [n] and one target. ``bounds``: from
    ``layer_bounds`` with the same radius (one (l, u) per affine map, the logits last)."""
    lo, hi = input_domain(x, radius, norm)
    mip = _Mip()
    c = net.weights[0] @ x + net.biases[0]
    if norm == "inf":
        mip.r = mip.add(lo, hi)
        mip.objective = int(mip.add([0.0], [radius if radius is not None else 1.0], cost=1.0)[0])
        n, pair = len(x), np.concatenate([mip.r, [mip.objective]])
        mip.rows_of(np.hstack([np.eye(n), -np.ones((n, 1))]), pair, -math.inf, 0.0)  # r_i ≤ t
        mip.rows_of(np.hstack([-np.eye(n), -np.ones((n, 1))]), pair, -math.inf, 0.0)  # −r_i ≤ t
        z = _affine(mip, net.weights[0], c, mip.r, *bounds[0])
    else:  # r stays (so that z_1 is always reachable), but s ≥ φ(z_1) replaces |r|²
        mip.scale = radius**2 if radius is not None else 1.0
        mip.objective = int(mip.add([0.0], [1.0 if radius is not None else math.inf], cost=1.0)[0])
        mip.r = mip.add(lo, hi)
        z = _affine(mip, net.weights[0], c, mip.r, *bounds[0])
        mip.projection = Projection(net.weights[0], c, lo, hi, mip.scale)
    mip.first = z
    for k in range(1, len(net.weights)):
        a = _relu(mip, z, *bounds[k - 1])
        z = _affine(mip, net.weights[k], net.biases[k], a, *bounds[k])
    mip.logits = z
    others = [j for j in range(len(z)) if j != target]
    lines = np.zeros((len(others), len(z)))
    lines[np.arange(len(others)), others], lines[:, target] = 1.0, -1.0
    mip.rows_of(lines, z, -math.inf, -margin)  # z_j − z_t ≤ −margin
    return mip


def start_values(mip: _Mip, net: ReluNetwork, x: np.ndarray, r: np.ndarray, norm: str) -> np.ndarray:
    """A full assignment of the MIP's variables for the point x + r (an attack's example)."""
    values = np.zeros(len(mip.lb))
    lb, ub = np.array(mip.lb), np.array(mip.ub)
    if mip.r is not None:
        values[mip.r] = r
    values[mip.objective] = np.abs(r).max() if norm == "inf" else np.dot(r, r) / mip.scale
    z = net.weights[0] @ (x + r) + net.biases[0]
    values[mip.first] = z
    after = [layer[0] for layer in mip.layers[1:]] + [mip.logits]
    for k, ((_, a, d), z_next) in enumerate(zip(mip.layers, after)):
        values[a] = np.maximum(z, 0.0)
        values[d] = np.where(lb[d] == ub[d], lb[d], (z > 0).astype(float))
        z = net.weights[k + 1] @ values[a] + net.biases[k + 1]
        values[z_next] = z
    return values


@dataclass
class _Solved:
    """What the solver returns for one MIP: the best solution's variables (None if none), the
    proven lower bound on the objective (+inf when it proved infeasibility), SCIP's status word,
    branch-and-bound nodes, seconds, and the cuts of ``Projection`` it added (ℓ2)."""

    values: np.ndarray | None
    dual: float
    status: str
    nodes: int
    seconds: float
    cuts: int = 0


def _scip_model(scip, mip: _Mip, time_limit: float, gap_tol: float, options: dict):
    """A SCIP model of ``mip`` (one thread, quiet) and its variables."""
    model = scip.Model()
    model.hideOutput()
    model.setParam("limits/time", float(time_limit))
    model.setParam("limits/gap", float(gap_tol))
    model.setParam("lp/threads", 1)
    for key, value in options.items():
        model.setParam(key, value)
    v = [
        model.addVar(lb=lb, ub=None if math.isinf(ub) else ub, vtype="B" if integer else "C", obj=cost)
        for lb, ub, integer, cost in zip(mip.lb, mip.ub, mip.integer, mip.cost)
    ]
    for columns, coefficients, lo, hi in mip.rows:
        expr = scip.quicksum(c * v[i] for i, c in zip(columns.tolist(), coefficients.tolist()))
        if lo == hi:
            model.addCons(expr == lo)
        elif math.isinf(lo):
            model.addCons(expr <= hi)
        else:
            model.addCons(expr >= lo)
    return model, v


FORMULATIONS = ("projected", "native", "native+cuts")


def _l2_objective(scip, model, v: list, mip: _Mip, start, formulation: str):
    """The ℓ2 objective s ≥ |r|² / scale in SCIP (see ``solve_scip``); returns the cut handler
    (or None) and the variables s_i ≥ r_i² of the native formulation (or [])."""
    y_vars, s_var = [v[i] for i in mip.first], v[mip.objective]  # type: ignore[union-attr]
    handler, squares = None, []
    if formulation != "projected":
        squares = [model.addVar(lb=0.0) for _ in mip.r]  # type: ignore[union-attr]
        for si, i in zip(squares, mip.r):  # type: ignore[arg-type]
            model.addCons(si >= v[i] * v[i])
        model.addCons(mip.scale * s_var >= scip.quicksum(squares))
    if formulation == "native":
        return handler, squares
    if formulation == "projected":
        model.setParam("misc/allowstrongdualreds", False)
        model.setParam("misc/allowweakdualreds", False)
        model.setParam("numerics/feastol", FEASTOL)
        model.setParam("separating/aggregation/freq", -1)  # its c-MIR cuts cost a third of the time here
    handler = _norm_cuts_handler(scip, mip.projection, y_vars, s_var, enforce=formulation == "projected")  # type: ignore[arg-type]
    model.includeConshdlr(
        handler,
        "distortion",
        "s >= min |r|^2 over r giving z_1",
        sepapriority=1,
        enfopriority=-1,
        chckpriority=-1,
        sepafreq=1,
        propfreq=-1,
        eagerfreq=-1,
        maxprerounds=0,
        delaysepa=False,
        delayprop=False,
        needscons=False,
    )
    if start is not None:  # the tight cut at the start, and the start as the in-out centre
        handler.center = start[mip.first]
        mu, const, _ = mip.projection.cut(start[mip.first])  # type: ignore[union-attr]
        model.addCons(scip.quicksum(float(m) * y for m, y in zip(mu, y_vars)) - s_var <= -const)
    return handler, squares


def solve_scip(
    mip: _Mip,
    *,
    start: np.ndarray | None = None,
    time_limit: float = 60.0,
    gap_tol: float = 1e-4,
    options: dict | None = None,
    statistics: str | None = None,
    formulation: str = "projected",
) -> _Solved:
    """Solve ``mip`` with SCIP on one thread. ``start``: a full assignment, tried as the first
    incumbent. ℓ2 (``mip.projection``), ``formulation``: "projected": s ≥ φ(z_1) by the cuts
    of ``_norm_cuts_handler`` only, with in-out cuts towards the start (dual reductions off,
    since the handler does not lock variables; SCIP's feasibility tolerance 1e-9; no c-MIR
    cuts, measured slower);
    "native": SCIP's own s ≥ Σ s_i, s_i ≥ r_i² (the issue's probe); "native+cuts": both (the
    cuts as valid inequalities). ``options``: SCIP parameters; ``statistics``: a file for SCIP's."""
    check_choice("formulation", formulation, FORMULATIONS)
    scip = _scip()
    model, v = _scip_model(scip, mip, time_limit, gap_tol, options or {})
    handler, squares = (None, []) if mip.projection is None else _l2_objective(scip, model, v, mip, start, formulation)
    if start is not None:
        sol = model.createSol()
        for var, value in zip(v, start):
            model.setSolVal(sol, var, float(value))
        for si, i in zip(squares, mip.r if squares else []):  # type: ignore[arg-type]
            model.setSolVal(sol, si, float(start[i]) ** 2)
        model.addSol(sol, free=True)
    began = time.perf_counter()
    try:
        model.optimize()
        status = model.getStatus()
    except Exception:  # noqa: BLE001 - SCIP aborts on LP trouble it cannot resolve: keep what it has
        status = "error"
    seconds = time.perf_counter() - began
    if statistics:
        model.writeStatistics(statistics)
    values = None
    if model.getNSols() > 0:
        best = model.getBestSol()
        values = np.array([model.getSolVal(best, var) for var in v])
    dual = math.inf if status == "infeasible" else -math.inf if status == "error" else model.getDualbound()
    return _Solved(values, dual, status, int(model.getNNodes()), seconds, handler.cuts if handler else 0)


def _highs():
    try:
        import highspy
    except ImportError:
        raise ImportError("the HiGHS MILP solver is missing: `pip install highspy`") from None
    return highspy


def solve_highs(
    mip: _Mip,
    *,
    start: np.ndarray | None = None,
    time_limit: float = 60.0,
    gap_tol: float = 1e-4,
    options: dict | None = None,
) -> _Solved:
    """Solve an ℓ∞ ``mip`` (an MILP) with HiGHS (``highspy``) on one thread, ``start`` as its
    first incumbent. HiGHS has no mixed-integer quadratic solver, so ℓ2 is SCIP's alone."""
    if mip.projection is not None:
        raise ValueError("HiGHS solves MILPs only; the ℓ2 problem (an MIQP) needs SCIP")
    highspy = _highs()
    from scipy import sparse

    h = highspy.Highs()
    for key, value in {
        "output_flag": False,
        "threads": 1,
        "time_limit": float(time_limit),
        "mip_rel_gap": float(gap_tol),
        **(options or {}),
    }.items():
        h.setOptionValue(key, value)
    inf = highspy.kHighsInf
    rows = [(k, c, v) for k, (cols, vals, _, _) in enumerate(mip.rows) for c, v in zip(cols, vals)]
    k, c, v = (np.array(part) for part in zip(*rows))
    a = sparse.csc_matrix((v, (k, c)), shape=(len(mip.rows), len(mip.lb)))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(mip.lb), len(mip.rows)
    lp.col_cost_ = np.array(mip.cost, dtype=float)
    lp.col_lower_, lp.col_upper_ = np.array(mip.lb, dtype=float), np.minimum(np.array(mip.ub, dtype=float), inf)
    lp.row_lower_ = np.maximum(np.array([r[2] for r in mip.rows]), -inf)
    lp.row_upper_ = np.minimum(np.array([r[3] for r in mip.rows]), inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in mip.integer]
    h.passModel(lp)
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = list(map(float, start))
        solution.value_valid = True
        h.setSolution(solution)
    began = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - began
    status = h.modelStatusToString(h.getModelStatus()).lower()
    info = h.getInfo()
    values = np.array(h.getSolution().col_value) if info.primal_solution_status == 2 else None
    dual = math.inf if status == "infeasible" else info.mip_dual_bound
    return _Solved(values, dual, status, int(info.mip_node_count), seconds)


# ---------------------------------------------------------------- the public function


@dataclass
class VerificationResult:
    """Exact minimum distortions, one entry per (image, target); all tensors on the CPU.

    x_adv       [N, ...] float64: the closest point found that reaches the target, checked in
                the model in float64 and in its own dtype (x itself where there is none)
    target      [N] int64
    distance    [N] |r| of x_adv in the chosen norm (|r|₂ or |r|∞); inf where no point
    lower_bound [N] the solver's proven lower bound on the minimum (same unit; inf where it
                proved that no point of the box reaches the target with the margin)
    margin      [N] z_target − max_{j≠target} z_j at x_adv (float64; ≥ margin − MARGIN_TOL)
    optimal     [N] bool: distance − lower_bound ≤ gap_tol · distance (the gap is closed)
    status      per row: "optimal", "infeasible" (proven: the target cannot win in the box),
                "gap open" (a point, but the gap is not closed: the time limit, or the
                solver's tolerances), "no point" (none found in time), "below precision"
                (points reach the target by the margin in float64 but the model itself, in
                its own dtype, does not classify them as the target: raise the margin) or
                "solver error" (SCIP aborted on numerical trouble: the best checked point, no
                bound)
    seconds     [N] the solver's wall time; nodes [N] branch-and-bound nodes
    unstable    [N] hidden units that needed a binary variable
    start_used  [N] bool: the given start was feasible and became the first incumbent
    """

    x_adv: torch.Tensor
    target: torch.Tensor
    distance: torch.Tensor
    lower_bound: torch.Tensor
    margin: torch.Tensor
    optimal: torch.Tensor
    status: list
    seconds: torch.Tensor
    nodes: torch.Tensor
    unstable: torch.Tensor
    start_used: torch.Tensor
    norm: str = "2"
    gap_tol: float = 1e-4

    @property
    def distortion(self) -> torch.Tensor:
        """The paper's distortion |r|₂ / sqrt(n) (n pixels) of ``distance`` (ℓ2 only)."""
        if self.norm != "2":
            raise ValueError("distortion is the ℓ2 measure; this result is for norm='inf'")
        return self.distance / math.sqrt(self.x_adv[0].numel())

    def __len__(self) -> int:
        return len(self.target)


def _norm(r: np.ndarray, norm: str) -> float:
    return float(np.linalg.norm(r)) if norm == "2" else float(np.abs(r).max(initial=0.0))


def _margins(model64: nn.Module, v: np.ndarray, target: int, shape) -> float:
    """z_target − max_{j≠target} z_j of the float64 copy of the model at the point v [n]."""
    with torch.no_grad():
        z = model64(torch.from_numpy(v).view(1, *shape))[0]
    return float(z[target] - torch.cat([z[:target], z[target + 1 :]]).max())


def _check_start(model64, xi, start_i, target, margin, norm, shape):
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


def _rounding_allowance(net: ReluNetwork, v: np.ndarray, roundoff: float) -> float:
    """How far rounding in a dtype of unit roundoff ``roundoff`` (2⁻²⁴ for float32) can
    typically move a difference of two logits at the point v [n]: each layer's error is its
    input's error through |W| plus √(fan-in)·roundoff times the size of its terms |W||a| + |b|
    (the usual statistical estimate, Higham §2.8; the worst case, fan-in·roundoff, is 30 times
    larger on MNIST, and 1,000 times the error measured there), twice for a difference."""
    active, error = v, np.zeros_like(v)
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        size = np.abs(w) @ np.abs(active) + np.abs(b)
        error = np.abs(w) @ error + math.sqrt(w.shape[1] + 1) * roundoff * size
        z = w @ active + b
        active = np.maximum(z, 0.0) if k < len(net.weights) - 1 else z
    return 2 * float(error.max())


@dataclass(frozen=True)
class _PointCheck:
    """When a candidate point is an answer: inside the box, and the target winning (1) by
    margin − MARGIN_TOL in the float64 copy of the model (the solver's tolerance), (2) by more
    than the model's own dtype can round away (``_rounding_allowance``), and (3) in the model
    itself, in its own dtype on its device. Within rounding of the decision boundary a float32
    model can decide otherwise than its float64 copy, and otherwise in a batch than alone
    (issue 31: with margin 0, 3 of 8 "optimal" points were not in the target class)."""

    model64: nn.Module
    model: nn.Module
    net: ReluNetwork
    shape: torch.Size
    margin: float
    roundoff: float  # the unit roundoff of the model's dtype

    def in_float64(self, v: np.ndarray, target: int) -> bool:
        """(1): inside the box, the target ahead by margin − MARGIN_TOL in float64."""
        return bool(v.min() >= 0 and v.max() <= 1) and _margins(self.model64, v, target, self.shape) >= (
            self.margin - MARGIN_TOL
        )

    def in_own_precision(self, v: np.ndarray, target: int) -> bool:
        """(2) and (3), for a point that passed (1)."""
        if _margins(self.model64, v, target, self.shape) <= _rounding_allowance(self.net, v, self.roundoff):
            return False
        with torch.no_grad(), eval_mode(self.model):
            z = self.model(to_model(self.model, torch.from_numpy(v).view(1, *self.shape)))[0]
        return bool(z[target] > torch.cat([z[:target], z[target + 1 :]]).max())


def _checked(check: _PointCheck, xi, candidates, target, norm) -> tuple[np.ndarray, float, bool]:
    """The closest candidate point that ``check`` accepts: (v, distance, False), or
    (x, inf, below) if none does, ``below`` True when some candidate passed in float64 but not
    in the model's own precision."""
    in_float64 = [v for v in candidates if check.in_float64(v, target)]
    checked = [(v, _norm(v - xi, norm)) for v in in_float64 if check.in_own_precision(v, target)]
    if not checked:
        return xi, math.inf, bool(in_float64)
    v, distance = min(checked, key=lambda c: c[1])
    return v, distance, False


def _status(distance: float, lower: float, gap_tol: float, below_precision: bool = False) -> str:
    if math.isinf(lower):
        return "infeasible"
    if not math.isfinite(distance):
        return "below precision" if below_precision else "no point"
    return "optimal" if distance - lower <= gap_tol * distance else "gap open"


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


def _verify_one(net, model64, xi, target, start_i, shape, settings: dict) -> dict:
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
    if math.isfinite(d0):  # the best start so far: incumbent and radius
        r_start, radius = v0 - xi, min(radius, d0 * (1 + 1e-7) + 1e-9)
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


# ---------------------------------------------------------------- small ReLU networks to verify

# The hash of this module's code and of everything it imports (``records.modules_version``): part of
# the ReLU networks' cache key, so that a changed statement in that code retrains them.
RELU_CODE_VERSION = modules_version("verification")


def relu_mlp(hidden: tuple[int, ...], inputs: int = 784, classes: int = 10) -> nn.Sequential:
    """Flatten, then Linear/ReLU for each width in ``hidden``, then Linear to ``classes`` logits
    (e.g. hidden=(16,) is 784-16-10). Freshly initialised by torch's current seed."""
    if not isinstance(hidden, tuple) or not all(isinstance(h, int) and h >= 1 for h in hidden):
        raise ValueError(f"hidden must be a tuple of positive ints, got {hidden!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    sizes = [inputs, *hidden]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], classes))


def train_relu_mlp(
    hidden: tuple[int, ...],
    *,
    epochs: int = 2,
    seed: int = 0,
    lr: float = 1e-3,
    batch_size: int = 128,
    use_cache: bool = True,
) -> nn.Sequential:
    """``relu_mlp(hidden)`` trained on MNIST's 60,000 training images by minibatch Adam
    (cross-entropy, no regulariser), seeded; cached like the zoo. In eval mode on the CPU
    (a 784-16-10 network: ~5 s per epoch on one core). The initialisation and the minibatch
    order come from ``seed`` alone: the global random generator is neither read nor changed."""
    from .cache import key_digest, record_digest, save_record
    from .config import cache_dir
    from .data import load_mnist
    from .train import load_model_record, model_record

    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    check_positive("lr", lr)
    key = {
        "name": "relu-mlp",
        "hidden": list(hidden),
        "epochs": epochs,
        "seed": seed,
        "lr": lr,
        "batch_size": batch_size,
        "code": RELU_CODE_VERSION,
    }
    record_digest(key)  # a key the cache file cannot hold is refused before the training
    with torch.random.fork_rng(devices=[]):  # initialised by ``seed``; the caller's generator is left alone
        torch.manual_seed(seed)
        model = relu_mlp(hidden)
    path = cache_dir() / "models" / f"relu-mlp-{'-'.join(map(str, hidden))}-{key_digest(key)}.pt"
    if use_cache and load_model_record(model, path, key) is not None:
        return model.eval()
    x, y = load_mnist("train")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            index = order[i : i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    model.eval()
    if use_cache:
        save_record(model_record(model, {"key": key}), path)
    return model


# Sizes of the exact-verification experiments per profile (the profiles of ``coursekit.config``).
# The solver runs on the CPU in every profile (SCIP, one thread).
# Kept for the chapters: ``config.profile_sizes("verify", profile)``.
VERIFY_SIZES = profile_views("verify")


def verify_size(name: str, profile: str | None = None) -> Any:
    """The size ``name`` of ``profile_sizes("verify", profile)`` (default: the current profile),
    with an error naming the known ones."""
    sizes = profile_sizes("verify", profile)
    if name not in sizes:
        raise ValueError(f"name must be one of {tuple(sizes)}, got {name!r}")
    return sizes[name]


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
    mean and largest solver seconds per image, mean unstable units (binary variables)."""
    import pandas as pd

    from .modern_attacks.registry import run_attack

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
