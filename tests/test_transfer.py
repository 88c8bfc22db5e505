import pytest
import torch

from conftest import attackable_model
from coursekit.train import evaluate
from coursekit.transfer import amplify, epsilon_curves, gaussian_noise, transfer_table


def _models():
    return {"A": attackable_model(1), "B": attackable_model(2)}


def _data(n=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=generator) * 0.8 + 0.1
    return x


def test_diagonal_is_total_by_construction_and_reproducible(tmp_cache):
    models = _models()
    x = _data()
    with torch.no_grad():
        y = models["A"](x).argmax(1)  # correctly classified by A
    opts = {"search_steps": 4, "max_iter": 40, "progress_bar": False}
    table = transfer_table(models, models, x, y, noise_stddevs=(0.0, 0.1), **opts).errors
    assert table.loc["A", "A"] == 1.0 and table.loc["B", "B"] == 1.0
    again = transfer_table(models, models, x, y, noise_stddevs=(0.0, 0.1), cache=False, **opts).errors
    assert table.equals(again)
    # Gaussian noise of stddev 0 is the clean error
    assert table.loc["Gaussian noise, stddev=0", "A"] == pytest.approx(evaluate(models["A"], x, y))
    assert table.loc["Gaussian noise, stddev=0", "B"] == pytest.approx(evaluate(models["B"], x, y))
    assert "Gaussian noise matched to A" in table.index and "Av. distortion" in table.columns


def test_validation_of_models_and_inputs():
    x = _data()
    y = torch.zeros(len(x), dtype=torch.long)
    with pytest.raises(ValueError, match="unknown model names"):
        transfer_table(["FC10(1e-4)", "FC11"], ["FC10(1e-4)"], x, y)
    with pytest.raises(ValueError, match="y"):
        transfer_table(_models(), _models(), x, y[:3])
    with pytest.raises(ValueError, match="x"):
        transfer_table(_models(), _models(), x + 2, y)
    with pytest.raises(ValueError, match="reading"):
        amplify(x, x, 0.1, reading="double")


def test_literal_amplification_gives_stddev_over_sqrt_n():
    x = torch.full((3, 1, 28, 28), 0.5)
    x_adv = x + 0.05 * torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    out = amplify(x, x_adv.clamp(0, 1), 0.1, reading="literal")
    rms = (out - x).flatten(1).pow(2).mean(1).sqrt()
    assert torch.allclose(rms, torch.full((3,), 0.1 / 28), rtol=1e-4)  # about 0.0036


def test_rms_amplification_gives_stddev_even_with_clipping():
    generator = torch.Generator().manual_seed(1)
    x = (torch.rand(4, 1, 28, 28, generator=generator) > 0.7).float()  # MNIST-like: many pixels at 0 or 1
    x_adv = (x + 0.06 * torch.randn(4, 1, 28, 28, generator=generator)).clamp(0, 1)
    out = amplify(x, x_adv, 0.1, reading="rms")
    rms = (out - x).flatten(1).pow(2).mean(1).sqrt()
    assert torch.allclose(rms, torch.full((4,), 0.1), rtol=1e-4)
    assert (out >= 0).all() and (out <= 1).all()
    direction = (out - x).flatten(1)
    original = (x_adv - x).flatten(1)
    cos = torch.nn.functional.cosine_similarity(direction, original)
    assert (cos > 0.9).all()  # still the adversarial direction


def _mnist_like(n=6, seed=0):
    """Images with about 80% of pixels at 0 and the rest in (0, 1], like MNIST digits."""
    generator = torch.Generator().manual_seed(seed)
    ink = torch.rand(n, 1, 28, 28, generator=generator) < 0.2
    return torch.where(ink, torch.rand(n, 1, 28, 28, generator=generator), torch.zeros(()))


def test_gaussian_noise_realised_rms_is_the_requested_one():
    x = _mnist_like()
    for rms in (0.01, 0.1, 0.3):
        noisy = gaussian_noise(x, rms, seed=0)
        realised = (noisy - x).flatten(1).pow(2).mean(1).sqrt()
        assert torch.allclose(realised, torch.full((6,), rms), rtol=1e-5)
        assert noisy.min() >= 0 and noisy.max() <= 1
    # the plain clipped noise of stddev rms is much smaller: the point of solving for sigma
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    plain = ((x + 0.1 * z).clamp(0, 1) - x).flatten(1).pow(2).mean(1).sqrt()
    assert (plain < 0.08).all()
    per_image = gaussian_noise(x, torch.tensor([0.0, 0.05, 0.1, 0.2, 0.3, 0.4]))
    realised = (per_image - x).flatten(1).pow(2).mean(1).sqrt()
    assert torch.equal(per_image[0], x[0])
    assert torch.allclose(realised, torch.tensor([0.0, 0.05, 0.1, 0.2, 0.3, 0.4]), atol=1e-6)


def test_gaussian_noise_is_reproducible_and_gaussian_inside_the_box():
    x = torch.full((2000, 1, 4, 4), 0.5)
    noisy = gaussian_noise(x, 0.1, seed=0)
    assert torch.equal(noisy, gaussian_noise(x, 0.1, seed=0))
    assert not torch.equal(noisy, gaussian_noise(x, 0.1, seed=1))
    # at 0.5 clipping almost never happens: plain N(0, 0.1^2) noise
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), torch.tensor([0.1, float("inf")])])
def test_gaussian_noise_rejects_bad_rms(bad):
    x = _mnist_like(2)
    with pytest.raises(ValueError, match="rms"):
        gaussian_noise(x, bad)


def test_gaussian_noise_refuses_an_rms_clipping_cannot_reach():
    x = torch.zeros(1, 1, 4, 4)  # clipped noise reaches at most sqrt(share of z > 0)
    with pytest.raises(ValueError, match="more than clipped noise can reach"):
        gaussian_noise(x, 0.9)
    with pytest.raises(ValueError, match="rms"):
        gaussian_noise(x, torch.tensor([0.1, 0.1]))


def test_matched_noise_leaves_out_failed_attacks(tmp_cache, monkeypatch):
    import coursekit.transfer as transfer

    models = _models()
    x = _data(6)
    with torch.no_grad():
        y = models["A"](x).argmax(1)
    real = transfer.adversarial_examples

    def half_failed(model, x, y, **options):
        result = real(model, x, y, **options)
        result.distortion[:2] = float("inf")
        result.success[:2] = False
        result.x_adv[:2] = x[:2]
        return result

    monkeypatch.setattr(transfer, "adversarial_examples", half_failed)
    table = transfer_table(
        {"A": models["A"]}, models, x, y, noise_stddevs=(), cache=False, search_steps=4, max_iter=40, progress_bar=False
    ).errors
    row = table.loc["Gaussian noise matched to A"]
    assert row["images"] == 4 and table.loc["A", "images"] == 6
    assert torch.isfinite(torch.tensor(row["Av. distortion"]))
    expected = (
        real(models["A"], x, y, cache=False, search_steps=4, max_iter=40, progress_bar=False)
        .distortion[2:]
        .mean()
        .item()
    )
    assert row["Av. distortion"] == pytest.approx(expected, rel=1e-5)


def test_epsilon_curves_shape_and_monotone_adversarial_effect(tmp_cache):
    models = _models()
    x = _data(20)
    with torch.no_grad():
        y = models["A"](x).argmax(1)
    table = transfer_table(
        {"A": models["A"]},
        models,
        x,
        y,
        noise_stddevs=(),
        matched_noise=False,
        search_steps=4,
        max_iter=40,
        progress_bar=False,
    )
    curves = epsilon_curves(table.adversarial["A"], x, y, models, [0.01, 0.05, 0.3])
    assert list(curves.index) == [0.01, 0.05, 0.3]
    assert table.adversarial["A"].distortion.max() < 0.3
    adversarial = curves[("adversarial direction", "A")]
    assert adversarial.iloc[-1] == 1.0  # far beyond every image's minimal distortion (all below 0.2)
    assert adversarial.iloc[-1] >= curves[("Gaussian noise", "A")].iloc[-1]


def test_every_target_examples_keeps_all_targets_and_its_minimum_is_the_min_attack(tmp_cache):
    from coursekit.attack import min_distortion_attack
    from coursekit.transfer import every_target_examples

    model = _models()["A"]
    x = _data(5)
    with torch.no_grad():
        y = model(x).argmax(1)
    opts = {"search_steps": 4, "max_iter": 40}
    every = every_target_examples(model, x, y, **opts)
    assert len(every) == 45
    assert (every.target.view(5, 9) != y[:, None]).all()  # y itself is never a target
    best = min_distortion_attack(model, x, y, progress_bar=False, **opts)
    assert torch.allclose(every.distortion.view(5, 9).min(1).values, best.distortion, rtol=1e-4)
    again = every_target_examples(model, x, y, **opts)  # from the cache
    assert torch.equal(again.distortion, every.distortion)


def test_an_empty_batch_is_refused_by_name():
    models = _models()
    with pytest.raises(ValueError, match="x must hold at least one image"):
        transfer_table(models, models, _data()[:0], torch.zeros(0, dtype=torch.long))


def test_cross_training_table_rows_are_the_papers_and_measured(tmp_cache):
    from coursekit.transfer import adversarial_examples, cross_training_table

    models = _models()
    x = _data(n=6)
    with torch.no_grad():
        y = models["A"](x).argmax(1)
    attacks = {
        name: adversarial_examples(m, x, y, search_steps=3, max_iter=20, progress_bar=False)
        for name, m in models.items()
    }
    table = cross_training_table(models, attacks, x, y, noise_stddev=0.06)
    assert list(table.columns) == ["A", "B"] and len(table) == 8
    assert table.loc["Distorted for A", "A"] == 1.0  # every example fools its own model
    assert table.loc["Gaussian noise with stddev=0.06", "B"] == pytest.approx(
        evaluate(models["B"], gaussian_noise(x, 0.06, seed=0), y)
    )
    literal = amplify(x, attacks["B"].x_adv, 0.1, reading="literal")
    assert table.loc["Distorted for B amplified to stddev=0.1 (literal formula)", "A"] == pytest.approx(
        evaluate(models["A"], literal, y)
    )


def test_paper_method_is_the_penalty_search_without_the_polish(tmp_cache):
    """The transfer tables beside the paper's use PAPER_METHOD: the penalty + search over c with
    ``refine`` and no polish. On this softmax the polish shortens the examples, so the test fails
    if PAPER_METHOD (or transfer_table's handling of it) gains the polish."""
    from coursekit.attack import min_distortion_attack
    from coursekit.transfer import PAPER_METHOD, method_label

    model = _models()["A"]
    x = _data(8)
    with torch.no_grad():
        y = model(x).argmax(1)
    opts = {"search_steps": 4, "max_iter": 40, "progress_bar": False}
    table = transfer_table(
        {"A": model}, {"A": model}, x, y, noise_stddevs=(), matched_noise=False, **opts, **PAPER_METHOD
    )
    plain = min_distortion_attack(model, x, y, polish=0, refine=True, **opts)
    polished = min_distortion_attack(model, x, y, **opts)  # the defaults: with the polish
    assert torch.equal(table.adversarial["A"].x_adv, plain.x_adv)
    assert polished.distortion.mean() < 0.99 * plain.distortion.mean()  # the polish matters here
    assert table.method.startswith("the paper's") and table.method == method_label(PAPER_METHOD)
    assert method_label({}).startswith("ours") and "polish" in method_label({})
    assert method_label({"polish": 0, "refine": False}).endswith("no refine")
    assert "refine (a stand-in)" in method_label(PAPER_METHOD)  # issue 31 item 11: not the paper's point
    assert all(len(method_label(o)) < 70 for o in ({}, PAPER_METHOD, {"polish": 0, "refine": False}))
    with pytest.raises(ValueError, match="attack_options"):
        method_label([("polish", 0)])


def _attack_calls(path):
    """(line, function name, whether it passes **PAPER_METHOD) for every call of a function that
    makes adversarial examples in the code cells of the MyST chapter at ``path``."""
    import ast

    from test_chapter_style import code_cells

    makers = {"transfer_table", "adversarial_examples", "robustness_table", "min_distortion_attack", "lbfgs_attack"}
    found = []
    for cell in code_cells(path.read_text()):
        source = "\n".join(line for line in cell.splitlines() if not line.startswith(":"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in makers:
                    paper = any(k.arg is None and getattr(k.value, "id", "") == "PAPER_METHOD" for k in node.keywords)
                    found.append((node.lineno, name, paper))
    return found


def test_chapter_4_makes_every_example_with_the_papers_method():
    from pathlib import Path

    chapter = Path(__file__).resolve().parents[1] / "book" / "04_transfer.md"
    calls = _attack_calls(chapter)
    assert len(calls) >= 4  # the loop, Table 2, the size test, Table 3 (and the exercise)
    assert [c for c in calls if not c[2]] == []


def test_fooled_pairs_are_the_tables_cells_image_by_image(tmp_cache, monkeypatch):
    import numpy as np

    import coursekit.transfer as transfer
    from coursekit.transfer import fooled_pairs

    models = _models()
    x = _data(10)
    with torch.no_grad():
        y = models["A"](x).argmax(1)
    real = transfer.adversarial_examples

    def one_failed(model, x, y, **options):  # a failed attack has no size: no matched noise
        result = real(model, x, y, **options)
        result.distortion[0], result.success[0], result.x_adv[0] = float("inf"), False, x[0]
        return result

    monkeypatch.setattr(transfer, "adversarial_examples", one_failed)
    table = transfer_table(
        models, models, x, y, noise_stddevs=(), cache=False, search_steps=4, max_iter=40, progress_bar=False
    )
    adversarial, noise = fooled_pairs(models, x, y, table.adversarial)
    assert adversarial.shape == noise.shape == (10, 2)  # pairs (A, B), (B, A)
    errors = table.errors
    assert np.allclose(adversarial.mean(0), [errors.loc["A", "B"], errors.loc["B", "A"]])
    assert np.isnan(noise[0]).all() and not np.isnan(noise[1:]).any()
    from coursekit.train import predict  # image by image, pair (A, B): A's examples on B

    result = table.adversarial["A"]
    assert np.array_equal(adversarial[:, 0], (predict(models["B"], result.x_adv) != y).numpy())
    noisy = gaussian_noise(x[1:], result.distortion[1:], seed=0)
    assert np.array_equal(noise[1:, 0], (predict(models["B"], noisy) != y[1:]).numpy())
    assert np.allclose(
        np.nanmean(noise, 0),
        [errors.loc["Gaussian noise matched to A", "B"], errors.loc["Gaussian noise matched to B", "A"]],
    )
    with pytest.raises(ValueError, match="attacks"):
        fooled_pairs(models, x, y, {"A": table.adversarial["A"]})


def test_gaussian_noise_stddev_reading_is_sigma_before_clipping():
    """Issue 31 item 13: the paper's "noise with stddev s" may mean σ = s before clipping; the
    course's default makes the realised RMS after clipping s, so its σ is larger."""
    x = _mnist_like()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    plain = (x.double() + 0.1 * z).clamp(0, 1).float()
    stated = gaussian_noise(x, 0.1, seed=3, reading="stddev")
    assert torch.allclose(stated, plain)
    realised = (stated - x).flatten(1).pow(2).mean(1).sqrt()
    assert (realised < 0.085).all()  # clipping takes a good part of it
    solved = gaussian_noise(x, 0.1, seed=3)  # the same z, a larger σ
    assert ((solved - x).sign() * (stated - x).sign() >= 0).all()
    assert torch.allclose((solved - x).flatten(1).pow(2).mean(1).sqrt(), torch.full((6,), 0.1), rtol=1e-5)
    with pytest.raises(ValueError, match="reading"):
        gaussian_noise(x, 0.1, reading="variance")


def test_noise_readings_puts_both_readings_side_by_side():
    from coursekit.transfer import NOISE_READING_LABELS, noise_readings

    models = _models()
    x = _data(20)
    with torch.no_grad():
        y = models["A"](x).argmax(1)
    table = noise_readings(models, x, y, (0.1, 0.3), seed=0)
    assert list(table.columns) == ["A", "B", "realised RMS"]
    assert list(table.index) == [(s, NOISE_READING_LABELS[r]) for s in (0.1, 0.3) for r in ("stddev", "rms")]
    for s in (0.1, 0.3):
        assert table.loc[(s, NOISE_READING_LABELS["rms"]), "realised RMS"] == pytest.approx(s, rel=1e-5)
        assert table.loc[(s, NOISE_READING_LABELS["stddev"]), "realised RMS"] <= s + 1e-9
        noisy = gaussian_noise(x, s, 0, reading="stddev")
        assert table.loc[(s, NOISE_READING_LABELS["stddev"]), "A"] == pytest.approx(evaluate(models["A"], noisy, y))
    with pytest.raises(ValueError, match="stddevs"):
        noise_readings(models, x, y, ())
    with pytest.raises(ValueError, match="stddevs"):
        noise_readings(models, x, y, (0.1, -0.2))


def test_transfer_matrix_is_transfer_tables_cells(tmp_cache):
    from coursekit.transfer import transfer_matrix

    models = _models()
    x = _data()
    with torch.no_grad():
        y = models["A"](x).argmax(1)
    opts = {"search_steps": 4, "max_iter": 40, "progress_bar": False}
    table = transfer_table(models, models, x, y, noise_stddevs=(), matched_noise=False, **opts)
    examples = {name: result.x_adv.cpu() for name, result in table.adversarial.items()}
    rates = transfer_matrix(examples, models, y)
    assert rates.shape == (2, 2) and rates.dtype == torch.float64
    expected = torch.tensor(table.errors.loc[["A", "B"], ["A", "B"]].to_numpy())
    torch.testing.assert_close(rates, expected)
    only_b = transfer_matrix({"B": examples["B"]}, {"A": models["A"]}, y)
    assert only_b.shape == (1, 1) and only_b[0, 0] == rates[1, 0]
    with pytest.raises(ValueError, match="at least one"):
        transfer_matrix({}, models, y)
    with pytest.raises(ValueError, match="y"):
        transfer_matrix(examples, models, y[:3])
