import pytest
import torch

from conftest import attackable_model, small_mlp
from coursekit.adversarial_training import (
    adversarial_pool_training,
    make_adversarial,
    new_pool,
    refresh,
    split_at_hidden_layer,
)
from coursekit.models import build
from coursekit.train import lipschitz_penalty


def _setup(n=60, seed=0, model=None, image_shape=(1, 4, 4)):
    """A model, n random images, the model's own labels for them, and a seeded generator."""
    model = attackable_model(seed) if model is None else model
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *image_shape, generator=generator)
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


def test_make_adversarial_never_targets_the_true_label(monkeypatch):
    """The targets handed to the attack themselves: never the true label, and every wrong one used."""
    from coursekit import adversarial_training as at

    targets = []
    real_attack = at.lbfgs_attack

    def recording_attack(model, x, target, **options):
        targets.append(target.clone())
        return real_attack(model, x, target, **options)

    monkeypatch.setattr(at, "lbfgs_attack", recording_attack)
    model, x, y, generator = _setup(n=200)
    x_adv, wrong = make_adversarial(model, x, y, generator, {"search_steps": 1, "max_iter": 2})
    (target,) = targets
    assert target.shape == y.shape and (target != y).all()
    assert set(((target - y) % 10).tolist()) == set(range(1, 10))  # each wrong label is drawn
    with torch.no_grad():
        assert torch.equal(wrong, model(x_adv).argmax(1) != y)


def test_pool_training_refuses_the_test_set():
    with pytest.raises(ValueError, match="subset must be one of .*got 'test'"):
        adversarial_pool_training(subset="test")


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
    model = adversarial_pool_training(
        "FC100-100-10",
        pool_size=40,
        refresh_fraction=0.5,
        refresh_every=5,
        pool_batch=8,
        subset="P1",
        profile="quick",
        device="cpu",
    )
    pool = model.pool
    assert len(pool) == 40 and len(pool.log) >= 2
    assert all(count == 20 for _, count, _ in pool.log[1:])  # each refresh replaced half the pool
    again = adversarial_pool_training(
        "FC100-100-10",
        pool_size=40,
        refresh_fraction=0.5,
        refresh_every=5,
        pool_batch=8,
        subset="P1",
        profile="quick",
        device="cpu",
    )
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match="refresh_fraction"):
        adversarial_pool_training(refresh_fraction=0.0)


def _hidden_setup(n=60, seed=0):
    """An FC100-100-10 whose layers above each hidden layer can reach every label, and images."""
    torch.manual_seed(seed)
    model = build("FC100-100-10").eval()
    with torch.no_grad():
        for linear in (model.body[3], model.head[0]):
            linear.weight.mul_(30)  # random init is nearly constant over the box; widen it
    return _setup(n, seed, model, (1, 28, 28))


def test_split_at_hidden_layer_composes_to_the_model():
    model, x, _, _ = _hidden_setup(n=5)
    with torch.no_grad():
        for layer, units in ((0, None), (1, 100), (2, 100)):
            lower, upper = split_at_hidden_layer(model, layer)
            h = lower(x)
            assert torch.allclose(upper(h), model(x), atol=1e-6)
            if units:
                assert h.shape == (5, units) and (h >= 0).all() and (h <= 1).all()
    for bad in (3, -1, 1.5):
        with pytest.raises(ValueError, match="layer must be one of 0..2"):
            split_at_hidden_layer(model, bad)
    with pytest.raises(ValueError, match="no sigmoid hidden layers"):
        split_at_hidden_layer(build("CNN"), 1)


@pytest.mark.parametrize("layer", [1, 2])
def test_hidden_layer_pool_is_adversarial_for_the_layers_above(layer):
    model, x, y, generator = _hidden_setup()
    pool = new_pool(model, x, y, 20, generator, step=0, layer=layer)
    lower, upper = split_at_hidden_layer(model, layer)
    assert pool.layer == layer and pool.x.shape == (20, 100)
    assert (pool.x >= 0).all() and (pool.x <= 1).all()
    with torch.no_grad():
        wrong_now = upper(pool.x).argmax(1) != pool.y
    assert torch.equal(pool.adversarial_when_made, wrong_now)
    assert pool.adversarial_when_made.float().mean() > 0.8
    slots = refresh(pool, model, x, y, 0.5, generator, step=3)
    with torch.no_grad():
        assert torch.equal(pool.adversarial_when_made[slots], upper(pool.x[slots]).argmax(1) != pool.y[slots])


def test_hidden_layer_examples_train_only_the_layers_above():
    from coursekit.train import _objective

    model, x, y, _ = _hidden_setup(n=8)
    _, upper = split_at_hidden_layer(model, 2)
    h = torch.rand(4, 100)
    model.zero_grad()
    _objective(model, x[:0], y[:0], 0.0, 0.0, (h, y[:4], upper)).backward()
    first = model.body[1].weight.grad
    assert first is None or not first.any()
    assert model.head[0].weight.grad.abs().sum() > 0
    # mixed with images, the loss is the mean over both, as for a concatenated minibatch
    with torch.no_grad():
        mixed = _objective(model, x, y, 0.0, 0.0, (h, y[:4], upper))
        expected = (
            torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
            + torch.nn.functional.cross_entropy(upper(h), y[:4], reduction="sum")
        ) / 12
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.slow
def test_hidden_layer_pool_training_runs(tmp_cache, monkeypatch):
    from coursekit import adversarial_training as at
    from coursekit.train import TrainSettings

    monkeypatch.setattr(at, "settings_for", lambda name, profile: TrainSettings(epochs=2, batch_size=2000, lr=1e-2))
    model = adversarial_pool_training(
        "FC100-100-10",
        pool_size=40,
        refresh_fraction=0.5,
        refresh_every=5,
        pool_batch=8,
        layer=2,
        subset="P1",
        profile="quick",
        device="cpu",
    )
    assert model.pool.layer == 2 and model.pool.x.shape == (40, 100) and len(model.pool.log) >= 2
    again = adversarial_pool_training(
        "FC100-100-10",
        pool_size=40,
        refresh_fraction=0.5,
        refresh_every=5,
        pool_batch=8,
        layer=2,
        subset="P1",
        profile="quick",
        device="cpu",
    )
    assert again.pool.layer == 2
    with pytest.raises(ValueError, match="layer must be one of"):
        adversarial_pool_training("CNN", layer=1)


@pytest.mark.slow
def test_pools_at_every_layer_train_together(tmp_cache, monkeypatch):
    from coursekit import adversarial_training as at
    from coursekit.train import TrainSettings

    monkeypatch.setattr(at, "settings_for", lambda name, profile: TrainSettings(epochs=2, batch_size=2000, lr=1e-2))
    options = dict(
        pool_size=40,
        refresh_fraction=0.5,
        refresh_every=5,
        pool_batch=8,
        layer="all",
        subset="P1",
        profile="quick",
        device="cpu",
    )
    model = adversarial_pool_training("FC100-100-10", **options)
    assert sorted(model.pools) == [0, 1, 2]
    assert model.pools[0].x.shape == (40, 1, 28, 28) and model.pools[2].x.shape == (40, 100)
    for k, pool in model.pools.items():
        assert pool.layer == k and len(pool.log) >= 2  # made, then refreshed as training went on
        assert pool.made_at.max() > pool.made_at.min()
    again = adversarial_pool_training("FC100-100-10", **options)  # from the cache
    assert sorted(again.pools) == [0, 1, 2]
    assert torch.equal(again.pools[1].x, model.pools[1].x)
    for bad in ((1, 1), (), (0, 3)):
        with pytest.raises(ValueError, match="layer"):
            adversarial_pool_training("FC100-100-10", layer=bad)


def test_several_upper_batches_enter_the_loss_like_one_minibatch():
    from coursekit.models import build
    from coursekit.train import _objective

    torch.manual_seed(0)
    model = build("FC100-100-10").eval()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    lower1, upper1 = split_at_hidden_layer(model, 1)
    lower2, upper2 = split_at_hidden_layer(model, 2)
    with torch.no_grad():
        h1, h2 = lower1(x[:2]), lower2(x[2:])
        both = _objective(model, x[:1], y[:1], 0.0, 0.0, [(h1, y[:2], upper1), (h2, y[2:], upper2)])
        plain = _objective(model, torch.cat([x[:1], x]), torch.cat([y[:1], y]), 0.0, 0.0)
    assert both.item() == pytest.approx(plain.item(), rel=1e-6)


def _plain_pool_training(model, x, y, *, epochs, batch, pool_size, refresh_every, fraction, mix, lr, seed):
    """Input-pool training written out (chapter 6's plain loop), independent of the package's
    loop: Adam, cosine schedule, the paper's decay; from the 2nd epoch a pool made, refreshed
    every ``refresh_every`` steps, and ``mix`` pool examples appended to every minibatch."""
    import math

    import torch.nn.functional as F

    from coursekit.models import weight_decay

    order, draw = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    per_epoch = math.ceil(len(x) / batch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 + math.cos(math.pi * s / (epochs * per_epoch))) / 2)
    pool_x, pool_y = torch.zeros(pool_size, *x.shape[1:]), torch.zeros(pool_size, dtype=torch.long)
    sizes = []
    for epoch in range(epochs):
        for i, index in enumerate(torch.randperm(len(x), generator=order).split(batch)):
            xb, yb, since = x[index], y[index], (epoch - 1) * per_epoch + i
            if epoch > 0 and since % refresh_every == 0:
                n = pool_size if since == 0 else round(fraction * pool_size)
                slots = torch.randperm(pool_size, generator=draw)[:n]
                pick = torch.randperm(len(x), generator=draw)[:n]
                x_adv = make_adversarial(model, x[pick], y[pick], draw)[0]
                pool_x[slots], pool_y[slots] = x_adv, y[pick]
            if epoch > 0:
                mixed = torch.randint(0, pool_size, (mix,), generator=draw)
                xb, yb = torch.cat([xb, pool_x[mixed]]), torch.cat([yb, pool_y[mixed]])
            sizes.append(len(yb))
            loss = F.cross_entropy(model(xb), yb) + weight_decay(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    return pool_x, pool_y, sizes


def test_train_with_pools_is_the_plain_loop(mnist_test):
    import copy

    from coursekit.adversarial_training import PoolSettings, one_cpu_thread, train_with_pools
    from coursekit.train import TrainSettings

    x, y = mnist_test[0][:300], mnist_test[1][:300]
    torch.manual_seed(0)
    plain = build("FC100-100-10")
    package = copy.deepcopy(plain)
    options = dict(epochs=3, batch=50, pool_size=30, refresh_every=4, fraction=0.2, mix=10, lr=1e-2, seed=3)
    with one_cpu_thread():
        pool_x, pool_y, sizes = _plain_pool_training(plain, x, y, **options)
        pools = train_with_pools(
            package,
            x,
            y,
            TrainSettings(epochs=3, batch_size=50, lr=1e-2),
            PoolSettings(pool_size=30, refresh_fraction=0.2, refresh_every=4, pool_batch=10),
            seed=3,
        )
    assert sizes == [50] * 6 + [60] * 12  # the mixing ratio: 10 pool examples from the 2nd epoch on
    for a, b in zip(plain.state_dict().values(), package.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(pools[0].x, pool_x) and torch.equal(pools[0].y, pool_y)
    assert [entry[:2] for entry in pools[0].log] == [(6, 30), (10, 6), (14, 6)]


def test_train_with_pools_refuses_settings_without_a_pool():
    from coursekit.adversarial_training import PoolSettings, train_with_pools
    from coursekit.train import TrainSettings

    model, x = build("FC100-100-10"), torch.rand(8, 1, 28, 28)
    for settings in (TrainSettings(epochs=1), TrainSettings(optimizer="lbfgs", epochs=3)):
        with pytest.raises(ValueError, match="Adam for at least 2 epochs"):
            train_with_pools(model, x, torch.zeros(8, dtype=torch.long), settings, PoolSettings())
    with pytest.raises(ValueError, match="pool_batch"):
        train_with_pools(
            model, x, torch.zeros(8, dtype=torch.long), TrainSettings(epochs=2), PoolSettings(pool_batch=0)
        )


def test_refresh_pool_puts_attacked_images_with_true_labels_at_the_slots():
    from coursekit.adversarial_training import refresh_pool

    pool_x, pool_y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 2, 3, 4, 5])
    before_x, before_y = pool_x.clone(), pool_y.clone()
    images, labels = torch.rand(2, 1, 2, 2), torch.tensor([7, 9])
    new_x, new_y = refresh_pool(pool_x, pool_y, torch.tensor([4, 1]), images, labels, lambda xs, ys: 1 - xs)
    assert torch.equal(new_y, torch.tensor([0, 9, 2, 3, 7, 5]))
    assert torch.equal(new_x[4], 1 - images[0]) and torch.equal(new_x[1], 1 - images[1])
    assert torch.equal(new_x[[0, 2, 3, 5]], before_x[[0, 2, 3, 5]])
    assert torch.equal(pool_x, before_x) and torch.equal(pool_y, before_y)  # copies
    with pytest.raises(ValueError, match="same length"):
        refresh_pool(pool_x, pool_y, torch.tensor([0]), images, labels, lambda xs, ys: xs)


def test_one_cpu_thread_pins_and_restores():
    from coursekit.adversarial_training import one_cpu_thread

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with one_cpu_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_cpu_thread():
            raise RuntimeError("a failing block")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_paired_change_is_the_paired_t_test():
    from scipy.stats import t as student_t

    from coursekit.adversarial_training import paired_change

    baseline = [0.0210, 0.0200, 0.0220, 0.0205]
    pooled = [0.0150, 0.0160, 0.0170, 0.0150]
    result = paired_change(baseline, pooled, paper_change=-0.4)
    d = [100 * (b - a) for a, b in zip(baseline, pooled)]  # -0.6, -0.4, -0.5, -0.55
    mean = sum(d) / 4
    sd = (sum((v - mean) ** 2 for v in d) / 3) ** 0.5
    t = mean / (sd / 2)
    assert result["mean"] == pytest.approx(mean) and result["sd"] == pytest.approx(sd)
    assert result["t"] == pytest.approx(t)
    assert result["p"] == pytest.approx(2 * student_t.sf(abs(t), 3))
    assert result["lower"] == 4 and result["chance"] == 1 / 16 and result["verdict"] == "reproduced"


@pytest.mark.parametrize(
    "pooled, verdict",
    [
        ([0.0190, 0.0180, 0.0200], "smaller than the paper's"),  # -0.2 points each, but for noise
        ([0.0250, 0.0260, 0.0270], "contradicted"),
        ([0.0150, 0.0230, 0.0190], "not shown"),  # changes -0.6, +0.3, -0.3: within the spread
        ([0.0210, 0.0200, 0.0220], "not shown"),  # no change at all: p is NaN
    ],
)
def test_paired_change_verdicts(pooled, verdict):
    from coursekit.adversarial_training import paired_change

    baseline = [0.0210, 0.0200, 0.0220]
    noisy = [p + e for p, e in zip(pooled, (0.0, 0.0001, -0.0001))] if verdict != "not shown" else pooled
    assert paired_change(baseline, noisy, paper_change=-0.4)["verdict"] == verdict


def test_paired_change_refuses_one_seed():
    from coursekit.adversarial_training import paired_change

    with pytest.raises(ValueError, match="same length ≥ 2"):
        paired_change([0.02], [0.01], -0.4)
    with pytest.raises(ValueError, match="alpha"):
        paired_change([0.02, 0.03], [0.01, 0.02], -0.4, alpha=1.5)


def test_pools_by_seed_pairs_the_two_trainings_of_each_seed(monkeypatch):
    from coursekit import adversarial_training as at

    calls = []

    def fake_train(name, seed=0, profile=None):
        calls.append(("plain", name, seed, profile))
        return ("plain", seed)

    def fake_pools(name, layer=0, seed=0, profile=None):
        calls.append(("pools", name, seed, profile, layer))
        return ("pools", seed)

    def fake_evaluate(model, x, y):
        kind, seed = model
        return 0.02 + 0.001 * seed + (0.003 if kind == "pools" else 0.0)

    monkeypatch.setattr(at, "train", fake_train)
    monkeypatch.setattr(at, "adversarial_pool_training", fake_pools)
    monkeypatch.setattr(at, "evaluate", fake_evaluate)
    monkeypatch.setattr(at, "load_mnist", lambda subset: (None, None))
    table = at.pools_by_seed((0, 2), profile="quick")
    assert list(table.index) == ["seed 0", "seed 2"]
    assert table.loc["seed 2", "weight decay"] == pytest.approx(0.022)
    assert table["change (points)"].tolist() == pytest.approx([0.3, 0.3])
    assert ("pools", "FC100-100-10", 2, "quick", "all") in calls and ("plain", "FC100-100-10", 0, "quick") in calls


@pytest.mark.parametrize("seeds", [(0,), (1, 1), (0, -1), (0, 1.5)])
def test_pools_by_seed_names_bad_seeds(seeds):
    from coursekit.adversarial_training import pools_by_seed

    with pytest.raises(ValueError, match="seeds must be"):
        pools_by_seed(seeds)
