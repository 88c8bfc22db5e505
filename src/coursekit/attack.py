"""The paper's box-constrained L-BFGS attack (§4.1), batched and GPU-native.

For an image x and a target label l the paper wants D(x, l): the closest x + r with
f(x + r) = l and x + r in the box [0, 1]^m. It approximates it by the penalty problem

    minimise   c·|r|² + loss_f(x + r, l)   subject to   x + r ∈ [lower, upper]^m,

solved by a box-constrained quasi-Newton method, with a search over c. We penalise the
*squared* norm: it is differentiable at r = 0 (where every run starts) and traces the same
family of solutions as c·|r| (a minimiser of c|r| + loss is a minimiser of c'|r|² + loss with
c' = c / (2|r*|)), so only the scale of c changes.

**Reading the paper's "minimum c".** c weighs the distortion, so a *larger* c gives a smaller
r; past some value the minimiser no longer reaches l. The useful c is therefore the *largest*
weight on |r| whose minimiser is still classified as l (equivalently, the smallest weight
1/c on the loss). The search keeps, per image, a bracket [c_success, c_failure] and bisects it
geometrically.

``lbfgs_attack``
    every tensor stays on the model's device and the inner loop makes no host copies: each
    image has its own c, its own L-BFGS history (``history`` pairs), its own active set of
    pixels at the bounds, and its own backtracking line search (one model evaluation per
    iteration for the whole batch). Convergence is checked every ``check_every`` iterations.
``backend="scipy"``
    the same problem and the same search over c, each penalty problem solved per image by
    ``scipy.optimize.minimize(method="L-BFGS-B")``: the reference the tests compare against.
``polish`` (default 3 rounds)
    after the search over c, the best example is moved towards the exact closest point of the
    target region of the model *linearised* at it (the target's logit against its five strongest
    rivals, a small QP solved batched by ``exact.box_qp``), kept only where the model agrees and
    it is closer. For a linear model (FC10) one round is the exact D(x, l) on condition that the
    classes tying with the target at the optimum are among those five; for a network it
    recovers most of what the penalty (cross-entropy pulls towards every class) gives away. An
    image the search did not reach is polished from where the search ended.
``min_distortion_attack``
    D(x, l) for every l ≠ y, all targets of all images in one batch, keeping per image the
    closest misclassified example: the "minimum distortion" of Tables 1–4.

Distortion is the paper's measure sqrt(Σ r_i² / n), n the number of pixels (784 on MNIST).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_bounds,
    check_choice,
    check_images,
    check_int,
    check_labels,
    check_positive,
    every_other_label,
    logit_margin,
    to_model,
    without_label,
)
from .box_lbfgs import BoxLbfgsOptions, minimize_box
from .config import attack_chunk_size
from .progress import record_work
from .records import code_version, module_closure
from .results import AttackResult, PassCounter, attacking, distortion, from_points

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


__all__ = [
    "ATTACK_CODE_VERSION",
    "ATTACK_MODULES",
    "BACKENDS",
    "DEFAULT_HISTORY",
    "POLISH_GAIN",
    "POLISH_MARGIN",
    "POLISH_RIVALS",
    "RESCUE_STEPS",
    "RESULT_CONSTANTS",
    "RUN_ONLY_OPTIONS",
    "SUCCESS_MARGIN",
    "all_other_targets",
    "attack_cache_key",
    "attack_code_version",
    "AttackResult",
    "distortion",
    "lbfgs_attack",
    "min_distortion_attack",
    "solve_penalty",
    "success_margin",
]

# The code an attack's result can depend on: this module and every coursekit module it imports,
# directly or through others, at the top or inside a function (the polish runs exact.box_qp, the
# result is results.from_points), read from the import statements (``records.module_closure``).
ATTACK_MODULES = module_closure("attack")


def attack_code_version() -> str:
    """A 16-hex-digit hash of the attack's code: ``records.code_version`` (the normalised
    source tokens, the same on Python 3.10-3.13) of each module in ATTACK_MODULES."""
    joined = ",".join(f"{module}:{code_version(module)}" for module in ATTACK_MODULES)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


ATTACK_CODE_VERSION = attack_code_version()  # part of every cache key of attack results

BACKENDS = ("torch", "scipy")
DEFAULT_HISTORY = 5  # L-BFGS pairs per image (each pass reads the history: 5 is half the traffic of 10)
SUCCESS_MARGIN = 1e-3  # in logits, for a model whose logits spread over at least 1 (else scaled)
RESCUE_STEPS = 4  # extra values of c (each 10× smaller) for the images no value has reached yet
POLISH_MARGIN = 2.0  # the linearised problem aims a little inside the target region: 2 × the search's margin
POLISH_GAIN = 1e-3  # a round that shortens |r|² by less than this (relative) ends an image's polish
POLISH_RIVALS = 5  # competing classes kept in the linearised problem (those with the top logits)


def success_margin(logits: torch.Tensor) -> torch.Tensor:
    """The margin [N] by which the search wants the target's logit to win, from the logits
    [N, K] at the clean images: SUCCESS_MARGIN times the spread max − min of the image's logits
    where that is below 1 (a model with tiny logits: an absolute 1e-3 would be out of reach),
    else SUCCESS_MARGIN; never 0, so that a tie does not count."""
    spread = (logits.amax(1) - logits.amin(1)).clamp(max=1.0)
    return (SUCCESS_MARGIN * spread).clamp_min(torch.finfo(logits.dtype).tiny)


def _reaches(logits: torch.Tensor, target: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """The target's logit beats every other by at least ``margin`` [N] bool.

    A point exactly on the decision boundary can flip class when it is evaluated in a batch of
    another size (floating-point sums are not associative), so the search only counts points
    with a small margin (``success_margin``); the reported ``success`` is the plain argmax,
    recomputed at the end (``results.from_points``).
    """
    return logit_margin(logits, target) >= margin


# ---------------------------------------------------------------- the problem and the search's state


@dataclass(frozen=True)
class _Problem:
    """The rows the attack works on, n of them (each an image and its target).

    model; x0 [n, m] the clean images, flattened; ``shape`` one image's shape; target [n];
    margin [n] (``success_margin``: by how much the target must win); the box [lower, upper];
    ``passes`` the attack's PassCounter and ``images`` [n] the image (row of the attack's
    batch) each row is, so that the hooks count every pass against its image.
    """

    model: nn.Module
    x0: torch.Tensor
    shape: torch.Size
    target: torch.Tensor
    margin: torch.Tensor
    lower: float
    upper: float
    passes: PassCounter
    images: torch.Tensor

    def rows(self, index: torch.Tensor) -> _Problem:
        """The problem of the rows ``index`` only."""
        return replace(
            self, x0=self.x0[index], target=self.target[index], margin=self.margin[index], images=self.images[index]
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits [n, K] at the points x [n, m] of these rows."""
        with self.passes.rows(self.images):
            return self.model(x.view(-1, *self.shape))

    def reaches(self, x: torch.Tensor) -> torch.Tensor:
        """[n] bool: the model puts the points x [n, m] in the target class by the margin."""
        with torch.no_grad():
            return _reaches(self.logits(x), self.target, self.margin)


@dataclass(frozen=True)
class _Settings:
    """The options of ``lbfgs_attack`` after checking: the first weight ``c_init``, how many
    values of c each image tries (``search_steps``), the inner solver's options (the box among
    them), the ``backend``, whether to ``refine`` and how many rounds to ``polish``."""

    c_init: float
    search_steps: int
    solver: BoxLbfgsOptions
    backend: str
    refine: bool
    polish: int

    def __post_init__(self) -> None:
        check_positive("c_init", self.c_init)
        check_int("search_steps", self.search_steps)
        check_int("polish", self.polish, minimum=0)
        check_choice("backend", self.backend, BACKENDS)


@dataclass(frozen=True)
class _Closest:
    """The closest point found so far per row that reaches its target: x [n, m] and d2 [n]
    = |x − x0|² (inf: none yet). The solvers update its tensors in place, row by row."""

    x: torch.Tensor
    d2: torch.Tensor

    def record(
        self, ids: torch.Tensor, x: torch.Tensor, logits: torch.Tensor, d2: torch.Tensor, rows: _Problem
    ) -> None:
        """Keep, per row ``ids``, the point x [k, m] (logits [k, K], d2 [k]) where it reaches
        the target of ``rows`` (the problem of those rows) closer than the best so far."""
        better = _reaches(logits, rows.target, rows.margin) & (d2 < self.d2[ids])
        self.x[ids] = torch.where(better[:, None], x, self.x[ids])
        self.d2[ids] = torch.where(better, d2, self.d2[ids])


@dataclass(frozen=True)
class _SearchState:
    """The search over c, per row (all [n], points [n, m]).

    best_x, best_d2: the closest point reaching the target so far and its |r|² (inf: none);
    best_c: the c whose solution found it (nan: none). The bracket: ``c`` the weight to try
    next, ``c_success`` the largest known to reach the target (0: none yet), ``c_failure`` the
    smallest known to miss it (inf: none yet); ``start`` the last solution (the next solve's
    warm start, and where a search that found nothing ended).
    """

    best_x: torch.Tensor
    best_d2: torch.Tensor
    best_c: torch.Tensor
    c: torch.Tensor
    c_success: torch.Tensor
    c_failure: torch.Tensor
    start: torch.Tensor

    @classmethod
    def initial(cls, x0: torch.Tensor, c_init: float) -> _SearchState:
        """Before the first solve: nothing found, every row at c_init, starting from x0 [n, m]."""
        n, device, dtype = x0.shape[0], x0.device, x0.dtype
        return cls(
            best_x=x0.clone(),
            best_d2=torch.full((n,), math.inf, device=device, dtype=dtype),
            best_c=torch.full((n,), math.nan, device=device, dtype=dtype),
            c=torch.full((n,), float(c_init), device=device, dtype=dtype),
            c_success=torch.zeros(n, device=device, dtype=dtype),
            c_failure=torch.full((n,), math.inf, device=device, dtype=dtype),
            start=x0.clone(),
        )

    def rows(self, index: torch.Tensor) -> _SearchState:
        """A copy of the rows ``index``."""
        return _SearchState(**{name: value[index] for name, value in vars(self).items()})

    def put(self, index: torch.Tensor, part: _SearchState) -> None:
        """Write ``part`` (the state of the rows ``index``) into these rows, in place."""
        for name, value in vars(part).items():
            getattr(self, name)[index] = value


# ---------------------------------------------------------------- one penalty problem


def _penalty(rows: _Problem, x_flat: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """F = c·|x − x0|² + CE(f(x), target) per row, its gradient, the logits and |x − x0|²."""
    with torch.enable_grad():  # also when called under torch.no_grad()
        x_var = x_flat.detach().requires_grad_(True)
        logits = rows.logits(x_var)
        dist2 = (x_var - rows.x0).pow(2).sum(1)
        value = c * dist2 + F.cross_entropy(logits, rows.target, reduction="none")
        (grad,) = torch.autograd.grad(value.sum(), x_var)
    return value.detach(), grad, logits.detach(), dist2.detach()


def _minimize_torch(
    problem: _Problem, c: torch.Tensor, start: torch.Tensor, options: BoxLbfgsOptions, closest: _Closest
) -> torch.Tensor:
    """Minimise c·|x − x0|² + CE(f(x), target) over the box for every row, from ``start``
    [n, m], by the batched box L-BFGS solver (``box_lbfgs.minimize_box``), recording in
    ``closest`` every evaluated point that reaches the target. Returns the final iterates [n, m]."""

    def evaluate(x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = problem.rows(ids)
        value, grad, logits, d2 = _penalty(rows, x, c[ids])
        closest.record(ids, x, logits, d2, rows)
        return value, grad

    return minimize_box(evaluate, start, options)


def _minimize_scipy(
    problem: _Problem, c: torch.Tensor, start: torch.Tensor, options: BoxLbfgsOptions, closest: _Closest
) -> torch.Tensor:
    """The same penalty problem per image with scipy's L-BFGS-B (float64 on the host)."""
    import numpy as np
    from scipy.optimize import minimize

    x0 = problem.x0
    out = start.clone()
    for i in range(x0.shape[0]):
        one = torch.tensor([i], device=x0.device)
        row, ci = problem.rows(one), c[i : i + 1]

        def fun(v: np.ndarray, row: _Problem = row, ci: torch.Tensor = ci, one: torch.Tensor = one) -> tuple:
            xv = torch.as_tensor(v, dtype=x0.dtype, device=x0.device).view(1, -1)
            value, grad, logits, d2 = _penalty(row, xv, ci)
            closest.record(one, xv, logits, d2, row)
            return float(value), grad.view(-1).double().cpu().numpy()

        res = minimize(
            fun,
            start[i].double().cpu().numpy(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(options.lower, options.upper)] * x0.shape[1],
            options={"maxiter": options.max_iter, "maxcor": options.history, "gtol": options.tol, "ftol": options.ftol},
        )
        out[i] = torch.as_tensor(np.asarray(res.x), dtype=x0.dtype, device=x0.device)
    return out


# ---------------------------------------------------------------- the search over c


def _try_c(problem: _Problem, state: _SearchState, options: BoxLbfgsOptions, backend: str) -> _SearchState:
    """Solve the penalty problem of every row at its current c, keep the closest points, and
    move each row's c (``_search_c``). Returns the next state (its closest points are the
    given state's tensors, updated in place by the solve)."""
    minimize = _minimize_torch if backend == "torch" else _minimize_scipy
    closest = _Closest(state.best_x, state.best_d2)
    before = state.best_d2.clone()
    c = state.c
    final = minimize(problem, c, state.start, options, closest)
    reached = problem.reaches(final)
    success = torch.where(reached, torch.maximum(state.c_success, c), state.c_success)
    failure = torch.where(~reached, torch.minimum(state.c_failure, c), state.c_failure)
    bracketed = (success > 0) & torch.isfinite(failure)
    return _SearchState(
        best_x=closest.x,
        best_d2=closest.d2,
        best_c=torch.where(closest.d2 < before, c, state.best_c),
        c=torch.where(bracketed, (success * failure).sqrt(), torch.where(reached, c * 10, c / 10)),
        c_success=success,
        c_failure=failure,
        start=final,  # warm start from this solution
    )


def _search_c(problem: _Problem, settings: _Settings) -> _SearchState:
    """The search over c for rows that are not yet classified as their target.

    Each image keeps a bracket [c_success, c_failure]: c is multiplied by 10 while the
    solution still reaches the target (by the problem's margin: a larger weight on |r| gives a
    closer example), divided by 10 while it does not, and bisected geometrically once both ends
    are known. After ``search_steps`` values, the images that none has reached yet (rare: they
    need a far smaller c, or sit where the loss is flat) get up to RESCUE_STEPS more, alone,
    each solved with ftol / 100 and 4 × max_iter.
    """
    state = _SearchState.initial(problem.x0, settings.c_init)
    options = settings.solver
    for _ in range(settings.search_steps):
        state = _try_c(problem, state, options, settings.backend)
    rescue = replace(options, ftol=options.ftol * 1e-2, max_iter=4 * options.max_iter)  # a fuller solve each
    for _ in range(RESCUE_STEPS):
        rows = (~torch.isfinite(state.best_d2)).nonzero().squeeze(1)
        if len(rows) == 0:
            break
        state.put(rows, _try_c(problem.rows(rows), state.rows(rows), rescue, settings.backend))
    return state


# ---------------------------------------------------------------- after the search: polish and refine


def _refine_to_boundary(problem: _Problem, x_best: torch.Tensor, found: torch.Tensor, steps: int = 12) -> torch.Tensor:
    """Walk each successful x_best [n, m] back along r towards x0: the smallest t in (0, 1]
    found by bisection with f(x0 + t·r) = target (by the margin), for the rows ``found`` [n]
    (the others are returned as they are). Never increases the distortion."""
    index = found.nonzero().squeeze(1)
    out = x_best.clone()
    if len(index) == 0:
        return out
    rows = problem.rows(index)
    base, r = rows.x0, x_best[index] - rows.x0
    t_fail = torch.zeros(len(index), device=base.device, dtype=base.dtype)
    t_ok = torch.ones_like(t_fail)
    for _ in range(steps):
        t = 0.5 * (t_fail + t_ok)
        hit = rows.reaches(base + t[:, None] * r)
        t_ok = torch.where(hit, t, t_ok)
        t_fail = torch.where(~hit, t, t_fail)
    out[index] = base + t_ok[:, None] * r
    return out


def _logit_jacobian(
    rows: _Problem, x_flat: torch.Tensor, classes: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits [n, K] at rows x_flat [n, m] and the Jacobian of the chosen logits,
    d logits[i, classes[i, j]] / dx [n, J, m] (one forward pass, J backward passes);
    ``classes`` [n, J] is a function of the logits (it is called on them)."""
    with torch.enable_grad():
        x_var = x_flat.detach().requires_grad_(True)
        logits = rows.logits(x_var)
        picked = logits.gather(1, classes(logits.detach()))
        j = picked.shape[1]
        grads = [torch.autograd.grad(picked[:, i].sum(), x_var, retain_graph=i < j - 1)[0] for i in range(j)]
    return logits.detach(), torch.stack(grads, 1)


def _linearised_step(rows: _Problem, x: torch.Tensor) -> torch.Tensor:
    """The exact solution of the paper's problem for the model linearised at x [n, m]:
    min |r| with x0 + r in the box and the target's linearised logit at least POLISH_MARGIN ×
    the margin above those of its POLISH_RIVALS strongest rivals at x (``exact.box_qp``,
    float64; the model itself checks every point the polish keeps). Returns x0 + r [n, m]."""
    from .exact import box_qp

    x0, target = rows.x0, rows.target

    def target_and_rivals(logits: torch.Tensor) -> torch.Tensor:
        rivals = without_label(logits, target)
        count = min(POLISH_RIVALS, logits.shape[1] - 1)
        return torch.cat([target[:, None], rivals.topk(count, dim=1).indices], 1)

    logits, J = _logit_jacobian(rows, x, target_and_rivals)
    classes = target_and_rivals(logits)
    J = J.double()
    A = J[:, 1:] - J[:, :1]  # [n, rivals, m]: rows ∇(z_j − z_target)
    gap = (logits.gather(1, classes[:, 1:]) - logits.gather(1, classes[:, :1])).double()
    h = torch.bmm(A, (x - x0).double().unsqueeze(2)).squeeze(2) - gap - POLISH_MARGIN * rows.margin.double()[:, None]
    r = box_qp(A, h, (rows.lower - x0).double(), (rows.upper - x0).double(), tol=1e-8).r  # the model checks it
    return x0 + r.to(x.dtype)


def _polish_round(
    rows: _Problem, x: torch.Tensor, d2: torch.Tensor, out: torch.Tensor, index: torch.Tensor
) -> torch.Tensor:
    """One round of ``_polish`` for the rows ``index`` (``rows``: their problem) at the points
    x [k, m] (d2 [k]: their |r|², inf where not yet reached): the full step towards the
    linearised optimum, else half, else a quarter, the first that the model puts in the target
    class closer than d2, written into ``out`` [n, m]. Returns which rows moved [k] bool."""
    point = _linearised_step(rows, x)
    base = rows.x0
    moved = torch.zeros(len(x), device=x.device, dtype=torch.bool)
    for fraction in (1.0, 0.5, 0.25):
        todo = (~moved).nonzero().squeeze(1)
        trial = (x[todo] + fraction * (point[todo] - x[todo])).clamp(rows.lower, rows.upper)
        ok = rows.rows(todo).reaches(trial)
        ok &= (trial - base[todo]).pow(2).sum(1) < d2[todo] * (1 - 1e-5)
        out[index[todo[ok]]] = trial[ok]
        moved[todo[ok]] = True
        if bool(moved.all()):
            break
    return moved


def _polish(
    problem: _Problem, x_start: torch.Tensor, reached: torch.Tensor, active: torch.Tensor, rounds: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each example of the rows ``active`` [n] closer to x0 while it stays classified as
    the target (by the margin); rows not yet ``reached`` [n] (a search that found nothing:
    x_start is then its last iterate) take any point the model classifies as the target.

    Each round steps from the current point x towards the exact minimiser of the model
    linearised at x (``_polish_round``). For a linear model (FC10) the first full step is the
    exact D(x, l), also from a point outside the target region (the penalty's minimiser can lie
    outside it when cross-entropy prefers another corner of the box); for a network the rounds
    approach the boundary point nearest x0 along the boundary. Never increases the distortion
    of a reached row. Returns (x [n, m], reached [n]).
    """
    index = active.nonzero().squeeze(1)
    out, reached = x_start.clone(), reached.clone()
    with torch.no_grad():
        for _ in range(rounds if len(index) else 0):  # each round: the images the previous one moved
            rows, x = problem.rows(index), out[index]
            d2 = torch.where(reached[index], (x - rows.x0).pow(2).sum(1), math.inf)
            moved = _polish_round(rows, x, d2, out, index)
            reached[index[moved]] = True
            gained = moved & ((out[index] - rows.x0).pow(2).sum(1) < d2 * (1 - POLISH_GAIN))
            index = index[gained]  # another round only where this one gained noticeably
            if len(index) == 0:
                break
    return out, reached


def _finish(
    problem: _Problem, x_start: torch.Tensor, reached: torch.Tensor, active: torch.Tensor, refine: bool, polish: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows ``active`` polished from x_start (``_polish``), then those that reach the target
    walked back to the boundary (``_refine_to_boundary``) when ``refine``. Returns (x [n, m],
    reached [n])."""
    x, reached = _polish(problem, x_start, reached, active, polish)
    if refine:
        x = _refine_to_boundary(problem, x, reached & active)
    return x, reached


def _search_and_polish(problem: _Problem, todo: torch.Tensor, settings: _Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """The search over c for the rows ``todo`` of the problem, then the polish (from the
    search's best point, or from where a failed search ended) and the walk back to the
    boundary. Returns (x_adv [n, m] (x0 where nothing was found), c [n] (nan there))."""
    x0 = problem.x0
    found_x, found_c = x0.clone(), torch.full((len(x0),), math.nan, device=x0.device, dtype=x0.dtype)
    reached = torch.zeros(len(x0), device=x0.device, dtype=torch.bool)
    last = x0.clone()
    if len(todo):
        search = _search_c(problem.rows(todo), settings)
        found_x[todo], found_c[todo], last[todo] = search.best_x, search.best_c, search.start
        reached[todo] = torch.isfinite(search.best_d2)
    x_adv, _ = _finish(problem, found_x, reached, reached, settings.refine, 0)
    if settings.polish and len(todo):  # keep, per image, the closer of the search's and the polished
        active = torch.zeros_like(reached)
        active[todo] = True
        start = torch.where(reached[:, None], found_x, last)  # a failed search: from where it ended
        polished, now = _finish(problem, start, reached, active, settings.refine, settings.polish)
        closer = now & (~reached | ((polished - x0).pow(2).sum(1) < (x_adv - x0).pow(2).sum(1)))
        x_adv = torch.where(closer[:, None], polished, x_adv)
    return x_adv, found_c


# ---------------------------------------------------------------- the attacks


def lbfgs_attack(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    c_init: float = 1.0,
    search_steps: int = 4,
    max_iter: int = 50,
    history: int = DEFAULT_HISTORY,
    tol: float = 1e-4,
    ftol: float = 1e-4,
    bounds: tuple[float, float] = (0.0, 1.0),
    backend: str = "torch",
    refine: bool = True,
    check_every: int = 10,
    num_classes: int | None = None,
    polish: int = 3,
) -> AttackResult:
    """Box-constrained L-BFGS attack of Szegedy et al. (§4.1), batched over images (see the module docstring).

    Args:
        model: classifier of x [N, ...] to logits [N, K] (used in eval mode, not changed; torch's thread
            count is the caller's, ``config.apply_cpu_threads``); num_classes: K (None: inferred; else
            it must equal the model's). x: images [N, ...] in ``bounds`` (moved to the model's device and
            dtype; N = 0: an empty result); target: labels l [N] (any integer dtype) to push each image towards.
        c_init, search_steps: the first weight c > 0 on |r|², and how many values of c (≥ 1) each image tries
            as it brackets and bisects its own c (images none reached: up to RESCUE_STEPS more, ``_search_c``).
        max_iter (per value of c), history, tol, ftol (≥ 0), check_every: see ``box_lbfgs.BoxLbfgsOptions``;
            bounds: the box (lower, upper) for every pixel; backend: "torch" (batched, on the model's device)
            or "scipy" (per image, L-BFGS-B); refine: bisect each example found back along r to the boundary.
        polish: rounds (≥ 0; 0: the paper's method alone) of the linearised step the module docstring
            describes, the result (refined) kept only where closer; for a linear model (FC10) one round is the
            exact D(x, l) when the classes tying with l at the optimum are among its POLISH_RIVALS top rivals.
    Returns: per image the smallest-distortion x + r classified as ``target`` (its logit ahead by
        ``success_margin``) among all points of all values of c and of the polish; where f(x) = target
        already, x itself (distortion 0, c = inf, no backward pass: such images skip the search).
        Its passes are counted by hooks on the model (``results.PassCounter``).

    Used in chapters 3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md) and
    7a (book/07a_attacks_and_linearity.md).
    """
    check_choice("backend", backend, BACKENDS)
    lower, upper = check_bounds(bounds)
    solver = BoxLbfgsOptions(lower, upper, max_iter, history, tol, ftol, check_every)
    settings = _Settings(c_init, search_steps, solver, backend, refine, polish)
    x = _model_input(model, x, lower, upper)
    with attacking(model, x) as passes:  # eval mode, restored after
        with torch.no_grad():
            logits0 = model(x)
        k = _output_classes(logits0, num_classes)
        target = check_labels("target", target, len(x), k).to(x.device)
        trivial = logits0.argmax(1) == target
        todo = (~trivial).nonzero().squeeze(1)
        images = torch.arange(len(x), device=x.device)
        problem = _Problem(
            model, x.flatten(1), x.shape[1:], target, success_margin(logits0), lower, upper, passes, images
        )
        x_adv, c = _search_and_polish(problem, todo, replace(settings, refine=refine and len(todo) > 0))
        x_adv = x_adv.clamp(lower, upper).view_as(x)
        c = torch.where(trivial, math.inf, c)
        return from_points(model, x, x_adv, target, passes=passes, c=c, keep_failed=True)


def all_other_targets(y: torch.Tensor, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """For labels y [N]: (image index, target) pairs for every target l ≠ y, each [N·(K−1)]."""
    return every_other_label(y, num_classes)


def min_distortion_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int | None = None,
    num_classes: int = 10,
    progress_bar: bool = True,
    **options: Any,
) -> AttackResult:
    """The minimum distortion of Tables 1–4: D(x, l) for every l ≠ y, the closest one kept.

    All N·(K−1) (image, target) pairs are attacked together (in chunks of ``batch_size``
    pairs; by default as many as half the free GPU memory holds, ``config.attack_chunk_size``,
    and at most 60,000); per image the successful example with the smallest distortion is returned. An
    image the model already misclassifies is its own closest misclassified example
    (distortion 0). ``options`` go to ``lbfgs_attack`` (x is checked against their
    ``bounds``). ``evaluations`` and ``forward_only`` sum over the targets. An empty batch
    gives an empty result.
    """
    from .progress import progress

    if batch_size is not None:
        check_int("batch_size", batch_size)
    check_int("num_classes", num_classes, minimum=2)
    lower, upper = check_bounds(options.get("bounds", (0.0, 1.0)))
    x = _model_input(model, x, lower, upper)
    y = check_labels("y", y, len(x), num_classes).to(x.device)  # lbfgs_attack checks the model's K
    image, target = all_other_targets(y, num_classes)
    if len(image) == 0:
        return lbfgs_attack(model, x, y, num_classes=num_classes, **options)  # empty
    if batch_size is None:
        batch_size = attack_chunk_size(x.device, x[0].numel(), options.get("history", DEFAULT_HISTORY))
    chunks, start = [], time.perf_counter()
    for i in progress(range(0, len(image), batch_size), desc="attack", enabled=progress_bar):
        sl = slice(i, i + batch_size)
        chunks.append(lbfgs_attack(model, x[image[sl]], target[sl], num_classes=num_classes, **options))
    every = AttackResult.concat(chunks)
    per_image = every.distortion.view(len(x), num_classes - 1)  # inf where a target was not reached
    best = per_image.argmin(1)
    pick = torch.arange(len(x), device=x.device) * (num_classes - 1) + best
    result = every[pick]
    result.evaluations = every.evaluations.view(len(x), num_classes - 1).sum(1)
    result.forward_only = every.forward_only.view(len(x), num_classes - 1).sum(1)
    record_work(
        "attack",
        time.perf_counter() - start,
        pairs=len(image),
        device=str(x.device),
        evaluations=int(every.evaluations.sum()),
        features=x[0].numel(),
    )
    return result


RUN_ONLY_OPTIONS = ("batch_size", "progress_bar")  # options that change how an attack runs, not its result
RESULT_CONSTANTS = ("SUCCESS_MARGIN", "RESCUE_STEPS", "POLISH_MARGIN", "POLISH_GAIN", "POLISH_RIVALS")


def attack_cache_key(**options: Any) -> dict:
    """The part of a cache key of attack results that the attack fixes: its code
    (``ATTACK_CODE_VERSION``, from the source of ATTACK_MODULES), its effective options (every
    option of ``lbfgs_attack`` with the caller's value or the default; options that only change
    how it runs, RUN_ONLY_OPTIONS, left out) and the module's constants as they are now. Passing
    a default explicitly gives the same key; a changed default or constant gives another.
    A ValueError names an option ``lbfgs_attack`` does not take."""
    parameters = inspect.signature(lbfgs_attack).parameters
    known = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known) - set(RUN_ONLY_OPTIONS))
    if unknown:
        raise ValueError(f"unknown attack options {unknown}; lbfgs_attack takes {known}")
    effective = {name: options.get(name, parameters[name].default) for name in known}
    effective["bounds"] = list(check_bounds(effective["bounds"]))
    for name, value in effective.items():  # 1 and 1.0 are the same option (bool and str stay)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            effective[name] = float(value)
    return {
        "code": ATTACK_CODE_VERSION,
        "options": effective,
        "constants": {name: globals()[name] for name in RESULT_CONSTANTS},
    }


def solve_penalty(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    c: torch.Tensor,
    *,
    max_iter: int = 200,
    history: int = 10,
    tol: float = 1e-5,
    ftol: float = 1e-7,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """The minimiser x + r of c·|r|² + loss_f(x + r, l) over the box, one row per (x, l, c).

    x [N, ...], target [N], c [N] (each row its own finite weight > 0). No search over c: this
    is the inner problem of ``lbfgs_attack``, used to show how the solution moves with c (the
    slider). Returns x + r [N, ...] on the model's device, in the model's dtype.
    """
    lower, upper = check_bounds(bounds)
    options = BoxLbfgsOptions(lower, upper, max_iter, history, tol, ftol, check_every=10)
    x = _model_input(model, x, lower, upper)
    with attacking(model, x) as passes:
        with torch.no_grad():
            logits = model(x)
        target = check_labels("target", target, len(x), _output_classes(logits, None)).to(x.device)
        if not isinstance(c, torch.Tensor) or c.shape != (len(x),) or not bool((c > 0).all() & torch.isfinite(c).all()):
            raise ValueError(f"c must be a finite positive tensor of shape ({len(x)},), got {c!r}")
        x0 = x.flatten(1)
        images = torch.arange(len(x), device=x.device)
        problem = _Problem(model, x0, x.shape[1:], target, success_margin(logits), lower, upper, passes, images)
        closest = _Closest(x0.clone(), torch.full((len(x),), math.inf, device=x.device, dtype=x0.dtype))
        final = _minimize_torch(problem, c.to(device=x.device, dtype=x0.dtype), x0.clone(), options, closest)
        return final.view_as(x).detach()


def _model_input(model: nn.Module, x: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    """x checked against the box and moved to the model's device and floating dtype (a
    float16 or float64 batch for a float32 model is converted)."""
    check_images("x", x, low=lower, high=upper)
    return to_model(model, x)


def _output_classes(logits: torch.Tensor, num_classes: int | None) -> int:
    """The model's K, checked against ``num_classes`` when given."""
    if logits.dim() != 2:
        raise ValueError(f"the model must return logits [N, K], got shape {tuple(logits.shape)}")
    k = logits.shape[1]
    if num_classes is not None and num_classes != k:
        raise ValueError(f"num_classes must equal the model's {k} outputs, got {num_classes!r}")
    return k
