"""Chapter 7a's measurements: the linear explanation and the pockets test (coursekit.linearity),
and its exercises' references against the package."""

import math

import pytest
import torch
from torch import nn

from coursekit.exercises import exercise
from coursekit.linearity import (
    gradient_sign_change,
    margin_ratio,
    misclassified,
    pocket_table,
    pocket_test,
    random_at_distance,
    rival_template,
)
from coursekit.modern_attacks import pgd


def _linear(classes=10, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, classes)).eval()


def _images(n=6, seed=1):
    return 0.25 + 0.5 * torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def test_linear_logits_have_margin_ratio_one_and_a_network_bends_it():
    x = _images()
    model = _linear()
    y = model(x).argmax(1)
    ratio = margin_ratio(model, x, y, eps=0.2)
    assert ratio.shape == (6,) and ratio.dtype == torch.float64
    torch.testing.assert_close(ratio, torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-4)
    torch.manual_seed(2)
    network = nn.Sequential(nn.Flatten(), nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    bent = margin_ratio(network, x, network(x).argmax(1), eps=0.2)
    assert (bent - 1).abs().max() > 1e-3


def test_two_class_linear_loss_keeps_its_gradient_sign():
    """With two classes the gradient is p_j (w_j − w_y): its sign never changes along a step,
    while with ten classes the softmax reweights the rivals and some signs turn."""
    x = _images()
    two = _linear(classes=2)
    assert gradient_sign_change(two, x, two(x).argmax(1), eps=0.3).max() == 0
    ten = _linear()
    changed = gradient_sign_change(ten, x, ten(x).argmax(1), eps=0.3)
    assert changed.shape == (6,) and 0 <= changed.min() and changed.max() <= 1


def test_fgsm_on_a_two_class_linear_model_is_the_template_sign():
    model = _linear(classes=2)
    x = _images(1)
    y = model(x).argmax(1)
    rival, template, step, agree = rival_template(model, model[1].weight, x, y)
    assert rival == 1 - int(y) and agree == 1.0
    w = model[1].weight.detach().double()
    assert torch.equal(template, torch.sign(w[rival] - w[int(y)]))
    assert step.shape == (16,)
    with pytest.raises(ValueError, match="one image"):
        rival_template(model, model[1].weight, _images(2), y.repeat(2))
    with pytest.raises(ValueError, match="weight must be"):
        rival_template(model, model[1].weight[:, :3], x, y)


def test_random_points_lie_at_the_asked_distance_inside_the_box():
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0)) ** 4  # dark: clipping bites
    length = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0])
    before = torch.get_rng_state()
    p = random_at_distance(x, length, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.testing.assert_close((p - x).flatten(1).norm(dim=1), length, rtol=1e-5, atol=1e-6)
    assert p.min() >= 0 and p.max() <= 1 and torch.equal(p[0], x[0])
    assert torch.equal(p, random_at_distance(x, length, seed=3))
    assert not torch.equal(p, random_at_distance(x, length, seed=4))
    with pytest.raises(ValueError, match="longer change than the box"):
        random_at_distance(x, torch.full((5,), 100.0))
    with pytest.raises(ValueError, match="length must be"):
        random_at_distance(x, torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0]))


def test_a_linear_model_has_half_spaces_not_pockets():
    """Past the boundary the wrong answer goes on along r (the set where y wins is convex);
    halfway to it the answer is still right."""
    model = _linear()
    x = _images(8)
    y = model(x).argmax(1)
    w = model[1].weight.detach()
    z = model(x).detach()
    j = z.scatter(1, y[:, None], -math.inf).argmax(1)
    direction = w[j] - w[y]  # towards the runner-up, [8, 16]
    gap = (z.gather(1, y[:, None]) - z.gather(1, j[:, None])).squeeze(1)
    r = (1.05 * gap / direction.pow(2).sum(1))[:, None] * direction
    x_adv = (x.flatten(1) + r).view_as(x)
    assert (x_adv >= 0).all() and (x_adv <= 1).all(), "the test needs r inside the box"
    test = pocket_test(model, x, y, x_adv, scales=(0.5, 1.0, 2.0, 4.0))
    assert test.images == 8 and test.along.shape == (8, 4)
    assert test.share(0.5) == 0 and test.share(1.0) == 1 and test.share(2.0) == 1 and test.share(4.0) == 1
    torch.testing.assert_close(test.distortion, r.pow(2).mean(1).sqrt())
    table = pocket_table({"linear": test})
    assert list(table.columns) == [
        "tested",
        "reached",
        "median distortion",
        "t = 0.5",
        "t = 1",
        "t = 2",
        "t = 4",
        "random, same distance",
    ]
    assert table.loc["linear", "tested"] == 8
    with pytest.raises(ValueError, match="t must be one of"):
        test.share(3.0)


def test_pockets_skip_images_already_wrong_or_not_moved():
    model = _linear()
    x = _images(4)
    y = model(x).argmax(1)
    wrong_at_x = y.clone()
    wrong_at_x[0] = (y[0] + 1) % 10  # image 0 is misclassified to begin with
    test = pocket_test(model, x, wrong_at_x, x.clone())  # nothing moved
    assert len(test.along) == 0 and test.images == 4 and math.isnan(test.share(1.0))
    assert misclassified(model, x, wrong_at_x).tolist() == [True, False, False, False]


def test_bad_arguments_are_named():
    model = _linear()
    x = _images(2)
    y = model(x).argmax(1)
    with pytest.raises(ValueError, match="scales"):
        pocket_test(model, x, y, x, scales=())
    with pytest.raises(ValueError, match="x_adv must have the shape"):
        pocket_test(model, x, y, x[:1])
    with pytest.raises(ValueError, match="eps"):
        margin_ratio(model, x, y, eps=0)
    with pytest.raises(ValueError, match="y must"):
        gradient_sign_change(model, x, y[:1])
    with pytest.raises(ValueError, match="tests"):
        pocket_table({})


def test_measurements_leave_the_model_in_train_mode_if_it_was():
    model = _linear().train()
    x = _images(3)
    y = model(x).argmax(1)
    margin_ratio(model, x, y)
    gradient_sign_change(model, x, y)
    pocket_test(model, x, y, x)
    assert model.training


def test_the_targeted_fgsm_reference_is_one_targeted_pgd_step():
    entry = exercise("targeted_fgsm")
    for model, x, target, eps in entry.sample_cases():
        ours = entry.reference(model, x, target, eps)
        package = pgd(model, x, target, eps, steps=1, step_size=eps, random_start=False, target=target)
        torch.testing.assert_close(ours, package.x_adv, rtol=0, atol=1e-6)


def test_the_pgd_l2_mistakes_differ_from_the_reference_only_in_what_they_name():
    """The ℓ2 PGD exercise's mistakes are built from one loop: with its right step and
    projection it is the package's PGD."""
    from coursekit.exercises.ch07a_attacks_and_linearity import _along_the_norm, _into_the_ball, _l2_pgd

    entry = exercise("pgd_l2")
    right = _l2_pgd(_along_the_norm, _into_the_ball)
    for case in entry.sample_cases():
        torch.testing.assert_close(right(*case), entry.reference(*case), rtol=0, atol=1e-5)
