import pytest
import torch

from conftest import attackable_model, small_mlp
from coursekit.adversarial_training import adversarial_pool_training, make_adversarial, new_pool, refresh
from coursekit.train import lipschitz_penalty


def _setup(n=60, seed=0):
    model = attackable_model(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=generator)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y, generator


def test_pool_examples_are_adversarial_when_made():
    model, x, y, generator = _setup()
    pool = new_pool(model, x, y, 20, generator, step=0)
    with torch.no_grad():
        wrong_now = model(pool.x).argmax(1) != pool.y
    assert torch.equal(pool.adversarial_when_made, wrong_now)
    assert pool.adversarial_when_made.float().mean() > 0.8
    assert (pool.x >= 0).all() and (pool.x <= 1).all()


def test_refresh_replaces_the_requested_fraction():
    model, x, y, generator = _setup()
    pool = new_pool(model, x, y, 20, generator, step=0)
    before = pool.x.clone()
    slots = refresh(pool, model, x, y, 0.25, generator, step=7)
    assert len(slots) == 5 and len(set(slots.tolist())) == 5
    changed = (pool.x != before).flatten(1).any(1)
    assert changed[slots].sum() >= 4  # a new example may coincide with the old one only by chance
    assert not changed[[i for i in range(20) if i not in set(slots.tolist())]].any()
    assert (pool.made_at[slots] == 7).all() and pool.log[-1][:2] == (7, 5)
    with torch.no_grad():
        wrong_now = model(pool.x[slots]).argmax(1) != pool.y[slots]
    assert torch.equal(pool.adversarial_when_made[slots], wrong_now)


def test_make_adversarial_never_targets_the_true_label():
    model, x, y, generator = _setup()
    x_adv, wrong = make_adversarial(model, x[:10], y[:10], generator)
    with torch.no_grad():
        assert torch.equal(wrong, model(x_adv).argmax(1) != y[:10])


def test_lipschitz_penalty_gradient_matches_a_finite_difference():
    torch.manual_seed(0)
    model = small_mlp(inputs=16, hidden=8, classes=3).double()
    value = lipschitz_penalty(model)
    singular = [torch.linalg.svdvals(m.weight.detach())[0] for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert value.item() == pytest.approx(sum(singular).item())
    value.backward()
    direction = [torch.randn_like(p) for p in model.parameters()]
    analytic = sum((p.grad * d).sum() for p, d in zip(model.parameters(), direction) if p.grad is not None).item()
    eps = 1e-6
    with torch.no_grad():
        for p, d in zip(model.parameters(), direction):
            p.add_(eps * d)
        plus = lipschitz_penalty(model).item()
        for p, d in zip(model.parameters(), direction):
            p.sub_(2 * eps * d)
        minus = lipschitz_penalty(model).item()
    assert (plus - minus) / (2 * eps) == pytest.approx(analytic, rel=1e-5)


@pytest.mark.slow
def test_pool_training_runs_caches_and_keeps_its_pool(tmp_cache, monkeypatch):
    from coursekit import adversarial_training as at
    from coursekit.train import TrainSettings

    monkeypatch.setattr(at, "settings_for", lambda name, profile: TrainSettings(epochs=2, batch_size=2000, lr=1e-2))
    model = adversarial_pool_training("FC100-100-10", pool_size=40, refresh_fraction=0.5, refresh_every=5,
                                      pool_batch=8, subset="P1", profile="quick", device="cpu")
    pool = model.pool
    assert len(pool) == 40 and len(pool.log) >= 2
    assert all(count == 20 for _, count, _ in pool.log[1:])  # each refresh replaced half the pool
    again = adversarial_pool_training("FC100-100-10", pool_size=40, refresh_fraction=0.5, refresh_every=5,
                                      pool_batch=8, subset="P1", profile="quick", device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match="refresh_fraction"):
        adversarial_pool_training(refresh_fraction=0.0)
