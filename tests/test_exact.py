"""The exact linear case: certified QP solutions checked against brute force and scipy's SLSQP."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from conftest import attackable_model, small_mlp

from coursekit.attack import lbfgs_attack
from coursekit.exact import box_qp, exact_min_distortion, linear_min_perturbation, linear_weights


def _random_linear(k=3, n=2, seed=0, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(k, n, generator=generator, dtype=torch.float64) * scale,
            torch.randn(k, generator=generator, dtype=torch.float64))


def _brute_force(weight, bias, x, target, steps=1001):
    """The closest point of a (steps × steps) grid of the 2-D box on which ``target`` wins."""
    grid = np.linspace(0, 1, steps)
    v = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    logits = v @ weight.numpy().T + bias.numpy()
    wins = logits.argmax(1) == target
    if not wins.any():
        return np.inf
    return np.sqrt(((v[wins] - x) ** 2).sum(1).min())


@pytest.mark.parametrize("seed", range(6))
def test_two_pixel_problems_match_a_brute_force_grid(seed):
    weight, bias = _random_linear(seed=seed)
    generator = torch.Generator().manual_seed(100 + seed)
    x = torch.rand(3, 1, 2, generator=generator, dtype=torch.float64)
    for target in range(3):
        result = linear_min_perturbation(weight, bias, x, torch.full((3,), target))
        for i in range(3):
            brute = _brute_force(weight, bias, x[i].flatten().numpy(), target)
            exact = result.distortion[i].item() * np.sqrt(2)  # back to |r|₂ (n = 2)
            if np.isinf(brute):  # no grid point: the target cannot win in the box
                assert np.isinf(exact)
                continue
            cell = np.sqrt(2) / 1000  # the grid's cell diagonal
            assert exact <= brute + 1e-9  # nothing on the grid beats the optimum
            assert brute <= exact + 3 * cell  # and a grid point next to the optimum wins


def test_the_returned_point_is_feasible_inside_the_box_and_optimal():
    weight, bias = _random_linear(k=5, n=30, seed=3, scale=1.0)
    x = torch.rand(8, 1, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = torch.arange(8) % 5
    result = linear_min_perturbation(weight, bias, x, target, margin=0.01)
    for i in range(8):
        if not torch.isfinite(result.distortion[i]):
            continue
        v = x[i].flatten() + result.r[i]
        assert v.min() >= 0 and v.max() <= 1
        logits = weight @ v + bias
        others = torch.cat([logits[:target[i]], logits[target[i] + 1:]])
        assert logits[target[i]] - others.max() >= 0.01 - 1e-6
        assert result.lower_bound[i] <= result.distortion[i] * (1 + 1e-9)
        assert result.lower_bound[i] >= result.distortion[i] * (1 - 1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_scipy_slsqp_on_the_primal(seed):
    n, k = 25, 4
    weight, bias = _random_linear(k=k, n=n, seed=seed, scale=0.5)
    x = torch.rand(k, 1, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    target = torch.arange(k)
    result = linear_min_perturbation(weight, bias, x, target, margin=0.05)
    W, b = weight.numpy(), bias.numpy()
    for i, l in enumerate(target.tolist()):
        xi = x[i].flatten().numpy()
        others = [j for j in range(k) if j != l]
        A, d = W[others] - W[l], b[others] - b[l] + 0.05
        constraint = {"type": "ineq", "fun": lambda r: -(A @ (xi + r) + d), "jac": lambda r: -A}
        out = minimize(lambda r: (0.5 * r @ r, r), np.zeros(n), jac=True, method="SLSQP",
                       bounds=list(zip(-xi, 1 - xi)), constraints=[constraint],
                       options={"ftol": 1e-14, "maxiter": 1000})
        if not out.success:  # SLSQP reports an infeasible problem
            assert torch.isinf(result.distortion[i])
            continue
        assert result.distortion[i].item() == pytest.approx(np.sqrt(2 * out.fun / n), rel=1e-5)


def test_unreachable_target_is_inf_and_does_not_spoil_the_other_rows():
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    bias = torch.tensor([0.0, 0.0, -5.0], dtype=torch.float64)  # class 2 never wins in [0, 1]²
    x = torch.tensor([[[0.2, 0.6]], [[0.2, 0.6]], [[0.9, 0.1]]], dtype=torch.float64)
    result = linear_min_perturbation(weight, bias, x, torch.tensor([2, 0, 1]))
    assert torch.isinf(result.distortion[0])
    # class 0 wins once x0 > x1: the closest point is the projection onto x0 = x1
    assert result.distortion[1].item() * np.sqrt(2) == pytest.approx(0.4 / np.sqrt(2), rel=1e-6)
    assert result.distortion[2].item() * np.sqrt(2) == pytest.approx(0.8 / np.sqrt(2), rel=1e-6)


def test_an_image_already_of_the_target_class_needs_no_perturbation():
    weight, bias = _random_linear(k=3, n=4, seed=1)
    x = torch.rand(1, 1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    current = int((weight @ x.flatten() + bias).argmax())
    result = linear_min_perturbation(weight, bias, x, torch.tensor([current]))
    assert result.distortion.item() == 0.0


def test_exact_min_distortion_bounds_the_attack_from_below():
    model = attackable_model(0)
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    per_target, best = exact_min_distortion(model, x, y)
    assert per_target.shape == (6, 10)
    assert torch.isnan(per_target[torch.arange(6), y]).all()
    assert torch.equal(best, per_target.nan_to_num(float("inf")).min(1).values)
    target = (y + 1) % 10
    exact = per_target[torch.arange(6), target]
    plain = lbfgs_attack(model, x, target, polish=0)  # the paper's penalty method alone
    polished = lbfgs_attack(model, x, target)
    for attack in (plain, polished):
        found = attack.success
        assert found.any()
        assert (attack.distortion[found].double() / exact[found] >= 1 - 1e-4).all()  # nothing beats the optimum
    # the penalty's minimiser walked back to the boundary is close but not the projection:
    # measured 1.00-1.12 here; the polish solves the linear problem exactly (margin 1e-3 aside)
    ratio = plain.distortion[plain.success].double() / exact[plain.success]
    assert ratio.max() <= 1.15 and ratio.mean() <= 1.06
    ratio = polished.distortion[polished.success].double() / exact[polished.success]
    assert ratio.max() <= 1.01 and ratio.mean() <= 1.005
    assert polished.success.sum() >= plain.success.sum()


def _qp_rows(seed, rows=40, k=10, n=64, scale=0.5, margin=1e-3):
    """Random linear classifiers' problems in the form box_qp takes (and their inputs)."""
    weight, bias = _random_linear(k=k, n=n, seed=seed, scale=scale)
    x = torch.rand(rows, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    target = torch.randint(0, k, (rows,), generator=torch.Generator().manual_seed(seed + 1))
    others = torch.tensor([[j for j in range(k) if j != t] for t in target.tolist()])
    A = weight[others] - weight[target][:, None, :]
    h = -(torch.einsum("rkn,rn->rk", A, x) + bias[others] - bias[target][:, None] + margin)
    return (weight, bias, x, target), (A, h, -x, 1 - x)


@pytest.mark.parametrize("seed", range(3))
def test_batched_qp_matches_the_certified_scipy_solution(seed):
    (weight, bias, x, target), problem = _qp_rows(seed)
    reference = linear_min_perturbation(weight, bias, x, target, margin=1e-3)
    r, violation = box_qp(*problem)
    ok = torch.isfinite(reference.distortion)
    assert ok.sum() >= 10
    assert (violation[ok] <= 1e-8).all()
    assert torch.allclose(r[ok], reference.r[ok], atol=1e-4)
    gap = (r[ok].pow(2).sum(1).sqrt() - reference.r[ok].pow(2).sum(1).sqrt()).abs()
    assert (gap <= 1e-6 * reference.r[ok].norm(dim=1)).all()  # the same optimal length
    assert (r >= -x - 1e-12).all() and (r <= 1 - x + 1e-12).all()
    assert (violation[~ok] > 1e-6).all()  # no point of the box meets those constraints


def test_batched_qp_float32_is_close_to_float64():
    _, problem = _qp_rows(7)
    r64, v64 = box_qp(*problem)
    r32, v32 = box_qp(*(p.float() for p in problem))
    feasible = v64 <= 1e-8
    assert torch.allclose(r32[feasible].double(), r64[feasible], atol=1e-3)


def test_refuses_a_model_that_is_not_linear():
    with pytest.raises(ValueError, match="single nn.Linear"):
        linear_weights(small_mlp())


@pytest.mark.parametrize("bad", [{"margin": -1.0}, {"tol": float("nan")}])
def test_bad_arguments_are_named(bad):
    weight, bias = _random_linear()
    x = torch.rand(1, 1, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=next(iter(bad))):
        linear_min_perturbation(weight, bias, x, torch.tensor([0]), **bad)


@pytest.mark.parametrize("change, message", [
    (lambda p: {**p, "A": p["A"][0]}, "A must be"),
    (lambda p: {**p, "h": p["h"][:, :3]}, "h must have shape"),
    (lambda p: {**p, "lo": p["hi"] + 1}, "lo must be <= hi"),
    (lambda p: {**p, "A": p["A"] * float("nan")}, "A and h must be finite"),
    (lambda p: {**p, "hi": p["hi"].long()}, "hi must be a floating-point"),
    (lambda p: {**p, "iterations": 0}, "iterations must be"),
    (lambda p: {**p, "tol": float("nan")}, "tol"),
])
def test_batched_qp_names_bad_input(change, message):
    _, (A, h, lo, hi) = _qp_rows(0, rows=4, n=8)
    with pytest.raises(ValueError, match=message):
        box_qp(**change({"A": A, "h": h, "lo": lo, "hi": hi}))
