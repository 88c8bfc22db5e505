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


def _exact_two_sided(k: int, n: int) -> float:
    """The two-sided binomial p-value at p = 1/2 by enumeration: the probability of every split
    at most as likely as k of n."""
    from math import comb

    probability = [comb(n, i) / 2**n for i in range(n + 1)]
    return min(1.0, sum(p for p in probability if p <= probability[k] * (1 + 1e-12)))


def test_paired_error_change_against_counts_and_enumeration():
    from coursekit.report import paired_error_change

    rng = np.random.default_rng(3)
    a = rng.random(500) < 0.10
    b = a.copy()
    b[rng.choice(500, 40, replace=False)] ^= True  # flip 40 images
    s = paired_error_change(torch.from_numpy(a), b)
    only_a, only_b = int(sum(a & ~b)), int(sum(b & ~a))
    assert (s["only_a"], s["only_b"], s["n"]) == (only_a, only_b, 500)
    assert s["error_a"] == pytest.approx(a.mean()) and s["error_b"] == pytest.approx(b.mean())
    assert s["p_value"] == pytest.approx(_exact_two_sided(only_a, only_a + only_b), rel=1e-9)
    one_sided = paired_error_change(np.zeros(30, bool), np.arange(30) < 10)
    assert one_sided["p_value"] == pytest.approx(2 / 2**10)  # 10 discordant, all one way
    assert paired_error_change(a, a)["p_value"] == 1.0


def test_paired_error_change_refuses_bad_input():
    from coursekit.report import paired_error_change

    with pytest.raises(ValueError, match="bool vectors"):
        paired_error_change(np.zeros(3, bool), np.zeros(4, bool))
    with pytest.raises(ValueError, match="bool vectors"):
        paired_error_change(np.zeros(3), np.zeros(3))
