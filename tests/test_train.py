import pytest
import torch

from coursekit import train as train_module
from coursekit.train import TrainSettings, evaluate, predict, settings_for, train

TINY = TrainSettings(epochs=1, batch_size=256, lr=1e-2)


def test_second_call_loads_from_the_cache(tmp_cache, monkeypatch):
    first = train("FC100-100-10", settings=TINY, device="cpu")
    monkeypatch.setattr(train_module, "fit", lambda *a, **k: pytest.fail("trained again instead of loading"))
    second = train("FC100-100-10", settings=TINY, device="cpu")
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert not second.training


def test_cache_key_separates_settings(tmp_cache):
    train("FC100-100-10", settings=TINY, device="cpu")
    files = list((tmp_cache / "models").glob("*.pt"))
    train("FC100-100-10", settings=TrainSettings(epochs=1, batch_size=512, lr=1e-2), device="cpu")
    assert len(list((tmp_cache / "models").glob("*.pt"))) == len(files) + 1


def test_truncated_cache_file_is_rebuilt_with_a_warning(tmp_cache):
    model = train("FC100-100-10", settings=TINY, device="cpu")
    (path,) = (tmp_cache / "models").glob("*.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.warns(UserWarning, match="rebuilding"):
        again = train("FC100-100-10", settings=TINY, device="cpu")
    assert path.exists() and all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values())
    )


def test_no_temporary_files_left_behind(tmp_cache):
    train("FC100-100-10", settings=TINY, device="cpu")
    assert not list((tmp_cache / "models").glob("*.tmp"))


def test_seeded_training_is_reproducible_on_cpu(tmp_cache):
    a = train("FC100-100-10", settings=TINY, device="cpu", use_cache=False, seed=3)
    b = train("FC100-100-10", settings=TINY, device="cpu", use_cache=False, seed=3)
    c = train("FC100-100-10", settings=TINY, device="cpu", use_cache=False, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_training_learns(tmp_cache, mnist_test):
    x, y = mnist_test
    model = train("FC100-100-10", settings=TINY, device="cpu")
    assert evaluate(model, x, y) < 0.08  # one epoch of Adam is far better than chance (0.9)


def test_evaluate_against_a_hand_count():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(x.flatten(1)[:, 0].long(), 10).float()

    x = torch.tensor([0, 1, 2, 3]).float().view(4, 1, 1, 1)
    y = torch.tensor([0, 1, 5, 5])
    assert evaluate(Fixed(), x, y) == 0.5
    assert predict(Fixed(), x).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="same length"):
        evaluate(Fixed(), x, y[:3])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="subset"):
        train("FC100-100-10", subset="test")
    with pytest.raises(ValueError, match="seed"):
        train("FC100-100-10", seed=1.5)
    with pytest.raises(ValueError, match="unknown model name"):
        train("FC999")
    with pytest.raises(ValueError, match="optimizer"):
        settings_for("FC100-100-10", "quick", optimizer="sgd")
    with pytest.raises(ValueError, match="profile"):
        settings_for("FC100-100-10", "medium")


def test_profiles_use_lbfgs_for_the_convex_models():
    for profile in ("quick", "gpu", "paper", "full"):
        assert settings_for("FC10(1)", profile).optimizer == "lbfgs"
        assert settings_for("FC100-100-10", profile).optimizer == "adam"
    assert settings_for("FC100-100-10", "paper").epochs > settings_for("FC100-100-10", "quick").epochs


def test_power_estimate_of_a_linear_norm_tracks_the_svd():
    import torch
    from torch import nn

    from coursekit.train import linear_norm_estimate, lipschitz_penalty

    torch.manual_seed(0)
    layer = nn.Linear(50, 30)
    exact = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    for _ in range(200):  # warm starts: each call continues the iteration
        estimate = linear_norm_estimate(layer)
    assert estimate.item() <= exact.item() * (1 + 1e-6)
    assert estimate.item() == pytest.approx(exact.item(), rel=1e-4)
    estimate.backward()  # the gradient of σ_max is u vᵀ
    u, s, vh = torch.linalg.svd(layer.weight.detach())
    assert torch.allclose(layer.weight.grad, torch.outer(u[:, 0], vh[0]), atol=1e-3)  # sign-free
    model = nn.Sequential(nn.Linear(20, 10), nn.Sigmoid(), nn.Linear(10, 5))
    for _ in range(200):
        power = lipschitz_penalty(model, method="power")
    assert power.item() == pytest.approx(lipschitz_penalty(model, method="exact").item(), rel=1e-4)
    with pytest.raises(ValueError, match="method"):
        lipschitz_penalty(model, method="svd")
    with pytest.raises(ValueError, match="steps"):
        linear_norm_estimate(layer, steps=0)


def test_fresh_start_is_seeded_and_on_the_device():
    from coursekit.train import fresh_start

    first = fresh_start("FC10(1e-4)", "P1", 3, "cpu")
    again = fresh_start("FC10(1e-4)", "P1", 3, "cpu")
    other = fresh_start("FC10(1e-4)", "P1", 4, "cpu")
    weights = [dict(run[0].state_dict()) for run in (first, again, other)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    model, x, y, generator = first
    assert len(x) == len(y) > 0 and x.device.type == "cpu"
    assert torch.equal(
        torch.randint(0, 1000, (5,), generator=generator),
        torch.randint(0, 1000, (5,), generator=torch.Generator().manual_seed(4)),
    )


def _logistic_problem(n: int = 64, d: int = 5, seed: int = 0):
    """A small softmax regression (2 classes) with its loss function, and the model."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator)
    y = (x[:, 0] + 0.5 * torch.randn(n, generator=generator) > 0).long()
    torch.manual_seed(seed)
    model = torch.nn.Linear(d, 2)
    return model, lambda: torch.nn.functional.cross_entropy(model(x), y) + 0.1 * model.weight.pow(2).sum()


def test_lbfgs_history_records_the_losses_it_reached():
    from coursekit.train import fit_lbfgs, last_fall

    model, loss_fn = _logistic_problem()
    with torch.no_grad():
        start = loss_fn().item()
    history = fit_lbfgs(model, loss_fn, iterations=400)
    with torch.no_grad():
        end = loss_fn().item()
    assert history["optimizer"] == "lbfgs" and history["cap"] == 400
    assert history["steps"][0] == 0 and history["loss"][0] == pytest.approx(start, rel=1e-6)
    assert history["loss"][-1] == pytest.approx(end, rel=1e-6)  # where training left the model
    assert all(b > a for a, b in zip(history["steps"], history["steps"][1:-1]))
    assert all(b <= a + 1e-7 for a, b in zip(history["loss"], history["loss"][1:]))  # monotone
    # a small strongly convex problem converges well before 400 iterations and says so
    assert history["converged"] and history["steps"][-1] < 400
    assert abs(last_fall(history)) < 1e-8


def test_lbfgs_history_at_the_cap_counts_the_iterations():
    from coursekit.train import fit_lbfgs, last_fall

    model, loss_fn = _logistic_problem(n=256, d=40, seed=1)
    history = fit_lbfgs(model, loss_fn, iterations=20)  # one block: stopped by the cap
    assert not history["converged"]
    assert len(history["loss"]) == 2 and 0 < history["steps"][-1] <= 20
    a, b = history["loss"]
    assert last_fall(history) == pytest.approx((a - b) / a) and a > b


def test_adam_history_is_the_mean_objective_of_each_epoch():
    from coursekit.models import build
    from coursekit.train import _objective, fit_adam

    torch.manual_seed(0)
    model = build("FC10(1e-2)")
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(96, 1, 28, 28, generator=generator), torch.randint(0, 10, (96,), generator=generator)
    with torch.no_grad():
        expected = _objective(model, x, y, 0.0, 1.0).item()
    # lr = 0: the weights stay put, so each epoch's mean over equal minibatches is the full objective
    settings = TrainSettings(epochs=3, batch_size=32, lr=0.0)
    history = fit_adam(model, x, y, settings, generator=generator)
    assert history["steps"] == [1, 2, 3] and history["cap"] == 3 and not history["converged"]
    assert history["loss"] == pytest.approx([expected] * 3, rel=1e-5)


def test_train_keeps_the_history_in_the_cache_and_old_files_stay_valid(tmp_cache, monkeypatch):
    from coursekit.cache import load_cached, save_record
    from coursekit.train import loss_history

    model = train("FC100-100-10", settings=TINY, device="cpu")
    history = loss_history(model)
    assert history["unit"] == "epoch" and len(history["loss"]) == TINY.epochs
    monkeypatch.setattr(train_module, "fit", lambda *a, **k: pytest.fail("trained again"))
    assert loss_history(train("FC100-100-10", settings=TINY, device="cpu")) == history
    # a file written before histories were recorded still loads (no retraining), without one
    (path,) = (tmp_cache / "models").glob("*.pt")
    record = load_cached(path, {"info": {"key": dict}})
    del record["info"]["history"]
    save_record(record, path)
    assert loss_history(train("FC100-100-10", settings=TINY, device="cpu")) is None


def test_the_quick_zoo_keeps_its_cache_keys():
    """The history is not part of the key: everything in the quick zoo's keys but the code
    version is as it was before the history was recorded (these digests were the files' names
    then, with the hand-kept code version 1). The code version is now the hash of the training
    code and everything it imports (issue 31 item 1), so a changed statement there renames
    every file, as it should."""
    from coursekit.cache import key_digest
    from coursekit.records import modules_version
    from coursekit.train import TRAIN_CODE_VERSION, cache_key

    expected = {
        "FC10(1e-4)": "e6e9a634798f3edc",
        "FC10(1)": "f30892dad0fb6625",
        "FC100-100-10": "71ae840ffc8d7a0c",
        "CNN": "77d680b2eff37ea4",
        "AE400-10": "3c99932dfcad8e9d",
    }
    for name, digest in expected.items():
        key = cache_key(name, "train", 0, settings_for(name, "quick"), dropout=0.0, lipschitz=0.0, decay_multiplier=1.0)
        assert key["code"] == TRAIN_CODE_VERSION == modules_version("train")
        assert key_digest({**key, "code": 1}) == digest, name


def test_last_fall_refuses_what_it_cannot_measure():
    from coursekit.train import last_fall

    with pytest.raises(ValueError, match="two losses"):
        last_fall({"loss": [1.0]})
    with pytest.raises(ValueError, match="before the last block is 0"):
        last_fall({"loss": [1.0, 0.0, 0.5]})
    assert last_fall({"loss": [2.0, 1.5, 1.0]}) == pytest.approx(1 / 3)
    assert last_fall({"loss": [2.0, 1.0, 1.5]}) == pytest.approx(-0.5)


@pytest.mark.parametrize("name", ["FC10(1)", "AE400-10"])
def test_train_further_continues_from_where_train_stopped(tmp_cache, name):
    import torch.nn.functional as F

    from coursekit.data import load_subset
    from coursekit.train import train_further

    settings = TrainSettings(optimizer="lbfgs", lbfgs_iterations=20, ae_epochs=1, batch_size=256)
    model = train(name, settings=settings, device="cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = load_subset("train")

    def objective(m):  # what train minimised, computed here from the definitions
        with torch.no_grad():
            if name == "AE400-10":
                w = m.head[0].weight
                return (F.cross_entropy(m(x), y) + 1e-6 * w.pow(2).sum() / 10).item()
            return (F.cross_entropy(m(x), y) + 1.0 * m.head[0].weight.pow(2).sum() / 10).item()

    further, history = train_further(model, 20)
    assert history["loss"][0] == pytest.approx(objective(model), rel=1e-5)
    assert history["loss"][-1] == pytest.approx(objective(further), rel=1e-5)
    assert history["loss"][-1] < history["loss"][0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    if name == "AE400-10":  # only the softmax moves
        assert torch.equal(further.body[1].weight, model.body[1].weight)


def test_train_further_refuses_models_it_cannot_continue(tmp_cache):
    from coursekit.train import train_further

    with pytest.raises(ValueError, match="L-BFGS-trained"):
        train_further(train("FC100-100-10", settings=TINY, device="cpu"), 10)
    with pytest.raises(ValueError, match="iterations"):
        train_further(train("FC10(1)", settings=TrainSettings(optimizer="lbfgs", lbfgs_iterations=20), device="cpu"), 0)
