"""The chapters' table plumbing, checked against explicit loops."""

import itertools
import types

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import attackable_model
from coursekit.report import (cross_training_sentence, cross_training_summary, format_rates, regulariser_sentences,
                              robustness_table, transfer_summary, units_verdict)

MODELS = ["FC10(a)", "FC10(b)", "NET", "AE"]


def _table2(seed):
    rng = np.random.default_rng(seed)
    values = rng.random((8, 4))
    index = MODELS + [f"Gaussian noise matched to {m}" for m in MODELS]
    return pd.DataFrame(values, index=index, columns=MODELS)


def test_transfer_summary_against_loops():
    ours, paper = _table2(0), _table2(1).iloc[:4]
    s = transfer_summary(ours, paper, MODELS)
    pairs = [(r, c) for r, c in itertools.product(MODELS, MODELS) if r != c]
    assert s["ours"] == pytest.approx(np.mean([ours.loc[r, c] for r, c in pairs]))
    assert s["paper"] == pytest.approx(np.mean([paper.loc[r, c] for r, c in pairs]))
    assert s["matched"] == pytest.approx(np.mean([ours.loc[f"Gaussian noise matched to {r}", c] for r, c in pairs]))
    means = {c: np.mean([ours.loc[r, c] for r in MODELS if r != c]) for c in MODELS}
    assert s["least_fooled"] == min(means, key=means.get) and s["least_rate"] == pytest.approx(min(means.values()))
    soft = [(r, c) for r, c in pairs if r.startswith("FC10(") and c.startswith("FC10(")]
    assert s["softmax"] == pytest.approx(np.mean([ours.loc[r, c] for r, c in soft]))
    assert s["other"] == pytest.approx(np.mean([ours.loc[r, c] for r, c in pairs if (r, c) not in soft]))
    assert s["paper_softmax"] == pytest.approx(np.mean([paper.loc[r, c] for r, c in soft]))


def test_cross_training_summary_against_loops():
    names = ["A", "B", "C"]
    rng = np.random.default_rng(2)
    rows = ([f"Distorted for {n}" for n in names] + ["Gaussian noise with stddev=0.06"]
            + [f"Distorted for {n} amplified to stddev=0.1" for n in names]
            + [f"Distorted for {n} amplified to stddev=0.1 (literal formula)" for n in names]
            + ["Gaussian noise with stddev=0.1"])
    table = pd.DataFrame(rng.random((len(rows), 3)), index=rows, columns=names)
    s = cross_training_summary(table, names)
    pairs = [(r, c) for r, c in itertools.product(names, names) if r != c]
    assert s["cross"] == pytest.approx(np.mean([table.loc[f"Distorted for {r}", c] for r, c in pairs]))
    assert s["literal"] == pytest.approx(np.mean(
        [table.loc[f"Distorted for {r} amplified to stddev=0.1 (literal formula)", c] for r, c in pairs]))
    assert s["noise_10"] == pytest.approx(table.loc["Gaussian noise with stddev=0.1"].mean())
    assert f"{100 * s['amplified']:.1f}%" in cross_training_sentence(s)


def _fake_report(p_value, difference):
    test = {"natural mean": 0.5, "random mean": 0.5 - difference, "difference": difference,
            "ci low": difference - 0.01, "ci high": difference + 0.01, "p value": p_value}
    return types.SimpleNamespace(tests={"purity": test, "similarity": test})


def test_units_verdict_says_what_the_test_found():
    assert units_verdict(_fake_report(0.001, 0.1), "CNN").count("significantly higher") == 2
    assert "significantly lower" in units_verdict(_fake_report(0.001, -0.1), "CNN")
    text = units_verdict(_fake_report(0.2, 0.1), "FC")
    assert text.count("no significant difference") == 2 and "(FC)" in text and "p = 0.2" in text


def test_regulariser_sentences_compare_with_the_baseline():
    ours = pd.DataFrame({"test error": [0.016, 0.011], "av. min. distortion": [0.05, 0.1],
                         "product of layer bounds": [100.0, 50.0]}, index=["weight decay", "adversarial pool"])
    text = regulariser_sentences(ours)
    assert "-0.50 points" in text and "×2.00" in text and "×0.5" in text and "**holds**" in text
    ours.loc["adversarial pool", "test error"] = 0.013
    assert "**does not hold**" in regulariser_sentences(ours)


def test_format_rates_keeps_plain_columns_plain():
    table = pd.DataFrame({("A", "ours"): [0.1234], ("Av. distortion", "ours"): [0.0567]})
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    html = format_rates(table, plain={"Av. distortion": "{:.3f}"}).to_html()
    assert "12.3%" in html and "0.057" in html and "5.7%" not in html


def test_robustness_table_measures_each_model(tmp_cache):
    from coursekit.spectral import layer_bounds
    from coursekit.transfer import adversarial_examples

    models = {"A": attackable_model(1), "B": attackable_model(2)}
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 4, 4, generator=generator)
    y = torch.randint(0, 10, (6,), generator=generator)
    options = {"search_steps": 3, "max_iter": 20, "progress_bar": False}
    table, attacks = robustness_table(models, {"error": (x, y)}, (x[:3], y[:3]), bounds_input=(1, 4, 4), **options)
    for name, model in models.items():
        with torch.no_grad():
            wrong = sum(int(model(x[i : i + 1]).argmax()) != int(y[i]) for i in range(6))
        assert table.loc[name, "error"] == pytest.approx(wrong / 6)
        expected = adversarial_examples(model, x[:3], y[:3], **options).distortion.mean().item()
        assert table.loc[name, "av. min. distortion"] == pytest.approx(expected)
        assert table.loc[name, "product of layer bounds"] == layer_bounds(model, (1, 4, 4)).attrs["product"]
        assert len(attacks[name]) == 3


def test_rate_interval_is_a_bootstrap_over_images_of_per_image_means():
    import numpy as np
    from scipy import stats

    from coursekit.report import rate_interval

    rng = np.random.default_rng(0)
    fooled = (rng.random((200, 6)) < 0.3).astype(float)
    fooled[:5, 1:] = np.nan  # measured on one pair only: still one image
    fooled[5] = np.nan  # measured on none: left out
    mean, low, high = rate_interval(fooled, seed=1)
    per_image = np.nanmean(fooled[np.arange(200) != 5], 1)
    assert mean == pytest.approx(per_image.mean())
    expected = stats.bootstrap((per_image,), np.mean, n_resamples=2000, method="percentile",
                               random_state=np.random.default_rng(1)).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert low < mean < high and high - low < 0.1
    assert rate_interval(np.ones(7)) == (1.0, 1.0, 1.0)
    for bad, match in ((np.full(3, np.nan), "no measured"), (np.full((2, 2, 2), 1.0), "shape"),
                       (np.array([0.0, 2.0]), "0/1")):
        with pytest.raises(ValueError, match=match):
            rate_interval(bad)


def test_proportion_interval_is_wilsons():
    from coursekit.report import percent_interval, proportion_interval

    low, high = proportion_interval(0.26, 200)
    # Wilson's score interval by its formula, z = 1.959964
    z, p, n = 1.959963984540054, 0.26, 200
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert percent_interval(0.26, low, high) == "26.0% (95% CI 20.4–32.5%)"
    with pytest.raises(ValueError, match="whole number"):
        proportion_interval(0.2613, 200)
    with pytest.raises(ValueError, match="count"):
        proportion_interval(0.5, 0)
