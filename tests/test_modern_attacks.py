"""coursekit.modern_attacks against foolbox 3.3.4 (an independent implementation), explicit
computations on linear models, and the conventions shared with lbfgs_attack."""

import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import attackable_model, small_mlp
from coursekit.attack import AttackResult
from coursekit.modern_attacks import carlini_wagner_l2, certified_radius, ddn, fgsm, madry_training, pgd


@pytest.fixture(scope="module")
def mnist_mlp(mnist_test):
    """A 784-32-10 sigmoid network trained for a few seconds on 3000 MNIST test images, and 100
    other test images to attack (real data: attacks behave as on the zoo)."""
    x, y = mnist_test
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 10)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(4):
        for i in range(1000, 4000, 100):
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 100]), y[i : i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, x[:100], y[:100]


def foolbox_run(attack, model, x, labels, targeted=False, epsilons=None):
    fb = pytest.importorskip("foolbox")
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    criterion = fb.criteria.TargetedMisclassification(labels) if targeted else labels
    _, clipped, success = attack(fmodel, x, criterion, epsilons=epsilons)
    return clipped, success


def check_conventions(result: AttackResult, model, x, target=None, y=None, keep_failed=False):
    """What every attack promises (the module docstring)."""
    assert isinstance(result, AttackResult) and len(result) == len(x)
    assert result.x_adv.shape == x.shape and (result.x_adv >= 0).all() and (result.x_adv <= 1).all()
    predicted = model(result.x_adv).argmax(1)
    assert torch.equal(result.success, predicted == target if target is not None else predicted != y)
    ok = result.success
    r = (result.x_adv - x).flatten(1)
    assert torch.allclose(result.distortion[ok], r[ok].pow(2).mean(1).sqrt(), atol=1e-6)
    assert torch.allclose(result.l2[ok], r[ok].norm(dim=1), atol=1e-5)
    assert torch.isinf(result.distortion[~ok]).all() and torch.isinf(result.l2[~ok]).all()
    if not keep_failed:
        assert torch.equal(result.x_adv[~ok], x[~ok])
    expected_target = target if target is not None else torch.full_like(result.target, -1)
    assert torch.equal(result.target, expected_target)


# --- FGSM ---------------------------------------------------------------------------------------


def test_fgsm_equals_foolbox_exactly(mnist_mlp):
    fb = pytest.importorskip("foolbox")
    model, x, y = mnist_mlp
    for eps in (0.05, 0.2):
        ours = fgsm(model, x, y, eps)
        theirs, success = foolbox_run(fb.attacks.FGSM(), model, x, y, epsilons=eps)
        assert torch.equal(ours.x_adv, theirs)
        assert torch.equal(ours.success, success)
        check_conventions(ours, model, x, y=y, keep_failed=True)


def test_fgsm_on_a_linear_model_is_the_sign_of_the_explicit_gradient():
    model = attackable_model()
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.2
    y = torch.arange(6)
    W, b = model[1].weight, model[1].bias
    p = torch.softmax(x.flatten(1) @ W.T + b, 1)
    gradient = (p - torch.nn.functional.one_hot(y, 10).float()) @ W  # ∇ₓ CE for logits Wx + b
    expected = (x.flatten(1) + 0.1 * gradient.sign()).clamp(0, 1).view_as(x)
    assert torch.equal(fgsm(model, x, y, 0.1).x_adv, expected)


def test_fgsm_is_one_step_of_pgd(mnist_mlp):
    model, x, y = mnist_mlp
    one_step = pgd(model, x, y, 0.1, steps=1, step_size=0.1, random_start=False)
    assert torch.equal(fgsm(model, x, y, 0.1).x_adv, one_step.x_adv)


# --- PGD ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm, eps", [("inf", 0.06), ("2", 1.0)])
def test_pgd_success_matches_foolbox(mnist_mlp, norm, eps):
    fb = pytest.importorskip("foolbox")
    model, x, y = mnist_mlp
    steps, step_size = 10, 2.5 * eps / 10
    attack = (fb.attacks.LinfPGD if norm == "inf" else fb.attacks.L2PGD)(abs_stepsize=step_size, steps=steps)
    ours = pgd(model, x, y, eps, norm=norm, steps=steps, step_size=step_size)
    _, success = foolbox_run(attack, model, x, y, epsilons=eps)
    clean_error = (model(x).argmax(1) != y).float().mean()
    assert 0.2 < ours.success.float().mean() < 0.95 and ours.success.float().mean() > clean_error + 0.1
    assert abs(ours.success.float().mean() - success.float().mean()) <= 0.05
    check_conventions(ours, model, x, y=y, keep_failed=True)


def test_targeted_pgd_matches_foolbox(mnist_mlp):
    fb = pytest.importorskip("foolbox")
    model, x, y = mnist_mlp
    target = (y + 1) % 10
    ours = pgd(model, x, y, 0.1, steps=10, step_size=0.025, target=target)
    _, success = foolbox_run(
        fb.attacks.LinfPGD(abs_stepsize=0.025, steps=10), model, x, target, targeted=True, epsilons=0.1
    )
    assert 0.2 < ours.success.float().mean() < 0.95
    assert abs(ours.success.float().mean() - success.float().mean()) <= 0.05
    check_conventions(ours, model, x, target=target, keep_failed=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000), norm=st.sampled_from(["inf", "2"]), eps=st.floats(0.01, 2.0), targeted=st.booleans()
)
def test_pgd_stays_in_the_ball_and_the_box(seed, norm, eps, targeted):
    model = small_mlp(classes=4, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(5, 1, 4, 4, generator=generator)
    y = torch.randint(0, 4, (5,), generator=generator)
    target = (y + 1) % 4 if targeted else None
    result = pgd(model, x, y, eps, norm=norm, steps=5, target=target, seed=seed)
    r = (result.x_adv - x).flatten(1)
    size = r.abs().amax(1) if norm == "inf" else r.norm(dim=1)
    assert (size <= eps * (1 + 1e-5) + 1e-6).all()
    check_conventions(result, model, x, target=target, y=None if targeted else y, keep_failed=True)


def test_pgd_increases_the_loss_over_fgsm_and_random_noise(mnist_mlp):
    model, x, y = mnist_mlp
    ce = torch.nn.functional.cross_entropy
    strong = pgd(model, x, y, 0.05, steps=20)
    noise = (x + 0.05 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    assert ce(model(strong.x_adv), y) > ce(model(fgsm(model, x, y, 0.05).x_adv), y) > ce(model(noise), y)


# --- C&W and DDN --------------------------------------------------------------------------------


def mean_over_both(ours: AttackResult, theirs: torch.Tensor, success: torch.Tensor, x):
    both = ours.success & success
    assert both.float().mean() >= 0.9
    theirs_l2 = (theirs - x).flatten(1).norm(dim=1)
    return ours.l2[both].mean().item(), theirs_l2[both].mean().item()


@pytest.mark.slow
@pytest.mark.parametrize("targeted", [True, False])
def test_carlini_wagner_distortion_matches_foolbox(mnist_mlp, targeted):
    fb = pytest.importorskip("foolbox")
    model, x, y = mnist_mlp
    x, y = x[:30], y[:30]
    labels = (y + 1) % 10 if targeted else y
    kwargs = {"target": labels} if targeted else {"y": labels}
    settings = dict(steps=80, lr=0.1, c_init=1.0, search_steps=3)
    ours = carlini_wagner_l2(model, x, **settings, **kwargs)
    reference = fb.attacks.L2CarliniWagnerAttack(binary_search_steps=3, steps=80, initial_const=1.0, stepsize=0.1)
    theirs, success = foolbox_run(reference, model, x, labels, targeted=targeted)
    mine, reference = mean_over_both(ours, theirs, success, x)
    assert abs(mine / reference - 1) <= 0.05
    check_conventions(ours, model, x, **kwargs)
    moved = ours.success & (ours.distortion > 0)
    assert torch.isfinite(ours.c[moved]).all() and torch.isinf(ours.c[ours.success & ~moved]).all()


@pytest.mark.parametrize("targeted", [True, False])
def test_ddn_distortion_matches_foolbox(mnist_mlp, targeted):
    fb = pytest.importorskip("foolbox")
    model, x, y = mnist_mlp
    labels = (y + 1) % 10 if targeted else y
    kwargs = {"target": labels} if targeted else {"y": labels}
    ours = ddn(model, x, steps=100, **kwargs)
    theirs, success = foolbox_run(fb.attacks.DDNAttack(steps=100), model, x, labels, targeted=targeted)
    mine, reference = mean_over_both(ours, theirs, success, x)
    assert abs(mine / reference - 1) <= 0.05
    check_conventions(ours, model, x, **kwargs)


def exact_linear_distance(model, x, y):
    """For logits Wx + b without the box: the L2 distance to the nearest other class,
    min_j (Z_y − Z_j) / |w_y − w_j|."""
    W, b = model[1].weight, model[1].bias
    z = x.flatten(1) @ W.T + b
    gaps = (z.gather(1, y[:, None]) - z) / (W[y][:, None, :] - W[None]).norm(dim=2)
    return gaps.scatter(1, y[:, None], math.inf).amin(1)


@pytest.mark.parametrize("attack", ["cw", "ddn"])
def test_minimum_norm_attacks_find_the_exact_distance_of_a_linear_model(attack):
    model = attackable_model()
    x = 0.4 + 0.2 * torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(2))  # far from the box
    y = model(x).argmax(1)
    exact = exact_linear_distance(model, x, y)
    assert (exact < 0.3).all()  # the nearest boundary lies inside the box
    result = (
        carlini_wagner_l2(model, x, y=y, search_steps=6, c_init=1.0, steps=200)
        if attack == "cw"
        else ddn(model, x, y=y, steps=300)
    )
    assert result.success.all()
    assert (result.l2 >= exact * (1 - 1e-4)).all()  # nobody beats the exact minimum
    # C&W converges onto the boundary; DDN's norm moves in factors of 1 ± γ (5%)
    assert (result.l2 <= exact * (1.05 if attack == "cw" else 1.10)).all()


def test_trivial_and_failed_images_follow_the_conventions():
    model = attackable_model()
    x = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    current = model(x).argmax(1)
    for result in (ddn(model, x, current, steps=5), carlini_wagner_l2(model, x, current, steps=5, search_steps=1)):
        assert result.success.all() and (result.distortion == 0).all() and torch.equal(result.x_adv, x)
    # one step of DDN from a tiny norm cannot cross a far boundary: x itself, distortion inf
    far = ddn(model, x, y=current, steps=1, init_norm=1e-6)
    assert not far.success.any() and torch.equal(far.x_adv, x) and torch.isinf(far.distortion).all()


def test_bad_inputs_name_the_argument(mnist_mlp):
    model, x, y = mnist_mlp
    x, y = x[:2], y[:2]
    cases = [
        (lambda: fgsm(model, x, y, -0.1), "eps"),
        (lambda: fgsm(model, x * 2, y, 0.1), "x"),
        (lambda: fgsm(model, x, torch.tensor([0, 10]), 0.1), "y"),
        (lambda: pgd(model, x, y, 0.1, norm="1"), "norm"),
        (lambda: pgd(model, x, y, 0.1, steps=0), "steps"),
        (lambda: pgd(model, x, y, 0.1, target=torch.tensor([0.5, 1.0])), "target"),
        (lambda: pgd(model, x, y, 0.1, bounds=(1, 0)), "bounds"),
        (lambda: carlini_wagner_l2(model, x), "exactly one of target"),
        (lambda: carlini_wagner_l2(model, x, y, y=y), "exactly one of target"),
        (lambda: carlini_wagner_l2(model, x, y, c_init=0), "c_init"),
        (lambda: ddn(model, x, y, gamma=1.5), "gamma"),
        (lambda: ddn(model, x, torch.tensor([1, 2, 3])), "target"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_attacks_leave_the_model_in_its_mode(mnist_mlp):
    model, x, y = mnist_mlp
    model.train()
    try:
        pgd(model, x[:3], y[:3], 0.1, steps=2)
        ddn(model, x[:3], y=y[:3], steps=2)
        assert model.training
    finally:
        model.eval()


# --- the certificate ------------------------------------------------------------------------------


def test_certified_radius_of_a_linear_model_is_below_the_exact_distance():
    model = attackable_model()
    x = 0.4 + 0.2 * torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    y = model(x).argmax(1)
    radius = certified_radius(model, x, y)
    exact = exact_linear_distance(model, x, y)
    assert (radius > 0).all() and (radius <= exact * (1 + 1e-5)).all()
    # and it is margin / (√2·|W|₂), computed here from the explicit matrix
    z = model(x)
    margin = z.gather(1, y[:, None]).squeeze(1) - z.scatter(1, y[:, None], -math.inf).amax(1)
    expected = margin / (math.sqrt(2) * torch.linalg.matrix_norm(model[1].weight, 2))
    assert torch.allclose(radius, expected, rtol=1e-4)


def test_certified_radius_is_below_every_adversarial_example_found(mnist_mlp):
    model, x, y = mnist_mlp
    radius = certified_radius(model, x, y)
    found = ddn(model, x, y=y, steps=50)
    correct = model(x).argmax(1) == y
    assert (radius[~correct] == 0).all() and (radius[correct] > 0).all()
    assert (radius[found.success] <= found.l2[found.success]).all()
    # nothing inside the radius changes the answer: random directions at 0.99·radius
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        r = torch.randn(x.shape, generator=generator)
        r = r / r.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * (0.99 * radius).view(-1, 1, 1, 1)
        assert torch.equal(model(x + r).argmax(1)[correct], y[correct])


def test_certified_radius_refuses_what_it_cannot_certify(mnist_mlp):
    model, x, y = mnist_mlp

    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Linear(784, 784)

        def forward(self, v):
            return v + self.inner(v)

    skip = torch.nn.Sequential(torch.nn.Flatten(), Residual(), torch.nn.Linear(784, 10))
    with pytest.raises(ValueError, match="model must be a chain"):
        certified_radius(skip, x[:2], y[:2])
    with pytest.raises(ValueError, match="model must be a chain"):  # no layer bound is known for GELU
        certified_radius(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.GELU(), torch.nn.Linear(784, 10)), x[:2], y[:2]
        )
    # One list of boundable layers (spectral.BOUNDED_LAYERS): Tanh (1-Lipschitz) and BatchNorm are certified.
    tanh = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Tanh(), torch.nn.BatchNorm1d(784), torch.nn.Linear(784, 10))
    assert certified_radius(tanh, x[:2], y[:2]).shape == (2,)
    with pytest.raises(ValueError, match="lipschitz"):
        certified_radius(model, x[:2], y[:2], lipschitz=0)


def test_certified_radius_uses_the_zoo_layer_bounds(mnist_mlp):
    from coursekit.models import build
    from coursekit.spectral import layer_bounds

    model = build("FC100-100-10").eval()
    _, x, y = mnist_mlp
    product = layer_bounds(model, (1, 28, 28)).attrs["product"]
    assert torch.allclose(certified_radius(model, x, y), certified_radius(model, x, y, lipschitz=product))


# --- PGD training -----------------------------------------------------------------------------------


def test_madry_training_refuses_lbfgs_models_and_bad_arguments(tmp_cache):
    with pytest.raises(ValueError, match="name"):
        madry_training("FC10(1e-4)")
    with pytest.raises(ValueError, match="eps"):
        madry_training("FC100-100-10", eps=0)
    with pytest.raises(ValueError, match="epochs"):
        madry_training("FC100-100-10", epochs=0)


@pytest.mark.slow
def test_madry_training_makes_pgd_weaker_and_is_cached(tmp_cache):
    from coursekit.data import load_mnist
    from coursekit.train import TrainSettings, train

    x, y = load_mnist("test")
    x, y = x[:200], y[:200]
    robust = madry_training("FC100-100-10", eps=0.1, steps=3, epochs=1, device="cpu")
    plain = train("FC100-100-10", settings=TrainSettings(epochs=1, lr=1e-2), device="cpu")
    robust_error = pgd(robust, x, y, 0.1, steps=10).success.float().mean()
    plain_error = pgd(plain, x, y, 0.1, steps=10).success.float().mean()
    assert robust_error < plain_error - 0.2
    again = madry_training("FC100-100-10", eps=0.1, steps=3, epochs=1, device="cpu")
    assert again.training_info == robust.training_info
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), robust.state_dict().values()))


def _batchnorm_dropout_model():
    """A network with BatchNorm1d and Dropout, left in train mode (as inside a training loop)."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(16, 12),
        torch.nn.BatchNorm1d(12),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(12, 4),
    )
    model.train()
    return model


ATTACKS_ON_A_TRAINING_MODEL = {
    "fgsm": lambda m, x, y: fgsm(m, x, y, 0.1),
    "pgd": lambda m, x, y: pgd(m, x, y, 0.1, steps=3),
    "carlini_wagner_l2": lambda m, x, y: carlini_wagner_l2(m, x, (y + 1) % 4, search_steps=2, steps=5),
    "ddn": lambda m, x, y: ddn(m, x, (y + 1) % 4, steps=5),
    "certified_radius": lambda m, x, y: certified_radius(m, x, y, lipschitz=10.0),
}


@pytest.mark.parametrize("name", ATTACKS_ON_A_TRAINING_MODEL)
def test_an_attack_changes_nothing_the_caller_owns(name):
    """Issue 24 items 6 and 7: the attacks looked at one image in train mode before switching
    to eval (BatchNorm statistics and num_batches_tracked changed, dropout drew from the global
    random generator, BatchNorm1d raised on one value per channel), and C&W left gradients in
    every parameter's .grad. The model's state, mode, .grad and the global RNG stay as they were."""
    model = _batchnorm_dropout_model()
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    ATTACKS_ON_A_TRAINING_MODEL[name](model, x, y)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "carlini_wagner_l2", "ddn"])
def test_a_float64_batch_on_a_float32_model_is_converted(name):
    """Issue 24 item 10: the modern attacks crashed on float64 x with a float32 model."""
    model = _batchnorm_dropout_model().eval()
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2])
    result = ATTACKS_ON_A_TRAINING_MODEL[name](model, x.double(), y)
    reference = ATTACKS_ON_A_TRAINING_MODEL[name](model, x, y)
    assert result.x_adv.dtype == torch.float32 and torch.equal(result.x_adv, reference.x_adv)


@pytest.mark.parametrize("bounds", [(0.0, math.inf), (-math.inf, 1.0), (0.0, math.nan)])
def test_pgd_refuses_infinite_bounds(bounds):
    model = attackable_model(0)
    with pytest.raises(ValueError, match="bounds"):
        pgd(model, torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), 0.1, bounds=bounds)


def test_error_vs_eps_measures_its_clean_row_in_eval_mode_and_changes_nothing():
    """Issue 31 item 2: the ε = 0 row ran the model in train mode (on a BatchNorm + Dropout model
    0.719 instead of 0.734), updated the running statistics and drew from the global random
    generator, while the FGSM and PGD rows of the same table run in eval mode. The clean row is
    the error of the model in eval mode (computed here on a copy), and the model's mode, state,
    gradients and the global generator stay as they were."""
    from coursekit.modern_attacks import error_vs_eps

    model = _batchnorm_dropout_model()
    with torch.no_grad():  # running statistics away from their initial values
        for seed in range(3):
            model(torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(seed)) * 3)
    x = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(7))
    y = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(8))
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        expected = (reference(x).argmax(1) != y).float().mean().item()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    table = error_vs_eps(model, x, y, [0.0, 0.1], steps=3)
    assert table.loc[0.0, "FGSM"] == expected and table.loc[0.0, "PGD"] == expected
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(ValueError, match="y"):
        error_vs_eps(model, x, y[:10], [0.0])
