"""The attacks as a registry: one entry per attack, read by everything that runs attacks by name."""

from functools import partial

import pytest
import torch

from conftest import attackable_model
from coursekit import optimality as O
from coursekit.modern_attacks import registry
from coursekit.modern_attacks.registry import ATTACKS, AttackEntry, attacks, run_attack


def test_the_registry_holds_every_attack_once_with_its_norm_and_kind():
    from coursekit.attack import lbfgs_attack
    from coursekit.modern_attacks import carlini_wagner_l2, ddn, fgsm, fmn, pgd, pgd_bisection

    functions = {getattr(e.attack, "func", e.attack) for e in ATTACKS.values()}
    assert functions == {lbfgs_attack, carlini_wagner_l2, ddn, fgsm, fmn, pgd, pgd_bisection}
    assert [e.name for e in attacks("minimum-norm", "2")] == list(O.L2_ATTACKS)
    assert [e.name for e in attacks("minimum-norm", "inf")] == list(O.LINF_ATTACKS)
    for entry in attacks("minimum-norm"):
        assert set(entry.budgets) == set(O.BUDGETS)
        assert O.BUDGET_SETTINGS[100][entry.name] == dict(entry.budgets[100])
    with pytest.raises(TypeError):  # read-only: a run cannot change another's options
        ATTACKS["DDN"].budgets[100]["steps"] = 5  # type: ignore[index]


def test_bad_entries_and_bad_requests_are_refused_by_name():
    with pytest.raises(ValueError, match="norm"):
        AttackEntry("x", O.pgd_bisection, "1", "minimum-norm", {100: {}})
    with pytest.raises(ValueError, match="kind"):
        AttackEntry("x", O.pgd_bisection, "inf", "maximum-norm", {100: {}})
    entry = AttackEntry("x", O.pgd_bisection, "inf", "minimum-norm", {100: {}})
    with pytest.raises(ValueError, match="unique"):
        registry._by_name(entry, entry)
    model = attackable_model(0)
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="name"):
        run_attack("FGSM", model, x, torch.tensor([0, 1]), 100)  # fixed-budget: not a minimum-norm attack
    with pytest.raises(ValueError, match="budget"):
        run_attack("DDN", model, x, torch.tensor([0, 1]), 500)
    with pytest.raises(ValueError, match="kind"):
        attacks("largest")


def _with_one_more(monkeypatch, entry):
    """The registry as it is, plus ``entry``: what adding one line to ATTACKS does."""
    monkeypatch.setattr(registry, "ATTACKS", registry._by_name(*ATTACKS.values(), entry))


def test_an_attack_added_to_the_registry_runs_by_its_name(monkeypatch):
    """Issue 32: adding an attack took six edits in four files, one of them name-string
    dispatch in optimality. Now it is a file and an entry: here an entry alone."""
    from coursekit.modern_attacks import ddn

    _with_one_more(monkeypatch, AttackEntry("DDN, γ = 0.2", partial(ddn, gamma=0.2), "2", "minimum-norm", {100: {}}))
    model = attackable_model(0)
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    target = (model(x).argmax(1) + 1) % 10
    result = O.run_attack("DDN, γ = 0.2", model, x, target, 100)
    assert torch.equal(result.x_adv, ddn(model, x, target, gamma=0.2).x_adv)


@pytest.mark.slow
def test_an_attack_added_to_the_registry_joins_chapter_7s_comparison(monkeypatch):
    pytest.importorskip("pyscipopt")
    from coursekit.modern_attacks import ddn

    entry = AttackEntry("DDN, 30 steps", partial(ddn, steps=30), "2", "minimum-norm", {100: {}})
    _with_one_more(monkeypatch, entry)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 10))
    model.eval()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        target = (model(x).argmax(1) + 1) % 10
    per_image, summary, _ = O.compare_with_exact(model, x, target, budget=100)
    assert ("ℓ2", "DDN, 30 steps") in per_image.columns
    assert summary.loc[("ℓ2", "DDN, 30 steps"), "passes/ex"] == 30
