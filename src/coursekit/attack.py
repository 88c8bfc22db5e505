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
``min_distortion_attack``
    D(x, l) for every l ≠ y, all targets of all images in one batch, keeping per image the
    closest misclassified example: the "minimum distortion" of Tables 1–4.

Distortion is the paper's measure sqrt(Σ r_i² / n), n the number of pixels (784 on MNIST).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_images, check_labels, check_positive
from .config import attack_chunk_size
from .progress import record_work

BACKENDS = ("torch", "scipy")
ATTACK_CODE_VERSION = 2  # part of every cache key of attack results: bump when results change


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
    evaluations [N] int64: forward+backward evaluations of the model spent on each image
    """

    x_adv: torch.Tensor
    target: torch.Tensor
    success: torch.Tensor
    c: torch.Tensor
    distortion: torch.Tensor
    l2: torch.Tensor
    evaluations: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)

    def to(self, device) -> AttackResult:
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


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _penalty(model, x_flat, x0_flat, shape, target, c):
    """F = c·|x − x0|² + CE(f(x), target) per image, its gradient and the logits."""
    x_var = x_flat.detach().requires_grad_(True)
    logits = model(x_var.view(-1, *shape))
    dist2 = (x_var - x0_flat).pow(2).sum(1)
    value = c * dist2 + F.cross_entropy(logits, target, reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), x_var)
    return value.detach(), grad, logits.detach(), dist2.detach()


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


def _lbfgs_direction(g, P, SY, YY, rho, age, gamma):
    """H·g for each image, H the L-BFGS inverse-Hessian approximation (the two-loop recursion).

    The recursion is done on h-vectors: with Sg = Sᵀg, Yg = Yᵀg and the Gram matrices
    SY[j, i] = s_jᵀy_i, YY = YᵀY, the first loop's coefficients a solve
    (I + ρ·SY⊙[i newer than j]) a = ρ·Sg, the second loop's e = a − b solve
    (I + ρ·SYᵀ⊙[i older than j]) e = a − ρ·γ(Yg − YY a), and H·g = γ(g − Y a) + S e.
    Only three products touch the m-dimensional history P = [S; Y] [N, 2h, m]; each image
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


def _minimize_torch(model, x0, shape, target, c, start, lower, upper, *, max_iter, history, tol, ftol,
                    check_every, best_x, best_d2, evaluations):
    """Minimise c·|x − x0|² + CE(f(x), target) over the box for every row, from ``start``.

    A projected quasi-Newton method with per-image state: the pixels at a bound whose gradient
    points outwards are held (the active set), the L-BFGS direction is computed on the others,
    the step is projected onto the box, and a backtracking (Armijo) line search with
    quadratic interpolation runs per image, one trial point per iteration for the whole batch.
    Every ``check_every`` iterations the batch shrinks to the images still converging (the only
    host synchronisation). Updates ``best_x``/``best_d2`` in place with every evaluated point
    that the model classifies as ``target`` closer than the best so far; adds to
    ``evaluations``. Returns the final iterates [N, m].
    """
    n, m = x0.shape
    dev, dtype = x0.device, x0.dtype
    h = history
    result = start.clone()
    ids = torch.arange(n, device=dev)  # the global row of each working row
    x = start.clone()
    state = {
        "P": torch.zeros(n, 2 * h, m, device=dev, dtype=dtype),  # [S; Y]
        "SY": torch.zeros(n, h, h, device=dev, dtype=dtype),
        "YY": torch.zeros(n, h, h, device=dev, dtype=dtype),
        "rho": torch.zeros(n, h, device=dev, dtype=dtype),
        "age": torch.arange(h, device=dev).expand(n, h).clone(),
        "alpha": torch.ones(n, device=dev, dtype=dtype),
        "active": torch.ones(n, device=dev, dtype=torch.bool),
        "x0": x0, "target": target, "c": c,
    }
    fx, g, logits, d2 = _penalty(model, x, x0, shape, target, c)
    evaluations += 1
    _record_best(ids, x, logits, d2, target, best_x, best_d2)
    for it in range(max_iter):
        P, SY, YY, rho, age, alpha, active = (state[k] for k in ("P", "SY", "YY", "rho", "age", "alpha", "active"))
        x0_w, target_w, c_w = state["x0"], state["target"], state["c"]
        rows = torch.arange(len(x), device=dev)
        # Active set: pixels at a bound whose gradient pushes outwards stay where they are.
        blocked = ((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0))
        free = (~blocked).to(dtype)
        projected_gradient = (x - (x - g).clamp(lower, upper)).abs().amax(1)
        active &= projected_gradient > tol
        if check_every and (it + 1) % check_every == 0:
            still = int(active.sum())
            if still == 0:
                break
            if still <= 0.75 * len(x):  # compact: drop the converged images from the batch
                keep = active.nonzero().squeeze(1)
                done = (~active).nonzero().squeeze(1)
                result[ids[done]] = x[done]
                ids, x, g, fx = ids[keep], x[keep], g[keep], fx[keep]
                state = {k: v[keep] for k, v in state.items()}
                continue
        newest = age.argmin(1)
        has_history = rho[rows, newest] > 0
        gamma_history = 1.0 / (rho[rows, newest] * YY[rows, newest, newest]).clamp_min(1e-30)
        gamma_first = 0.1 / (g * free).abs().amax(1).clamp_min(1e-12)  # first step moves a pixel by ≤ 0.1
        gamma = torch.where(has_history, gamma_history, gamma_first)
        d = -_lbfgs_direction(g * free, P, SY, YY, rho, age, gamma) * free
        step = torch.where(active, alpha, torch.zeros_like(alpha))
        x_trial = (x + step[:, None] * d).clamp(lower, upper)
        f_trial, g_trial, logits, d2 = _penalty(model, x_trial, x0_w, shape, target_w, c_w)
        evaluations[ids] += active.long()
        _record_best(ids, x_trial, logits, d2, target_w, best_x, best_d2)
        s = x_trial - x
        slope = (g * s).sum(1)
        accept = active & (f_trial <= fx + 1e-4 * slope) & (slope < 0)
        # Backtracking for the rejected ones: safeguarded quadratic interpolation.
        curvature = f_trial - fx - slope
        interpolated = -slope * alpha / (2 * curvature.clamp_min(1e-30))
        shrunk = torch.minimum(torch.maximum(interpolated, 0.1 * alpha), 0.5 * alpha)
        stuck = active & ~accept & (shrunk < 1e-10)
        state["alpha"] = torch.where(accept | stuck, torch.ones_like(alpha), shrunk)
        # Store the pair (s, y) where the step was accepted and the curvature condition holds,
        # in each image's oldest (or an empty) slot.
        yv = g_trial - g
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
        state["SY"] = torch.where(onehot[:, None, :], SY_col[:, :, None], SY)
        YY = torch.where(onehot[:, :, None], YY_new[:, None, :], YY)
        state["YY"] = torch.where(onehot[:, None, :], YY_new[:, :, None], YY)
        rho = torch.where(onehot, (1.0 / s_dot_y.clamp_min(1e-30))[:, None], rho)
        state["age"] = torch.where(store[:, None], torch.where(onehot, torch.zeros_like(age), age + 1), age)
        state["rho"] = torch.where(stuck[:, None], torch.zeros_like(rho), rho)  # a failed line search restarts
        accepted = accept[:, None]
        x = torch.where(accepted, x_trial, x)
        g = torch.where(accepted, g_trial, g)
        # Stop an image when an accepted step no longer lowers F noticeably (like scipy's ftol).
        state["active"] = active & ~(accept & (fx - f_trial <= ftol * fx.abs().clamp_min(1.0)))
        fx = torch.where(accept, f_trial, fx)
    result[ids] = x
    return result


SUCCESS_MARGIN = 1e-3


def _reaches(logits: torch.Tensor, target: torch.Tensor, margin: float = SUCCESS_MARGIN) -> torch.Tensor:
    """The target's logit beats every other by at least ``margin`` [N] bool.

    A point exactly on the decision boundary can flip class when it is evaluated in a batch of
    another size (floating-point sums are not associative), so the search only counts points
    with a small margin; the reported ``success`` is the plain argmax, recomputed at the end.
    """
    target_logit = logits.gather(1, target[:, None]).squeeze(1)
    others = logits.scatter(1, target[:, None], float("-inf")).amax(1)
    return target_logit - others >= margin


def _record_best(ids, x, logits, d2, target, best_x, best_d2):
    """Keep, per global row ``ids``, the closest evaluated point classified as ``target``."""
    better = _reaches(logits, target) & (d2 < best_d2[ids])
    best_x[ids] = torch.where(better[:, None], x, best_x[ids])
    best_d2[ids] = torch.where(better, d2, best_d2[ids])


def _minimize_scipy(model, x0, shape, target, c, start, lower, upper, *, max_iter, history, tol, ftol,
                    check_every, best_x, best_d2, evaluations):
    """The same penalty problem per image with scipy's L-BFGS-B (float64 on the host)."""
    import numpy as np
    from scipy.optimize import minimize

    out = start.clone()
    for i in range(x0.shape[0]):
        xi0, ti, ci = x0[i : i + 1], target[i : i + 1], c[i : i + 1]

        def fun(v):
            xv = torch.as_tensor(v, dtype=x0.dtype, device=x0.device).view(1, -1)
            value, grad, logits, d2 = _penalty(model, xv, xi0, shape, ti, ci)
            evaluations[i] += 1
            _record_best(torch.tensor([i], device=x0.device), xv, logits, d2, ti, best_x, best_d2)
            return float(value), grad.view(-1).double().cpu().numpy()

        res = minimize(fun, start[i].double().cpu().numpy(), jac=True, method="L-BFGS-B",
                       bounds=[(lower, upper)] * x0.shape[1],
                       options={"maxiter": max_iter, "maxcor": history, "gtol": tol, "ftol": ftol})
        out[i] = torch.as_tensor(np.asarray(res.x), dtype=x0.dtype, device=x0.device)
    return out


def _refine_to_boundary(model, x0, x_best, shape, target, found, steps: int = 12):
    """Walk each successful x_best back along r towards x0: the smallest t in (0, 1] found by
    bisection with f(x0 + t·r) = target. Never increases the distortion."""
    t_fail = torch.zeros(x0.shape[0], device=x0.device, dtype=x0.dtype)
    t_ok = torch.ones_like(t_fail)
    r = x_best - x0
    with torch.no_grad():
        for _ in range(steps):
            t = 0.5 * (t_fail + t_ok)
            hit = _reaches(model((x0 + t[:, None] * r).view(-1, *shape)), target)
            t_ok = torch.where(hit & found, t, t_ok)
            t_fail = torch.where(~hit & found, t, t_fail)
    return x0 + t_ok[:, None] * r


def lbfgs_attack(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, c_init: float = 1.0,
                 search_steps: int = 9, max_iter: int = 100, history: int = 10, tol: float = 1e-5, ftol: float = 1e-6,
                 bounds: tuple[float, float] = (0.0, 1.0), backend: str = "torch", refine: bool = True,
                 check_every: int = 10, num_classes: int | None = None) -> AttackResult:
    """Box-constrained L-BFGS attack of Szegedy et al. (§4.1), batched over images.

    Args:
        model: a classifier mapping x [N, ...] to logits [N, K] (used in eval mode, not changed).
        x: images [N, ...] with values in ``bounds`` (moved to the model's device).
        target: labels l [N] (int) to push each image towards.
        c_init: the first weight c on |r|²; each image then brackets and bisects its own c.
        search_steps: how many values of c each image tries (the paper's line search over c).
        max_iter: quasi-Newton iterations per value of c.
        history: L-BFGS memory (pairs kept per image).
        tol: stop an image's inner solve when its projected gradient's largest entry is below tol.
        ftol: ... or when an accepted step lowers the objective by less than ftol·max(|F|, 1).
        bounds: the box (lower, upper) for every pixel.
        backend: "torch" (batched, on the model's device) or "scipy" (per image, L-BFGS-B).
        refine: walk each found example back along r to the decision boundary (bisection).
        check_every: look for all-converged every this many iterations (0: never).
        num_classes: K; inferred from the model's output when None.

    Returns:
        AttackResult: per image the smallest-distortion x + r classified as ``target`` among
        all points evaluated for all values of c. If f(x) = target already, x itself
        (distortion 0, c = inf).
    """
    check_choice("backend", backend, BACKENDS)
    lower, upper = (float(b) for b in bounds)
    if not lower < upper:
        raise ValueError(f"bounds must be (lower, upper) with lower < upper, got {bounds!r}")
    check_images("x", x, low=lower, high=upper)
    check_positive("c_init", c_init)
    for name, value in (("search_steps", search_steps), ("max_iter", max_iter), ("history", history)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    device = _model_device(model)
    x = x.to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits0 = model(x)
        k = num_classes or logits0.shape[1]
        target = check_labels("target", target, len(x), k).to(device)
        shape = x.shape[1:]
        x0 = x.flatten(1)
        n = x0.shape[0]
        trivial = logits0.argmax(1) == target
        best_x = x0.clone()
        best_d2 = torch.where(trivial, torch.zeros(n, device=device, dtype=x0.dtype),
                              torch.full((n,), math.inf, device=device, dtype=x0.dtype))
        best_c = torch.where(trivial, torch.full((n,), math.inf, device=device, dtype=x0.dtype),
                             torch.full((n,), math.nan, device=device, dtype=x0.dtype))
        evaluations = torch.zeros(n, device=device, dtype=torch.long)
        c = torch.full((n,), float(c_init), device=device, dtype=x0.dtype)
        c_success = torch.zeros_like(c)  # largest c known to reach the target
        c_failure = torch.full_like(c, math.inf)  # smallest c known to miss it
        minimize = _minimize_torch if backend == "torch" else _minimize_scipy
        start = x0.clone()
        for _ in range(search_steps):
            before = best_d2.clone()
            final = minimize(model, x0, shape, target, c, start, lower, upper, max_iter=max_iter, history=history,
                             tol=tol, ftol=ftol, check_every=check_every, best_x=best_x, best_d2=best_d2, evaluations=evaluations)
            with torch.no_grad():
                reached = _reaches(model(final.view(-1, *shape)), target)
            improved = best_d2 < before
            best_c = torch.where(improved & ~trivial, c, best_c)
            c_success = torch.where(reached, torch.maximum(c_success, c), c_success)
            c_failure = torch.where(~reached, torch.minimum(c_failure, c), c_failure)
            bracketed = (c_success > 0) & torch.isfinite(c_failure)
            c = torch.where(bracketed, (c_success * c_failure).sqrt(), torch.where(reached, c * 10, c / 10))
            start = final  # warm start the next value of c from this solution
        found = torch.isfinite(best_d2) & ~trivial
        x_adv = best_x
        if refine:
            x_adv = torch.where(found[:, None], _refine_to_boundary(model, x0, best_x, shape, target, found), best_x)
        x_adv = x_adv.clamp(lower, upper).view(-1, *shape)
        with torch.no_grad():
            success = model(x_adv).argmax(1) == target
        # No example found: x_adv is x itself, and the distance to the target class is unknown
        # (reported as inf, so that an average over failures cannot pass for a small distortion).
        inf = torch.full((n,), math.inf, device=device, dtype=x0.dtype)
        return AttackResult(x_adv=x_adv.detach(), target=target, success=success, c=best_c,
                            distortion=torch.where(success, distortion(x, x_adv), inf),
                            l2=torch.where(success, (x_adv - x).flatten(1).norm(dim=1), inf),
                            evaluations=evaluations)
    finally:
        model.train(was_training)


def all_other_targets(y: torch.Tensor, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """For labels y [N]: (image index, target) pairs for every target l ≠ y, each [N·(K−1)]."""
    labels = torch.arange(num_classes, device=y.device)
    pairs = (labels[None, :] != y[:, None]).nonzero()
    return pairs[:, 0], labels[pairs[:, 1]]


def min_distortion_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int | None = None,
                          num_classes: int = 10, progress_bar: bool = True, **options) -> AttackResult:
    """The minimum distortion of Tables 1–4: D(x, l) for every l ≠ y, the closest one kept.

    All N·(K−1) (image, target) pairs are attacked together (in chunks of ``batch_size``
    pairs; by default as many as half the free GPU memory holds, ``config.attack_chunk_size``,
    and at most 60,000); per image the successful example with the smallest distortion is returned. An
    image the model already misclassifies is its own closest misclassified example
    (distortion 0). ``options`` go to ``lbfgs_attack``. ``evaluations`` sums over the targets.
    """
    from .progress import progress

    device = _model_device(model)
    check_images("x", x)
    y = check_labels("y", y, len(x), num_classes).to(device)
    x = x.to(device)
    image, target = all_other_targets(y, num_classes)
    if batch_size is None:
        batch_size = attack_chunk_size(device, x[0].numel(), options.get("history", 10))
    chunks, start = [], time.perf_counter()
    for i in progress(range(0, len(image), batch_size), desc="attack", enabled=progress_bar):
        sl = slice(i, i + batch_size)
        chunks.append(lbfgs_attack(model, x[image[sl]], target[sl], num_classes=num_classes, **options))
    every = AttackResult.concat(chunks)
    per_image = every.distortion.view(len(x), num_classes - 1)  # inf where a target was not reached
    best = per_image.argmin(1)
    pick = torch.arange(len(x), device=device) * (num_classes - 1) + best
    result = every[pick]
    result.evaluations = every.evaluations.view(len(x), num_classes - 1).sum(1)
    record_work("attack", time.perf_counter() - start, pairs=len(image), device=str(device),
                evaluations=int(every.evaluations.sum()), features=x[0].numel())
    return result


def solve_penalty(model: nn.Module, x: torch.Tensor, target: torch.Tensor, c: torch.Tensor, *,
                  max_iter: int = 200, history: int = 10, tol: float = 1e-5, ftol: float = 1e-7,
                  bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """The minimiser x + r of c·|r|² + loss_f(x + r, l) over the box, one row per (x, l, c).

    x [N, ...], target [N], c [N] (each row its own weight). No search over c: this is the
    inner problem of ``lbfgs_attack``, used to show how the solution moves with c (the slider).
    Returns x + r [N, ...] on the model's device.
    """
    lower, upper = (float(b) for b in bounds)
    check_images("x", x, low=lower, high=upper)
    device = _model_device(model)
    x = x.to(device)
    with torch.no_grad():
        k = model(x[:1]).shape[1]
    target = check_labels("target", target, len(x), k).to(device)
    if not isinstance(c, torch.Tensor) or c.shape != (len(x),) or not bool((c > 0).all()):
        raise ValueError(f"c must be a positive tensor of shape ({len(x)},), got {c!r}")
    was_training = model.training
    model.eval()
    try:
        x0 = x.flatten(1)
        best_x, best_d2 = x0.clone(), torch.full((len(x),), math.inf, device=device, dtype=x0.dtype)
        evaluations = torch.zeros(len(x), device=device, dtype=torch.long)
        final = _minimize_torch(model, x0, x.shape[1:], target, c.to(device=device, dtype=x0.dtype), x0.clone(),
                                lower, upper, max_iter=max_iter, history=history, tol=tol, ftol=ftol,
                                check_every=10, best_x=best_x, best_d2=best_d2, evaluations=evaluations)
        return final.view_as(x).detach()
    finally:
        model.train(was_training)
