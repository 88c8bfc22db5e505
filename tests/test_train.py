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
    assert path.exists() and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


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
    assert torch.equal(torch.randint(0, 1000, (5,), generator=generator),
                       torch.randint(0, 1000, (5,), generator=torch.Generator().manual_seed(4)))
