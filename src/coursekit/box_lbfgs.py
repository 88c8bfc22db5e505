"""A batched, box-constrained L-BFGS solver (the engine of ``attack.lbfgs_attack``): minimise
F_i(x_i) over the box [lower, upper]^m for every row i of a batch at once, on any device.

Each row has its own L-BFGS history (``history`` pairs), its own active set of pixels at the
bounds and its own backtracking line search; one evaluation of F per iteration for the whole
batch; the rows still converging are compacted every ``check_every`` iterations (the only host
synchronisation). The objective is a callback: ``evaluate(x, rows) -> (F [n], ∇F [n, m])`` for
the points x [n, m] of the global rows ``rows`` [n], so that the caller can keep whatever it
records of each evaluated point (the attack keeps the closest point that reaches its target).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from ._checks import check_bounds, check_int, check_positive

__all__ = [
    "BoxLbfgsOptions",
    "LbfgsState",
    "gradient_converged",
    "lbfgs_direction",
    "minimize_box",
    "progress_stalled",
]

Evaluate = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class BoxLbfgsOptions:
    """The solver's options: the box, at most ``max_iter`` iterations, ``history`` L-BFGS pairs
    per row; a row stops when its projected gradient's largest entry is below ``tol``
    (``gradient_converged``) or an accepted step lowers F by less than ``ftol``·max(|F|, 1)
    (``progress_stalled``); the batch drops its stopped rows every ``check_every`` iterations
    (0: never). Each option is checked when the options are made (a ValueError names it)."""

    lower: float
    upper: float
    max_iter: int
    history: int
    tol: float
    ftol: float
    check_every: int

    def __post_init__(self) -> None:
        check_bounds((self.lower, self.upper))
        check_int("max_iter", self.max_iter)
        check_int("history", self.history)
        check_int("check_every", self.check_every, minimum=0)
        check_positive("tol", self.tol, allow_zero=True)
        check_positive("ftol", self.ftol, allow_zero=True)


@dataclass
class LbfgsState:
    """Per-row L-BFGS state: the history P = [S; Y] [n, 2h, m], its Gram matrices SY, YY
    [n, h, h], ρ [n, h] (0 = empty slot), the slots' ``age`` [n, h] (0 = newest), the line
    search's step ``alpha`` [n] and whether each row is still converging (``active`` [n])."""

    P: torch.Tensor
    SY: torch.Tensor
    YY: torch.Tensor
    rho: torch.Tensor
    age: torch.Tensor
    alpha: torch.Tensor
    active: torch.Tensor

    @classmethod
    def empty(cls, x: torch.Tensor, history: int) -> LbfgsState:
        """The state of rows x [n, m] before any step: no history, α = 1, all active."""
        n, m = x.shape
        dev, dtype, h = x.device, x.dtype, history
        return cls(
            P=torch.zeros(n, 2 * h, m, device=dev, dtype=dtype),
            SY=torch.zeros(n, h, h, device=dev, dtype=dtype),
            YY=torch.zeros(n, h, h, device=dev, dtype=dtype),
            rho=torch.zeros(n, h, device=dev, dtype=dtype),
            age=torch.arange(h, device=dev).expand(n, h).clone(),
            alpha=torch.ones(n, device=dev, dtype=dtype),
            active=torch.ones(n, device=dev, dtype=torch.bool),
        )

    def select(self, keep: torch.Tensor) -> LbfgsState:
        """The state of the rows ``keep`` only."""
        return LbfgsState(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})


def _solve_unit_nilpotent(M: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve (I + M) z = b for a batch of nilpotent M [N, h, h] (a permuted strictly triangular
    matrix: M^h = 0), b [N, h]. Uses (I + M)⁻¹ = (I − M)(I + M²)(I + M⁴)…, which terminates, so
    only batched matrix products are needed (no LU factorisation, which is slow for many tiny
    systems on a GPU)."""
    z = b - torch.bmm(M, b.unsqueeze(2)).squeeze(2)
    power = M
    for _ in range(max(1, math.ceil(math.log2(M.shape[1]))) - 1):
        power = torch.bmm(power, power)
        z = z + torch.bmm(power, z.unsqueeze(2)).squeeze(2)
    return z


def lbfgs_direction(
    g: torch.Tensor,
    P: torch.Tensor,
    SY: torch.Tensor,
    YY: torch.Tensor,
    rho: torch.Tensor,
    age: torch.Tensor,
    gamma: torch.Tensor,
) -> torch.Tensor:
    """H·g for each row, H the L-BFGS inverse-Hessian approximation (the two-loop recursion).

    The recursion is done on h-vectors: with Sg = Sᵀg, Yg = Yᵀg and the Gram matrices
    SY[j, i] = s_jᵀy_i, YY = YᵀY, the first loop's coefficients a solve
    (I + ρ·SY⊙[i newer than j]) a = ρ·Sg, the second loop's e = a − b solve
    (I + ρ·SYᵀ⊙[i older than j]) e = a − ρ·γ(Yg − YY a), and H·g = γ(g − Y a) + S e.
    Only three products touch the m-dimensional history P = [S; Y] [N, 2h, m]; each row
    keeps its own pair order through ``age`` [N, h] (0 = newest; empty slots have ρ = 0).

    Args:
        g: gradients [N, m]; SY, YY: [N, h, h]; rho: 1/(s·y) [N, h] (0 for empty slots);
        age: [N, h] int; gamma: the initial scaling [N].
    """
    h = SY.shape[1]
    sg_yg = torch.bmm(P, g.unsqueeze(2)).squeeze(2)
    sg, yg = sg_yg[:, :h], sg_yg[:, h:]
    filled = rho > 0
    pair = filled[:, :, None] & filled[:, None, :]
    newer = (age[:, None, :] < age[:, :, None]) & pair  # [n, j, i]: pair i is newer than pair j
    older = (age[:, None, :] > age[:, :, None]) & pair
    a = _solve_unit_nilpotent(rho[:, :, None] * SY * newer, rho * sg)
    u = gamma[:, None] * (yg - torch.bmm(YY, a.unsqueeze(2)).squeeze(2))
    e = _solve_unit_nilpotent(rho[:, :, None] * SY.transpose(1, 2) * older, a - rho * u)
    coefficients = torch.cat([e, -gamma[:, None] * a], dim=1).unsqueeze(1)
    return gamma[:, None] * g + torch.bmm(coefficients, P).squeeze(1)


def _trial_point(
    state: LbfgsState, x: torch.Tensor, g: torch.Tensor, free: torch.Tensor, lower: float, upper: float
) -> torch.Tensor:
    """x + α·d projected onto the box, d the L-BFGS direction on the free pixels (x for the
    rows no longer active)."""
    P, SY, YY, rho, age = state.P, state.SY, state.YY, state.rho, state.age
    rows = torch.arange(len(x), device=x.device)
    newest = age.argmin(1)
    has_history = rho[rows, newest] > 0
    gamma_history = 1.0 / (rho[rows, newest] * YY[rows, newest, newest]).clamp_min(1e-30)
    gamma_first = 0.1 / (g * free).abs().amax(1).clamp_min(1e-12)  # first step moves a pixel by ≤ 0.1
    gamma = torch.where(has_history, gamma_history, gamma_first)
    d = -lbfgs_direction(g * free, P, SY, YY, rho, age, gamma) * free
    step = torch.where(state.active, state.alpha, torch.zeros_like(state.alpha))
    return (x + step[:, None] * d).clamp(lower, upper)


def _line_search(
    state: LbfgsState, s: torch.Tensor, g: torch.Tensor, fx: torch.Tensor, f_trial: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Armijo test of the step s = x_trial − x per row; sets the next step α (1 after an
    accepted or a failed search, else safeguarded quadratic interpolation). Returns
    (accept, stuck) [N] bool."""
    alpha, active = state.alpha, state.active
    slope = (g * s).sum(1)
    accept = active & (f_trial <= fx + 1e-4 * slope) & (slope < 0)
    curvature = f_trial - fx - slope
    interpolated = -slope * alpha / (2 * curvature.clamp_min(1e-30))
    shrunk = torch.minimum(torch.maximum(interpolated, 0.1 * alpha), 0.5 * alpha)
    stuck = active & ~accept & (shrunk < 1e-10)
    state.alpha = torch.where(accept | stuck, torch.ones_like(alpha), shrunk)
    return accept, stuck


def _store_pair(
    state: LbfgsState, s: torch.Tensor, yv: torch.Tensor, accept: torch.Tensor, stuck: torch.Tensor
) -> None:
    """Store (s, y) where the step was accepted and the curvature condition holds, in each
    row's oldest (or an empty) slot, updating SY, YY, ρ and the ages; a failed line search
    (``stuck``) empties the history."""
    P, SY, YY, rho, age = state.P, state.SY, state.YY, state.rho, state.age
    h = SY.shape[1]
    rows = torch.arange(len(s), device=s.device)
    s_dot_y = (s * yv).sum(1)
    store = accept & (s_dot_y > 1e-10 * yv.norm(dim=1) * s.norm(dim=1))
    slot = torch.where(rho > 0, age, torch.full_like(age, h)).argmax(1)
    keep_slot = ~store[:, None]
    P[rows, slot] = torch.where(keep_slot, P[rows, slot], s)
    P[rows, h + slot] = torch.where(keep_slot, P[rows, h + slot], yv)
    products = torch.bmm(P, torch.stack([s, yv], 2))  # [n, 2h, 2]: S·s, S·y_new, Y·s_new, Y·y_new
    SY_row = products[:, h:, 0]  # y_i·s_new  → SY[slot, i]
    SY_col = products[:, :h, 1]  # s_i·y_new  → SY[i, slot]
    YY_new = products[:, h:, 1]  # y_i·y_new
    onehot = torch.nn.functional.one_hot(slot, h).to(torch.bool) & store[:, None]
    SY = torch.where(onehot[:, :, None], SY_row[:, None, :], SY)
    state.SY = torch.where(onehot[:, None, :], SY_col[:, :, None], SY)
    YY = torch.where(onehot[:, :, None], YY_new[:, None, :], YY)
    state.YY = torch.where(onehot[:, None, :], YY_new[:, :, None], YY)
    rho = torch.where(onehot, (1.0 / s_dot_y.clamp_min(1e-30))[:, None], rho)
    state.age = torch.where(store[:, None], torch.where(onehot, torch.zeros_like(age), age + 1), age)
    state.rho = torch.where(stuck[:, None], torch.zeros_like(rho), rho)  # a failed line search restarts


def gradient_converged(x: torch.Tensor, g: torch.Tensor, options: BoxLbfgsOptions) -> torch.Tensor:
    """The first stopping test, per row [N] bool: the projected gradient at x [N, m] (g [N, m]
    the gradient), the step x − clip(x − g) to the box, is at most ``options.tol`` in every
    pixel (a point where no feasible direction descends, as scipy's L-BFGS-B ``pgtol``; a NaN
    gradient stops the row too)."""
    projected_gradient = (x - (x - g).clamp(options.lower, options.upper)).abs().amax(1)
    return ~(projected_gradient > options.tol)


def progress_stalled(
    accept: torch.Tensor, fx: torch.Tensor, f_trial: torch.Tensor, options: BoxLbfgsOptions
) -> torch.Tensor:
    """The second stopping test, per row [N] bool: an accepted step (``accept``) lowered F from
    fx to f_trial by at most ``options.ftol``·max(|fx|, 1) (as scipy's ``ftol``)."""
    return accept & (fx - f_trial <= options.ftol * fx.abs().clamp_min(1.0))


def minimize_box(evaluate: Evaluate, start: torch.Tensor, options: BoxLbfgsOptions) -> torch.Tensor:
    """Minimise every row's F over the box from ``start`` [N, m]; returns the final iterates [N, m].

    A projected quasi-Newton method: the pixels at a bound whose gradient points outwards are
    held (the active set), the L-BFGS direction is computed on the others (``_trial_point``),
    the step is projected onto the box, and a backtracking (Armijo) line search with quadratic
    interpolation runs per row (``_line_search``), one trial point per iteration for the whole
    batch (``evaluate``). Every ``check_every`` iterations the batch shrinks to the rows still
    converging.
    """
    lower, upper = options.lower, options.upper
    result = start.clone()
    ids = torch.arange(start.shape[0], device=start.device)  # the global row of each working row
    x = start.clone()
    state = LbfgsState.empty(x, options.history)
    fx, g = evaluate(x, ids)
    for it in range(options.max_iter):
        # Active set: pixels at a bound whose gradient pushes outwards stay where they are.
        blocked = ((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0))
        free = (~blocked).to(x.dtype)
        state.active &= ~gradient_converged(x, g, options)
        if options.check_every and (it + 1) % options.check_every == 0:
            still = int(state.active.sum())
            if still == 0:
                break
            if still <= 0.75 * len(x):  # compact: drop the converged rows from the batch
                keep = state.active.nonzero().squeeze(1)
                done = (~state.active).nonzero().squeeze(1)
                result[ids[done]] = x[done]
                ids, x, g, fx, free = ids[keep], x[keep], g[keep], fx[keep], free[keep]
                state = state.select(keep)  # and go on with this iteration
        x_trial = _trial_point(state, x, g, free, lower, upper)
        f_trial, g_trial = evaluate(x_trial, ids)
        accept, stuck = _line_search(state, x_trial - x, g, fx, f_trial)
        _store_pair(state, x_trial - x, g_trial - g, accept, stuck)
        x = torch.where(accept[:, None], x_trial, x)
        g = torch.where(accept[:, None], g_trial, g)
        state.active = state.active & ~progress_stalled(accept, fx, f_trial, options)
        fx = torch.where(accept, f_trial, fx)
    result[ids] = x
    return result
