"""The one result layer under every attack: success, margins and distances decided in
``results.from_points``, and the passes counted by hooks on the model (``PassCounter``), checked
against a model that counts for itself what went through it."""

import math

import pytest
import torch

from conftest import CountingNet
from coursekit.modern_attacks import ATTACKS
from coursekit.results import AttackResult, PassCounter, distances, distortion, from_points, lp_distance


def _attacks():
    """Every attack of the course, each on its own small budget: (name, call(model, x, y, target))."""
    from coursekit import optimality
    from coursekit.attack import lbfgs_attack, min_distortion_attack
    from coursekit.modern_attacks import carlini_wagner_l2, ddn, fgsm, pgd
    from coursekit.paper import PAPER_ATTACK

    runs = [
        ("lbfgs_attack", lambda m, x, y, t: lbfgs_attack(m, x, t)),
        ("lbfgs_attack, the paper's", lambda m, x, y, t: lbfgs_attack(m, x, t, **PAPER_ATTACK)),
        ("lbfgs_attack, scipy", lambda m, x, y, t: lbfgs_attack(m, x[:3], t[:3], backend="scipy", search_steps=2)),
        (
            "min_distortion_attack",
            lambda m, x, y, t: min_distortion_attack(
                m, x[:4], y[:4], num_classes=4, progress_bar=False, search_steps=2, max_iter=20, batch_size=5
            ),
        ),
        ("fgsm", lambda m, x, y, t: fgsm(m, x, y, 0.1)),
        ("pgd ℓ∞", lambda m, x, y, t: pgd(m, x, y, 0.1, steps=5)),
        ("pgd ℓ2, targeted", lambda m, x, y, t: pgd(m, x, y, 0.5, norm="2", steps=5, target=t)),
        ("carlini_wagner_l2", lambda m, x, y, t: carlini_wagner_l2(m, x, t, search_steps=2, steps=10)),
        ("carlini_wagner_l2, untargeted", lambda m, x, y, t: carlini_wagner_l2(m, x, y=y, search_steps=2, steps=10)),
        ("ddn", lambda m, x, y, t: ddn(m, x, t, steps=10)),
        ("ddn, untargeted", lambda m, x, y, t: ddn(m, x, y=y, steps=10)),
        ("pgd_bisection", lambda m, x, y, t: optimality.pgd_bisection(m, x, t, steps=3, bisection_steps=3)),
        ("fmn ℓ2", lambda m, x, y, t: optimality.fmn(m, x, t, steps=10)),
        ("fmn ℓ∞", lambda m, x, y, t: optimality.fmn(m, x, t, norm="inf", steps=10)),
    ]
    for entry in ATTACKS.values():  # and every entry of the registry, at its smallest budget
        options = entry.budgets[min(entry.budgets)]
        if entry.kind == "minimum-norm":
            runs.append((f"registry: {entry.name}", lambda m, x, y, t, e=entry, o=options: e.attack(m, x, t, **o)))
        else:
            runs.append((f"registry: {entry.name}", lambda m, x, y, t, e=entry, o=options: e.attack(m, x, y, 0.1, **o)))
    return runs


@pytest.mark.parametrize("name, attack", _attacks(), ids=[name for name, _ in _attacks()])
def test_every_attack_reports_the_passes_the_model_saw(name, attack):
    """Issue 32: the passes were threaded by hand through the attacks, and FMN reported 111
    rows per image where a hook counted 102. Now hooks count them: the sums equal what the
    model counted in its own forward, for every attack."""
    if name.startswith("fmn") or "FMN" in name:
        pytest.importorskip("foolbox")
    model = CountingNet().eval()
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)
    model.rows = dict.fromkeys(model.rows, 0)
    result = attack(model, x, y, (y + 1) % 4)
    assert isinstance(result, AttackResult)
    assert int(result.evaluations.sum()) == model.rows["backward"] > 0
    assert int(result.forward_only.sum()) == model.rows["forward only"] > 0
    assert (result.forward_only >= 1).all()  # at least the final check of each image


def test_each_image_is_charged_its_own_passes():
    """The L-BFGS attack skips the images already in their target class and runs the others
    in sub-batches (the search, the rescue steps, the polish, the refine): every pass is
    counted against its own image. An image already there saw the first logits and the final
    check only."""
    from coursekit.attack import lbfgs_attack

    model = CountingNet().eval()
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    target = torch.where(torch.arange(6) % 2 == 0, y, (y + 1) % 4)  # even images: already there
    batch = lbfgs_attack(model, x, target)
    assert (batch.evaluations[0::2] == 0).all() and (batch.forward_only[0::2] == 2).all()
    assert (batch.evaluations[1::2] > 0).all() and (batch.forward_only[1::2] > 2).all()
    alone = lbfgs_attack(model, x[1::2], target[1::2])  # the same three, without the others
    assert torch.equal(alone.x_adv, batch.x_adv[1::2])
    assert int(alone.evaluations.sum()) == int(batch.evaluations.sum())


def test_a_batch_of_the_wrong_length_is_an_error_not_a_miscount():
    model = CountingNet().eval()
    x = torch.rand(4, 1, 4, 4)
    with PassCounter(model, 4, "cpu") as passes, torch.no_grad():
        model(x[:2])  # the first two images
        with passes.rows(torch.tensor([3, 1])):
            model(x[[3, 1]])
        with passes.rows(torch.tensor([0, 1, 2])), pytest.raises(RuntimeError, match="2 rows for 3 images"):
            model(x[:2])
        with pytest.raises(RuntimeError, match="5 rows for 4 images"):
            model(torch.rand(5, 1, 4, 4))
    assert passes.forward_only.tolist() == [1, 2, 0, 1]
    model(x)  # the hook is gone after the block
    assert passes.forward_only.tolist() == [1, 2, 0, 1]


def test_from_points_decides_success_margin_and_distances_once():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    x = torch.rand(5, 1, 4, 4)
    x_adv = (x + 0.3 * torch.randn(x.shape)).clamp(0, 1)
    with torch.no_grad():
        logits = model(x_adv)
    target = torch.tensor([0, 1, 2, 0, 1])
    with PassCounter(model, 5, "cpu") as passes:
        result = from_points(model, x, x_adv, target, passes=passes)
    success = logits.argmax(1) == target
    assert torch.equal(result.success, success) and result.forward_only.tolist() == [1] * 5
    others = logits.scatter(1, target[:, None], -math.inf).amax(1)
    assert torch.equal(result.margin, logits.gather(1, target[:, None]).squeeze(1) - others)
    assert torch.equal(result.margin > 0, success)
    assert torch.equal(result.x_adv[~success], x[~success]) and torch.equal(result.x_adv[success], x_adv[success])
    assert torch.isinf(result.distortion[~success]).all() and torch.isinf(result.l2[~success]).all()
    assert torch.allclose(result.distortion[success], distortion(x, x_adv)[success])
    assert torch.allclose(result.l2[success].double(), lp_distance(x_adv - x, "2")[success])
    assert torch.isnan(result.c).all()
    with PassCounter(model, 5, "cpu") as passes:  # untargeted: the goal is "not y"
        untargeted = from_points(model, x, x_adv, None, y=target, passes=passes, keep_failed=True)
    assert torch.equal(untargeted.success, logits.argmax(1) != target) and (untargeted.target == -1).all()
    assert torch.equal(untargeted.margin, -result.margin) and torch.equal(untargeted.x_adv, x_adv)
    d = distances(untargeted, x, "inf")
    assert torch.equal(torch.isinf(d), ~untargeted.success)
    assert torch.equal(d[untargeted.success], (x_adv - x).flatten(1).abs().amax(1).double()[untargeted.success])


def test_a_result_made_without_a_margin_has_nan_there():
    """Code written before the margin (a test building a result by hand) still makes one."""
    n = 3
    result = AttackResult(
        x_adv=torch.zeros(n, 1, 2, 2),
        target=torch.zeros(n, dtype=torch.long),
        success=torch.ones(n, dtype=torch.bool),
        c=torch.ones(n),
        distortion=torch.ones(n),
        l2=torch.ones(n),
        evaluations=torch.ones(n, dtype=torch.long),
        forward_only=torch.zeros(n, dtype=torch.long),
    )
    assert result.margin.shape == (n,) and torch.isnan(result.margin).all()
    assert torch.isnan(AttackResult.concat([result, result[1:]]).margin).all()
