import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import attackable_model, small_mlp
from coursekit.attack import (AttackResult, _lbfgs_direction, all_other_targets, distortion, lbfgs_attack,
                              min_distortion_attack, solve_penalty)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), classes=st.integers(2, 5))
def test_properties_on_small_models(seed, n, classes):
    model = small_mlp(classes=classes, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=generator)
    target = torch.randint(0, classes, (n,), generator=generator)
    result = lbfgs_attack(model, x, target, search_steps=3, max_iter=30)
    assert isinstance(result, AttackResult) and len(result) == n
    assert result.x_adv.shape == x.shape
    assert (result.x_adv >= 0).all() and (result.x_adv <= 1).all()
    with torch.no_grad():
        predicted = model(result.x_adv).argmax(1)
    assert torch.equal(result.success, predicted == target)
    ok = result.success
    assert torch.allclose(result.distortion[ok], (result.x_adv - x)[ok].flatten(1).pow(2).mean(1).sqrt(), atol=1e-6)
    assert torch.allclose(result.l2[ok], (result.x_adv - x)[ok].flatten(1).norm(dim=1), atol=1e-5)
    assert torch.isinf(result.distortion[~ok]).all() and torch.equal(result.x_adv[~ok], x[~ok])
    assert (result.evaluations >= 1).all()


def test_trivial_target_returns_x_itself():
    model = small_mlp()
    x = torch.rand(3, 1, 4, 4)
    with torch.no_grad():
        current = model(x).argmax(1)
    result = lbfgs_attack(model, x, current)
    assert torch.equal(result.x_adv, x) and (result.distortion == 0).all() and result.success.all()
    assert torch.isinf(result.c).all()


def test_bad_inputs_name_the_argument():
    model = small_mlp()
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="target"):
        lbfgs_attack(model, x, torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="target"):
        lbfgs_attack(model, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target"):
        lbfgs_attack(model, x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="x"):
        lbfgs_attack(model, x * 2, torch.tensor([0, 1]))
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN"):
        lbfgs_attack(model, bad, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="backend"):
        lbfgs_attack(model, x, torch.tensor([0, 1]), backend="jax")
    with pytest.raises(ValueError, match="c_init"):
        lbfgs_attack(model, x, torch.tensor([0, 1]), c_init=-1)
    with pytest.raises(ValueError, match="bounds"):
        lbfgs_attack(model, x, torch.tensor([0, 1]), bounds=(1, 0))


def _textbook_two_loop(g, pairs, gamma):
    q, alphas = g.clone(), []
    for s, y in pairs:  # newest first
        rho = 1 / (s @ y)
        a = rho * (s @ q)
        q -= a * y
        alphas.append((a, rho))
    z = gamma * q
    for (s, y), (a, rho) in reversed(list(zip(pairs, alphas))):
        z += (a - rho * (y @ z)) * s
    return z


def test_compact_direction_equals_the_two_loop_recursion():
    torch.manual_seed(0)
    n, m, h = 5, 30, 6
    P = torch.zeros(n, 2 * h, m, dtype=torch.float64)
    rho = torch.zeros(n, h, dtype=torch.float64)
    age = torch.zeros(n, h, dtype=torch.long)
    g = torch.randn(n, m, dtype=torch.float64)
    gamma = torch.rand(n, dtype=torch.float64) + 0.5
    expected = []
    for i in range(n):
        a = torch.randn(m, m, dtype=torch.float64)
        hessian = a @ a.T + m * torch.eye(m, dtype=torch.float64)
        filled = h - i % 3  # some images have empty slots
        order = torch.randperm(h)  # the pairs sit in scrambled slots
        pairs = []
        for j in range(h):
            slot = order[j].item()
            age[i, slot] = j
            if j < filled:
                s = torch.randn(m, dtype=torch.float64)
                y = hessian @ s
                P[i, slot], P[i, h + slot], rho[i, slot] = s, y, 1 / (s @ y)
                pairs.append((s, y))
        expected.append(_textbook_two_loop(g[i], pairs, gamma[i]))
    SY = P[:, :h] @ P[:, h:].transpose(1, 2)
    YY = P[:, h:] @ P[:, h:].transpose(1, 2)
    got = _lbfgs_direction(g, P, SY, YY, rho, age, gamma)
    assert torch.allclose(got, torch.stack(expected), rtol=1e-10, atol=1e-12)


def test_inner_solver_matches_scipy_on_a_convex_problem():
    """For fixed c the penalty problem of a linear softmax is strictly convex: one minimiser."""
    from scipy.optimize import minimize

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4)).double().eval()
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    target = torch.tensor([1, 2, 3])
    c = torch.tensor([0.05, 0.5, 5.0], dtype=torch.float64)
    ours = solve_penalty(model, x, target, c, max_iter=500, tol=1e-9, ftol=1e-14)
    for i in range(3):
        def fun(v):
            xv = torch.tensor(v, requires_grad=True)
            value = c[i] * (xv - x[i].flatten()).pow(2).sum() + torch.nn.functional.cross_entropy(
                model(xv.view(1, 1, 4, 4)), target[i : i + 1])
            value.backward()
            return value.item(), xv.grad.numpy()

        ref = minimize(fun, x[i].flatten().numpy(), jac=True, method="L-BFGS-B", bounds=[(0, 1)] * 16,
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 1000})
        assert torch.allclose(ours[i].flatten(), torch.tensor(ref.x), atol=2e-4)


@pytest.mark.slow
def test_convex_case_torch_matches_scipy(mnist_test):
    """On an FC10 model (convex loss in x) both backends find the same distortions."""
    from coursekit.train import TrainSettings, train

    x, y = mnist_test
    model = train("FC10(1e-2)", settings=TrainSettings(optimizer="lbfgs", lbfgs_iterations=60), device="cpu")
    images, targets = x[:12], (y[:12] + 3) % 10
    fast = lbfgs_attack(model, images, targets)
    reference = lbfgs_attack(model, images, targets, backend="scipy")
    assert fast.success.all() and reference.success.all()
    assert fast.distortion.mean() == pytest.approx(reference.distortion.mean().item(), rel=0.02)
    assert torch.allclose(fast.distortion, reference.distortion, rtol=0.05)


def test_min_distortion_keeps_the_closest_target():
    model = attackable_model(3)
    x = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(3)) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    result = min_distortion_attack(model, x, y, progress_bar=False)
    per_target = [lbfgs_attack(model, x, (y + shift) % 10).distortion for shift in range(1, 10)]
    best = torch.stack(per_target).min(0).values
    assert torch.isfinite(best).all()
    assert torch.allclose(result.distortion, best)
    assert (result.target != y).all() and result.success.all()


def test_misclassified_images_need_no_distortion():
    model = attackable_model(5)
    x = torch.rand(3, 1, 4, 4)
    with torch.no_grad():
        wrong_labels = (model(x).argmax(1) + 1) % 10
    result = min_distortion_attack(model, x, wrong_labels, progress_bar=False)
    assert (result.distortion == 0).all() and torch.equal(result.x_adv, x) and result.success.all()


def test_unreachable_target_is_reported_as_a_failure():
    """A constant model can never be pushed to another class: success False, distortion inf."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    x = torch.rand(2, 1, 4, 4)
    result = lbfgs_attack(model, x, torch.tensor([1, 2]), search_steps=3, max_iter=10)
    assert not result.success.any() and torch.isinf(result.distortion).all() and torch.equal(result.x_adv, x)
    assert torch.isnan(result.c).all()


def test_all_other_targets():
    image, target = all_other_targets(torch.tensor([0, 2]), 3)
    assert image.tolist() == [0, 0, 1, 1] and target.tolist() == [1, 2, 0, 1]


def test_distortion_is_the_papers_measure():
    x = torch.zeros(1, 1, 28, 28)
    x_adv = x.clone()
    x_adv[0, 0, 0, :4] = 0.5
    assert distortion(x, x_adv).item() == pytest.approx(math.sqrt(4 * 0.25 / 784))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = small_mlp(classes=4, seed=7)
    x = torch.rand(8, 1, 4, 4)
    target = torch.arange(8) % 4
    cpu = lbfgs_attack(model, x, target)
    gpu = lbfgs_attack(model.cuda(), x.cuda(), target.cuda())
    assert gpu.x_adv.is_cuda
    assert torch.equal(cpu.success, gpu.success.cpu())
    assert torch.allclose(cpu.distortion, gpu.distortion.cpu(), rtol=0.05, atol=1e-3)


def test_success_survives_re_evaluation_in_other_batch_sizes():
    """The examples sit just past the boundary with a margin, so re-evaluating them one by one
    (another floating-point summation order) gives the same class."""
    model = attackable_model(11)
    x = torch.rand(40, 1, 4, 4, generator=torch.Generator().manual_seed(11)) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    result = min_distortion_attack(model, x, y, progress_bar=False)
    assert result.success.all()
    with torch.no_grad():
        one_by_one = torch.stack([model(image[None]).argmax(1)[0] for image in result.x_adv])
    assert torch.equal(one_by_one, result.target) and (one_by_one != y).all()
