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
from dataclasses import dataclass, fields
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
    eval_mode,
    every_other_label,
    logit_margin,
    to_model,
    without_label,
)
from .box_lbfgs import BoxLbfgsOptions, minimize_box
from .box_lbfgs import lbfgs_direction as _lbfgs_direction  # noqa: F401 - the tests check it here
from .config import attack_chunk_size
from .progress import record_work
from .records import code_version, module_closure

if TYPE_CHECKING:
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
# margins are _checks.logit_margin), read from the import statements (``records.module_closure``).
ATTACK_MODULES = module_closure("attack")


def attack_code_version() -> str:
    """A 16-hex-digit hash of the attack's code: ``records.code_version`` (the normalised
    source tokens, the same on Python 3.10-3.13) of each module in ATTACK_MODULES."""
    joined = ",".join(f"{module}:{code_version(module)}" for module in ATTACK_MODULES)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


ATTACK_CODE_VERSION = attack_code_version()  # part of every cache key of attack results

BACKENDS = ("torch", "scipy")
DEFAULT_HISTORY = 5  # L-BFGS pairs per image (each pass reads the history: 5 is half the traffic of 10)


@dataclass
class AttackResult:
    """What an attack returns, one entry per image (all tensors on the model's device).

    x_adv       [N, ...] the adversarial images, inside the box
    target      [N] int64 the label each image was pushed towards
    success     [N] bool: the model predicts ``target`` on ``x_adv`` (recomputed at the end)
    c           [N] the weight on |r|² whose solution gave x_adv (inf for the trivial case
                f(x) = target, nan where no c succeeded)
    distortion  [N] the paper's sqrt(Σ r_i² / n) (n = pixels per image); inf where no
                example was found (then x_adv is x itself)
    l2          [N] |r|₂ (inf where no example was found)
    evaluations [N] int64: the image's rows that went through a backward pass of the model
                (forward+backward: the penalty's value and gradient at each iterate; the
                polish's Jacobian, one forward and POLISH_RIVALS + 1 backward passes, counts
                POLISH_RIVALS + 1)
    forward_only [N] int64: the image's rows that went through the model without a backward
                pass (the first logits, each value of c's check, the refine's bisection, the
                polish's trial points, the final check). Every row the model computed is counted,
                also a converged image's while it waits in the batch, so the two add up to what
                a hook on the model counts (the adv-lib way of counting passes).
    """

    x_adv: torch.Tensor
    target: torch.Tensor
    success: torch.Tensor
    c: torch.Tensor
    distortion: torch.Tensor
    l2: torch.Tensor
    evaluations: torch.Tensor
    forward_only: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)

    def to(self, device: torch.device | str) -> AttackResult:
        """A copy with every tensor on ``device``."""
        return AttackResult(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __getitem__(self, index) -> AttackResult:
        """The results for a subset of the images (any tensor index)."""
        return AttackResult(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[AttackResult]) -> AttackResult:
        """Join results of consecutive batches."""
        return AttackResult(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(AttackResult)})


def distortion(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """The paper's distortion sqrt(Σ (x'_i − x_i)² / n) per image, [N] (n = pixels per image)."""
    r = (x_adv - x).flatten(1)
    return r.pow(2).mean(1).sqrt()


def _penalty(model, x_flat, x0_flat, shape, target, c):
    """F = c·|x − x0|² + CE(f(x), target) per image, its gradient and the logits."""
    with torch.enable_grad():  # also when called under torch.no_grad()
        x_var = x_flat.detach().requires_grad_(True)
        logits = model(x_var.view(-1, *shape))
        dist2 = (x_var - x0_flat).pow(2).sum(1)
        value = c * dist2 + F.cross_entropy(logits, target, reduction="none")
        (grad,) = torch.autograd.grad(value.sum(), x_var)
    return value.detach(), grad, logits.detach(), dist2.detach()


def _minimize_torch(
    model: nn.Module,
    x0: torch.Tensor,
    shape: torch.Size,
    target: torch.Tensor,
    margin: torch.Tensor,
    c: torch.Tensor,
    start: torch.Tensor,
    lower: float,
    upper: float,
    *,
    max_iter: int,
    history: int,
    tol: float,
    ftol: float,
    check_every: int,
    best_x: torch.Tensor,
    best_d2: torch.Tensor,
    evaluations: torch.Tensor,
) -> torch.Tensor:
    """Minimise c·|x − x0|² + CE(f(x), target) over the box for every row, from ``start``, by
    the batched box L-BFGS solver (``box_lbfgs.minimize_box``). Updates ``best_x``/``best_d2``
    in place with every evaluated point that the model classifies as ``target`` (by ``margin``
    [N]) closer than the best so far; adds the rows it evaluates to ``evaluations`` (every row
    of the batch is computed, also one that has converged). Returns the final iterates [N, m].
    """

    def evaluate(x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value, grad, logits, d2 = _penalty(model, x, x0[ids], shape, target[ids], c[ids])
        evaluations[ids] += 1
        _record_best(ids, x, logits, d2, target[ids], margin[ids], best_x, best_d2)
        return value, grad

    options = BoxLbfgsOptions(lower, upper, max_iter, history, tol, ftol, check_every)
    return minimize_box(evaluate, start, options)


SUCCESS_MARGIN = 1e-3  # in logits, for a model whose logits spread over at least 1 (else scaled)


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
    recomputed at the end.
    """
    return logit_margin(logits, target) >= margin


def _record_best(ids, x, logits, d2, target, margin, best_x, best_d2):
    """Keep, per global row ``ids``, the closest evaluated point classified as ``target``."""
    better = _reaches(logits, target, margin) & (d2 < best_d2[ids])
    best_x[ids] = torch.where(better[:, None], x, best_x[ids])
    best_d2[ids] = torch.where(better, d2, best_d2[ids])


def _minimize_scipy(
    model,
    x0,
    shape,
    target,
    margin,
    c,
    start,
    lower,
    upper,
    *,
    max_iter,
    history,
    tol,
    ftol,
    check_every,
    best_x,
    best_d2,
    evaluations,
):
    """The same penalty problem per image with scipy's L-BFGS-B (float64 on the host)."""
    import numpy as np
    from scipy.optimize import minimize

    out = start.clone()
    for i in range(x0.shape[0]):
        xi0, ti, mi, ci = x0[i : i + 1], target[i : i + 1], margin[i : i + 1], c[i : i + 1]

        def fun(v):
            xv = torch.as_tensor(v, dtype=x0.dtype, device=x0.device).view(1, -1)
            value, grad, logits, d2 = _penalty(model, xv, xi0, shape, ti, ci)
            evaluations[i] += 1
            _record_best(torch.tensor([i], device=x0.device), xv, logits, d2, ti, mi, best_x, best_d2)
            return float(value), grad.view(-1).double().cpu().numpy()

        res = minimize(
            fun,
            start[i].double().cpu().numpy(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(lower, upper)] * x0.shape[1],
            options={"maxiter": max_iter, "maxcor": history, "gtol": tol, "ftol": ftol},
        )
        out[i] = torch.as_tensor(np.asarray(res.x), dtype=x0.dtype, device=x0.device)
    return out


def _refine_to_boundary(model, x0, x_best, shape, target, margin, found, forward_only, steps: int = 12):
    """Walk each successful x_best back along r towards x0: the smallest t in (0, 1] found by
    bisection with f(x0 + t·r) = target (by ``margin``), for the rows ``found`` (the others are
    returned as they are). Never increases the distortion. Adds its passes to ``forward_only``."""
    index = found.nonzero().squeeze(1)
    out = x_best.clone()
    if len(index) == 0:
        return out
    base, r, label, m = x0[index], x_best[index] - x0[index], target[index], margin[index]
    t_fail = torch.zeros(len(index), device=x0.device, dtype=x0.dtype)
    t_ok = torch.ones_like(t_fail)
    with torch.no_grad():
        for _ in range(steps):
            t = 0.5 * (t_fail + t_ok)
            hit = _reaches(model((base + t[:, None] * r).view(-1, *shape)), label, m)
            forward_only[index] += 1
            t_ok = torch.where(hit, t, t_ok)
            t_fail = torch.where(~hit, t, t_fail)
    out[index] = base + t_ok[:, None] * r
    return out


POLISH_MARGIN = 2.0  # the linearised problem aims a little inside the target region: 2 × the search's margin
POLISH_GAIN = 1e-3  # a round that shortens |r|² by less than this (relative) ends an image's polish
POLISH_RIVALS = 5  # competing classes kept in the linearised problem (those with the top logits)


def _logit_jacobian(model, x_flat, shape, classes):
    """The logits [N, K] at rows x_flat [N, m] and the Jacobian of the chosen logits,
    d logits[i, classes[i, j]] / dx [N, J, m] (one forward pass, J backward passes);
    ``classes`` [N, J] may be a function of the logits (it is called on them)."""
    with torch.enable_grad():
        x_var = x_flat.detach().requires_grad_(True)
        logits = model(x_var.view(-1, *shape))
        picked = logits.gather(1, classes(logits.detach()))
        j = picked.shape[1]
        rows = [torch.autograd.grad(picked[:, i].sum(), x_var, retain_graph=i < j - 1)[0] for i in range(j)]
    return logits.detach(), torch.stack(rows, 1)


def _linearised_step(model, x0, x, shape, target, margin, lower: float, upper: float):
    """The exact solution of the paper's problem for the model linearised at x [n, m]:
    min |r| with x0 + r in the box and the target's linearised logit at least POLISH_MARGIN ×
    ``margin`` above those of its POLISH_RIVALS strongest rivals at x (``exact.box_qp``,
    float64; the model itself checks every point the polish keeps). Returns (x0 + r [n, m],
    backward passes per image)."""
    from .exact import box_qp

    def target_and_rivals(logits):
        rivals = without_label(logits, target)
        count = min(POLISH_RIVALS, logits.shape[1] - 1)
        return torch.cat([target[:, None], rivals.topk(count, dim=1).indices], 1)

    logits, J = _logit_jacobian(model, x, shape, target_and_rivals)
    classes = target_and_rivals(logits)
    J = J.double()
    A = J[:, 1:] - J[:, :1]  # [n, rivals, m]: rows ∇(z_j − z_target)
    gap = (logits.gather(1, classes[:, 1:]) - logits.gather(1, classes[:, :1])).double()
    h = torch.bmm(A, (x - x0).double().unsqueeze(2)).squeeze(2) - gap - POLISH_MARGIN * margin.double()[:, None]
    r = box_qp(A, h, (lower - x0).double(), (upper - x0).double(), tol=1e-8).r  # the model checks it
    return x0 + r.to(x.dtype), J.shape[1]


def _polish(
    model, x0, x_start, shape, target, margin, reached, active, rounds: int, lower: float, upper: float, passes: dict
):
    """Move each example of the rows ``active`` [N] closer to x0 while it stays classified as
    ``target`` (by ``margin``); rows not yet ``reached`` [N] (a search that found nothing:
    x_start is then its last iterate) take any point the model classifies as the target.

    Each round steps from the current point x towards the exact minimiser of the model
    linearised at x (``_linearised_step``): the full step, else half, else a quarter, the first
    that the model classifies as the target closer to x0 than x. For a linear model (FC10) the
    first full step is the exact D(x, l), also from a point outside the target region (the
    penalty's minimiser can lie outside it when cross-entropy prefers another corner of the
    box); for a network the rounds approach the boundary point nearest x0 along the boundary.
    Never increases the distortion of a reached row. Returns (x [N, m], reached [N]); adds its
    passes to ``passes`` (POLISH_RIVALS + 1 backward passes per round and image, and its trials).
    """
    index = active.nonzero().squeeze(1)
    out, reached = x_start.clone(), reached.clone()
    with torch.no_grad():
        for _ in range(rounds if len(index) else 0):  # each round: the images the previous one moved
            x, base, label, m = out[index], x0[index], target[index], margin[index]
            point, k = _linearised_step(model, base, x, shape, label, m, lower, upper)
            passes["evaluations"][index] += k
            d2 = torch.where(reached[index], (x - base).pow(2).sum(1), math.inf)
            moved = torch.zeros(len(x), device=x.device, dtype=torch.bool)
            for fraction in (1.0, 0.5, 0.25):
                todo = (~moved).nonzero().squeeze(1)
                trial = (x[todo] + fraction * (point[todo] - x[todo])).clamp(lower, upper)
                passes["forward_only"][index[todo]] += 1
                ok = _reaches(model(trial.view(-1, *shape)), label[todo], m[todo])
                ok &= (trial - base[todo]).pow(2).sum(1) < d2[todo] * (1 - 1e-5)
                out[index[todo[ok]]] = trial[ok]
                moved[todo[ok]] = True
                if bool(moved.all()):
                    break
            reached[index[moved]] = True
            gained = moved & ((out[index] - base).pow(2).sum(1) < d2 * (1 - POLISH_GAIN))
            index = index[gained]  # another round only where this one gained noticeably
            if len(index) == 0:
                break
    return out, reached


def _finish(
    model,
    x0,
    x_start,
    shape,
    target,
    margin,
    reached,
    active,
    refine: bool,
    polish: int,
    lower: float,
    upper: float,
    passes: dict,
):
    """The rows ``active`` polished from x_start (``_polish``), then those that reach the target
    walked back to the boundary (``_refine_to_boundary``) when ``refine``. Returns (x [N, m],
    reached [N]); adds the passes to ``passes``."""
    x, reached = _polish(model, x0, x_start, shape, target, margin, reached, active, polish, lower, upper, passes)
    if refine:
        x = _refine_to_boundary(model, x0, x, shape, target, margin, reached & active, passes["forward_only"])
    return x, reached


def _model_input(model: nn.Module, x, lower: float, upper: float) -> torch.Tensor:
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


def _check_solver_options(max_iter, history, tol, ftol, check_every, c_init=1.0, search_steps=1, polish=0) -> None:
    """The numeric options of ``lbfgs_attack`` (and ``solve_penalty``), each error naming the option."""
    check_positive("c_init", c_init)
    check_int("search_steps", search_steps)
    check_int("polish", polish, minimum=0)
    check_int("max_iter", max_iter)
    check_int("history", history)
    check_int("check_every", check_every, minimum=0)
    check_positive("tol", tol, allow_zero=True)
    check_positive("ftol", ftol, allow_zero=True)


RESCUE_STEPS = 4  # extra values of c (each 10× smaller) for the images no value has reached yet


def _search_c(model, x0, shape, target, margin, c_init, search_steps, lower, upper, backend, options):
    """The search over c for rows x0 [n, m] that are not yet classified as ``target``.

    Each image keeps a bracket [c_success, c_failure]: c is multiplied by 10 while the
    solution still reaches the target (by ``margin`` [n]: a larger weight on |r| gives a
    closer example), divided by 10 while it does not, and bisected geometrically once both ends
    are known. After ``search_steps`` values, the images that none has reached yet (rare: they
    need a far smaller c, or sit where the loss is flat) get up to RESCUE_STEPS more, alone,
    each solved with ftol / 100 and 4 × max_iter. Returns a dict of [n] rows: "x" the best
    point [n, m], "d2" its |r|², "c", "last" the last solution [n, m] (where a failed search
    ended), "evaluations" and "forward_only" (the passes spent).
    """
    n = x0.shape[0]
    device, dtype = x0.device, x0.dtype
    best = {
        "x": x0.clone(),
        "d2": torch.full((n,), math.inf, device=device, dtype=dtype),
        "c": torch.full((n,), math.nan, device=device, dtype=dtype),
        "evaluations": torch.zeros(n, device=device, dtype=torch.long),
        "forward_only": torch.zeros(n, device=device, dtype=torch.long),
    }
    bracket = {
        "c": torch.full((n,), float(c_init), device=device, dtype=dtype),
        "success": torch.zeros(n, device=device, dtype=dtype),  # largest c known to reach
        "failure": torch.full((n,), math.inf, device=device, dtype=dtype),  # smallest to miss
        "start": x0.clone(),
    }
    rows = None  # None: every row
    for step in range(search_steps + RESCUE_STEPS):
        if step == search_steps:  # hard images: a smaller c and a fuller solve each
            options = {**options, "ftol": options["ftol"] * 1e-2, "max_iter": 4 * options["max_iter"]}
        if step >= search_steps:
            rows = (~torch.isfinite(best["d2"])).nonzero().squeeze(1)
            if len(rows) == 0:
                break
        _try_c(model, x0, shape, target, margin, rows, best, bracket, lower, upper, backend, options)
    return {**best, "last": bracket["start"]}


def _try_c(model, x0, shape, target, margin, rows, best, bracket, lower, upper, backend, options) -> None:
    """Solve the penalty problem at each row's current c (``rows``: an index, None for all),
    record the best points, and move each row's c (see ``_search_c``); updates the dicts."""
    pick = (lambda t: t) if rows is None else (lambda t: t[rows])
    minimize = _minimize_torch if backend == "torch" else _minimize_scipy
    best_x, best_d2, evaluations = pick(best["x"]), pick(best["d2"]), pick(best["evaluations"])
    before = best_d2.clone()
    c, x, label, m = pick(bracket["c"]), pick(x0), pick(target), pick(margin)
    final = minimize(
        model,
        x,
        shape,
        label,
        m,
        c,
        pick(bracket["start"]),
        lower,
        upper,
        **options,
        best_x=best_x,
        best_d2=best_d2,
        evaluations=evaluations,
    )
    with torch.no_grad():
        reached = _reaches(model(final.view(-1, *shape)), label, m)
    success = torch.where(reached, torch.maximum(pick(bracket["success"]), c), pick(bracket["success"]))
    failure = torch.where(~reached, torch.minimum(pick(bracket["failure"]), c), pick(bracket["failure"]))
    bracketed = (success > 0) & torch.isfinite(failure)
    updates = {
        "c": torch.where(bracketed, (success * failure).sqrt(), torch.where(reached, c * 10, c / 10)),
        "success": success,
        "failure": failure,
        "start": final,
    }  # warm start from this solution
    found = {
        "x": best_x,
        "d2": best_d2,
        "evaluations": evaluations,
        "forward_only": pick(best["forward_only"]) + 1,
        "c": torch.where(best_d2 < before, c, pick(best["c"])),
    }
    for target_dict, values in ((bracket, updates), (best, found)):
        for key, value in values.items():
            if rows is None:
                target_dict[key] = value
            else:
                target_dict[key][rows] = value


def _search_and_polish(
    model,
    x0,
    shape,
    target,
    margin,
    todo,
    c_init,
    search_steps,
    lower,
    upper,
    backend,
    options,
    refine: bool,
    polish: int,
    passes: dict,
):
    """The search over c for the rows ``todo`` of x0 [N, m], then the polish (from the search's
    best point, or from where a failed search ended) and the walk back to the boundary.
    Returns (x_adv [N, m] (x0 where nothing was found), c [N] (nan there)); adds the passes."""
    found = {"x": x0.clone(), "c": torch.full((len(x0),), math.nan, device=x0.device, dtype=x0.dtype)}
    reached = torch.zeros(len(x0), device=x0.device, dtype=torch.bool)
    last = x0.clone()
    if len(todo):
        search = _search_c(
            model, x0[todo], shape, target[todo], margin[todo], c_init, search_steps, lower, upper, backend, options
        )
        found["x"][todo], found["c"][todo], last[todo] = search["x"], search["c"], search["last"]
        reached[todo] = torch.isfinite(search["d2"])
        for key in passes:
            passes[key][todo] += search[key]
    x_adv, _ = _finish(model, x0, found["x"], shape, target, margin, reached, reached, refine, 0, lower, upper, passes)
    if polish and len(todo):  # keep, per image, the closer of the search's and the polished
        active = torch.zeros_like(reached)
        active[todo] = True
        start = torch.where(reached[:, None], found["x"], last)  # a failed search: from where it ended
        polished, now = _finish(
            model, x0, start, shape, target, margin, reached, active, refine, polish, lower, upper, passes
        )
        closer = now & (~reached | ((polished - x0).pow(2).sum(1) < (x_adv - x0).pow(2).sum(1)))
        x_adv = torch.where(closer[:, None], polished, x_adv)
    return x_adv, found["c"]


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
    """
    check_choice("backend", backend, BACKENDS)
    lower, upper = check_bounds(bounds)
    _check_solver_options(max_iter, history, tol, ftol, check_every, c_init, search_steps, polish)
    x = _model_input(model, x, lower, upper)
    options = {"max_iter": max_iter, "history": history, "tol": tol, "ftol": ftol, "check_every": check_every}
    with eval_mode(model):  # the model's mode restored after
        with torch.no_grad():
            logits0 = model(x)
        k = _output_classes(logits0, num_classes)
        target = check_labels("target", target, len(x), k).to(x.device)
        passes = {
            "evaluations": torch.zeros(len(x), device=x.device, dtype=torch.long),
            "forward_only": torch.ones(len(x), device=x.device, dtype=torch.long),
        }  # logits0
        trivial = logits0.argmax(1) == target
        todo = (~trivial).nonzero().squeeze(1)
        search = (c_init, search_steps, lower, upper, backend, options, refine and len(todo) > 0, polish, passes)
        x_adv, c = _search_and_polish(model, x.flatten(1), x.shape[1:], target, success_margin(logits0), todo, *search)
        x_adv = x_adv.clamp(lower, upper).view_as(x)
        with torch.no_grad():
            success = model(x_adv).argmax(1) == target
        passes["forward_only"] += 1
    return _attack_result(x, x_adv, target, success, torch.where(trivial, math.inf, c), passes)


def _attack_result(
    x: torch.Tensor, x_adv: torch.Tensor, target: torch.Tensor, success: torch.Tensor, c: torch.Tensor, passes: dict
) -> AttackResult:
    """The AttackResult of examples x_adv of images x [N, ...]. Where no example was found
    x_adv is x itself, and the distance to the target class is unknown: reported as inf, so
    that an average over failures cannot pass for a small distortion."""
    inf = torch.full((len(x),), math.inf, device=x.device, dtype=x.dtype)
    return AttackResult(
        x_adv=x_adv.detach(),
        target=target,
        success=success,
        c=c,
        distortion=torch.where(success, distortion(x, x_adv), inf),
        l2=torch.where(success, (x_adv - x).flatten(1).norm(dim=1), inf),
        **passes,
    )


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
    _check_solver_options(max_iter, history, tol, ftol, 10)
    x = _model_input(model, x, lower, upper)
    with eval_mode(model):
        with torch.no_grad():
            logits = model(x)
        target = check_labels("target", target, len(x), _output_classes(logits, None)).to(x.device)
        if not isinstance(c, torch.Tensor) or c.shape != (len(x),) or not bool((c > 0).all() & torch.isfinite(c).all()):
            raise ValueError(f"c must be a finite positive tensor of shape ({len(x)},), got {c!r}")
        x0 = x.flatten(1)
        best_x, best_d2 = x0.clone(), torch.full((len(x),), math.inf, device=x.device, dtype=x0.dtype)
        evaluations = torch.zeros(len(x), device=x.device, dtype=torch.long)
        final = _minimize_torch(
            model,
            x0,
            x.shape[1:],
            target,
            success_margin(logits),
            c.to(device=x.device, dtype=x0.dtype),
            x0.clone(),
            lower,
            upper,
            max_iter=max_iter,
            history=history,
            tol=tol,
            ftol=ftol,
            check_every=10,
            best_x=best_x,
            best_d2=best_d2,
            evaluations=evaluations,
        )
        return final.view_as(x).detach()
