"""The chapters' table plumbing, checked against explicit loops."""

import itertools
import types

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import attackable_model
from coursekit.report import (
    cross_training_sentence,
    cross_training_summary,
    format_rates,
    regulariser_sentences,
    robustness_table,
    transfer_summary,
    units_verdict,
)

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
    rows = (
        [f"Distorted for {n}" for n in names]
        + ["Gaussian noise with stddev=0.06"]
        + [f"Distorted for {n} amplified to stddev=0.1" for n in names]
        + [f"Distorted for {n} amplified to stddev=0.1 (literal formula)" for n in names]
        + ["Gaussian noise with stddev=0.1"]
    )
    table = pd.DataFrame(rng.random((len(rows), 3)), index=rows, columns=names)
    s = cross_training_summary(table, names)
    pairs = [(r, c) for r, c in itertools.product(names, names) if r != c]
    assert s["cross"] == pytest.approx(np.mean([table.loc[f"Distorted for {r}", c] for r, c in pairs]))
    assert s["literal"] == pytest.approx(
        np.mean([table.loc[f"Distorted for {r} amplified to stddev=0.1 (literal formula)", c] for r, c in pairs])
    )
    assert s["noise_10"] == pytest.approx(table.loc["Gaussian noise with stddev=0.1"].mean())
    assert f"{100 * s['amplified']:.1f}%" in cross_training_sentence(s)


def _fake_report(p_value, difference):
    test = {
        "natural mean": 0.5,
        "random mean": 0.5 - difference,
        "difference": difference,
        "ci low": difference - 0.01,
        "ci high": difference + 0.01,
        "p value": p_value,
    }
    return types.SimpleNamespace(tests={"purity": test, "similarity": test})


def test_units_verdict_reports_the_interval_and_the_rank_test_each_in_its_own_words():
    text = units_verdict(_fake_report(0.001, 0.1), "CNN")
    assert text.count("it excludes 0: single units higher on average") == 2
    assert text.count("significant at 0.05: single units' scores tend to rank higher") == 2
    assert "single units lower on average" in units_verdict(_fake_report(0.001, -0.1), "CNN")
    text = units_verdict(_fake_report(0.2, 0.1), "FC")
    assert text.count("not significant at 0.05") == 2 and "(FC)" in text and "p = 0.2" in text
    # a significant rank test beside an interval that contains 0: both said, neither withdrawn
    both = units_verdict(_fake_report(0.01, 0.005), "CNN")
    assert "it contains 0: no difference of means established" in both and "tend to rank higher" in both
    assert "significantly" not in both


def test_regulariser_sentences_compare_with_the_baseline():
    ours = pd.DataFrame(
        {"test error": [0.016, 0.011], "av. min. distortion": [0.05, 0.1], "product of layer bounds": [100.0, 50.0]},
        index=["weight decay", "adversarial pool"],
    )
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
    expected = stats.bootstrap(
        (per_image,), np.mean, n_resamples=2000, method="percentile", random_state=np.random.default_rng(1)
    ).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert low < mean < high and high - low < 0.1
    assert rate_interval(np.ones(7)) == (1.0, 1.0, 1.0)
    for bad, match in (
        (np.full(3, np.nan), "no measured"),
        (np.full((2, 2, 2), 1.0), "shape"),
        (np.array([0.0, 2.0]), "0/1"),
    ):
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


def _comparison(natural, random, p_purity, p_similarity, ci=(-0.05, 0.03)):
    """A units comparison report with given purity scores (similarity = purity − 0.1)."""
    from coursekit.units import BasisComparison

    kinds = {
        "natural": np.array(natural),
        "random": np.array(random),
        "class mean": np.array([1.0, 1.0]),
        "random images": np.array([0.2, 0.4]),
    }
    scores = {k: {"purity": v, "similarity": v - 0.1} for k, v in kinds.items()}
    tests = {
        m: {
            "natural mean": 0.0,
            "random mean": 0.0,
            "difference": float(np.mean(natural) - np.mean(random)),
            "ci low": ci[0],
            "ci high": ci[1],
            "U": 0.0,
            "p value": p,
        }
        for m, p in (("purity", p_purity), ("similarity", p_similarity))
    }
    return BasisComparison(scores=scores, tests=tests, k=8, dead_units=0)


def test_units_numbers_place_the_kinds_between_the_controls():
    from coursekit.report import units_numbers

    report = _comparison([0.8, 0.6, 0.7], [0.65, 0.75], 0.5, 0.2)
    n = units_numbers(report)
    # controls: random images 0.3, class means 1.0 (gap 0.7); units 0.7, random 0.7
    assert n["meaningless"] == pytest.approx(0.3) and n["meaningful"] == pytest.approx(1.0)
    assert n["natural_position"] == pytest.approx((0.7 - 0.3) / 0.7)
    assert n["random_position"] == pytest.approx((0.7 - 0.3) / 0.7)
    assert n["largest"] == pytest.approx(0.05) and n["largest_share"] == pytest.approx(0.05 / 0.7)
    assert (n["units"], n["directions"], n["p"]) == (3, 2, 0.5)
    with pytest.raises(ValueError, match="measure"):
        units_numbers(report, "entropy")


def test_units_paragraph_says_what_was_and_was_not_found():
    from coursekit.report import units_paragraph

    quiet = _comparison([0.8, 0.6, 0.7], [0.65, 0.75], 0.5, 0.2)
    text = units_paragraph({"A": quiet, "B": quiet})
    assert "57% and 57% of the way" in text  # (0.7 − 0.3) / 0.7
    assert "far more coherent than random images, in every model" in text
    low = _comparison([0.4, 0.5, 0.6], [0.65, 0.75], 0.5, 0.2)
    assert "Not every kind is far from random images (the lowest lies 29% of the way)" in units_paragraph({"A": low})
    assert "In neither model nor measure is the Mann–Whitney test significant (p ≥ 0.2)" in text
    assert "3 and 3 live units and 2 random directions" in text
    assert "up to 0.050" in text and "7% of the gap" in text
    loud = _comparison([0.9, 0.9, 0.9], [0.55, 0.65], 0.001, 0.3, ci=(0.2, 0.4))
    text = units_paragraph({"A": loud, "B": quiet})
    assert "In A, the Mann–Whitney test finds single units' purity scores ranking higher (p = 0.001)" in text
    assert "their mean differs by +0.300 (43% of the gap between the controls; 95% interval +0.200 to +0.400)" in text
    assert "The other tests are not significant (p ≥ 0.2)" in text
    assert "With 4 tests at the 0.05 level, chance alone makes at least one significant 19%" in text
    assert "Bonferroni level 0.05/4 = 0.0125, 1 of the 1 remains significant." in text
    edge = _comparison([0.9, 0.9, 0.9], [0.55, 0.65], 0.0497, 0.3, ci=(0.2, 0.4))
    text = units_paragraph({"A": edge})
    assert "p = 0.0497" in text and "none of them remains significant" in text
    assert "up to 0.400 (similarity, A)" in text  # the widest interval among the others
    with pytest.raises(ValueError, match="empty"):
        units_paragraph({})


def test_no_difference_verdict_needs_the_whole_interval_inside_or_beyond_the_margin():
    from coursekit.findings import AGREES, DIFFERS, UNDECIDED
    from coursekit.report import no_difference_verdict

    assert no_difference_verdict(-0.02, 0.08, 0.125) == AGREES
    assert no_difference_verdict(0.01, 0.05, 0.125) == AGREES  # a difference, but a negligible one
    assert no_difference_verdict(-0.02, 0.2, 0.125) == UNDECIDED
    assert no_difference_verdict(0.05, 0.2, 0.125) == UNDECIDED  # a difference of unknown size
    assert no_difference_verdict(0.13, 0.3, 0.125) == DIFFERS
    assert no_difference_verdict(-0.4, -0.2, 0.125) == DIFFERS
    with pytest.raises(ValueError, match="low <= high"):
        no_difference_verdict(0.1, -0.1, 0.125)
    with pytest.raises(ValueError, match="margin"):
        no_difference_verdict(-0.1, 0.1, 0.0)


def test_units_table_and_findings_with_and_without_a_larger_run():
    from coursekit.findings import AGREES, UNDECIDED
    from coursekit.records import Record
    from coursekit.report import units_findings, units_table

    quiet = _comparison([0.8, 0.9, 0.85], [0.85, 0.8], 0.5, 0.2, ci=(-0.02, 0.08))
    wide = _comparison([0.9, 0.6, 0.8], [0.85, 0.8], 0.5, 0.2, ci=(-0.2, 0.1))
    table = units_table({"CNN": quiet, "FC": wide})
    assert list(table.index) == ["CNN", "FC"] and table.loc["CNN", "live units"] == 3
    assert table.loc["CNN", "random images purity"] == pytest.approx(0.3)
    assert table.loc["FC", "ci low"] == -0.2 and table.loc["CNN", "k"] == 8
    rows = units_findings(table)
    assert rows[0].verdict == AGREES and "random directions 0.82 and 0.82" in rows[0].ours
    assert [r.verdict for r in rows[1:]] == [AGREES, UNDECIDED]
    assert rows[1].ours == "+0.025 (95% CI -0.020 to +0.080)" and rows[1].larger == "not recorded yet"
    provenance = {"profile": "gpu"}
    larger = Record("02_units", "t", "model", tuple(table.columns), table.to_dict(orient="index"), provenance)
    rows = units_findings(table, larger)
    assert rows[2].larger == (
        "-0.058 (95% CI -0.200 to +0.100), 2 random directions (gpu profile): too few samples to say"
    )
    low = _comparison([0.4, 0.5, 0.6], [0.65, 0.75], 0.5, 0.2)
    assert units_findings(units_table({"A": low}))[0].verdict == "differs"
    with pytest.raises(ValueError, match="empty"):
        units_table({})


def test_error_paragraph_groups_the_models_by_their_difference():
    from coursekit.report import error_paragraph

    ours = pd.DataFrame(
        {"training error": [0.05, 0.10, 0.01], "test error": [0.071, 0.15, 0.02]}, index=["A", "B", "C"]
    )
    paper = {"A": (0.06, 0.074), "B": (0.2, 0.21), "C": (0.0, 0.012)}
    text = error_paragraph(ours, paper, ["A", "B", "C"])
    assert text.startswith("Within 0.5 points of the paper's test error: A.")
    assert "Above it by more: C: test 2.00% vs the paper's 1.20%, training 1.00% vs 0.00%." in text
    assert "Below it by more: B: test 15.00% vs the paper's 21.00%, training 10.00% vs 20.00%." in text
    assert "Within 1.0 points of the paper's test error: A, C." in error_paragraph(ours, paper, "ABC", close=0.01)
    with pytest.raises(ValueError, match="missing"):
        error_paragraph(ours, paper, ["A", "D"])


def test_convergence_table_reads_each_history():
    from coursekit.report import convergence_table

    lbfgs = types.SimpleNamespace(
        training_info={
            "history": {
                "optimizer": "lbfgs",
                "unit": "iteration",
                "cap": 200,
                "steps": [0, 20, 40, 57],
                "loss": [2.3, 0.5, 0.41, 0.4],
                "converged": False,
            }
        }
    )
    stopped = types.SimpleNamespace(
        training_info={
            "history": {
                "optimizer": "lbfgs",
                "unit": "iteration",
                "cap": 200,
                "steps": [0, 20, 33, 33],
                "loss": [2.3, 0.5, 0.4, 0.4],
                "converged": True,
            }
        }
    )
    adam = types.SimpleNamespace(
        training_info={
            "history": {
                "optimizer": "adam",
                "unit": "epoch",
                "cap": 3,
                "steps": [1, 2, 3],
                "loss": [0.5, 0.3, 0.2],
                "converged": False,
            }
        }
    )
    old = types.SimpleNamespace(training_info={"key": {}})
    table = convergence_table({"a": lbfgs, "b": stopped, "c": adam, "d": old})
    assert table.loc["a"].tolist()[:4] == ["L-BFGS", "200 iterations", "57 iterations", "17 iterations"]
    assert table.loc["a", "fall"] == pytest.approx(0.01 / 0.41)
    assert table.loc["b", "ran"] == "33 iterations (converged)" and table.loc["b", "fall"] == 0
    assert table.loc["c"].tolist() == ["Adam", "3 epochs", "3 epochs", "1 epoch", pytest.approx(1 / 3)]
    assert table.loc["d", "optimizer"] == "not recorded" and np.isnan(table.loc["d", "fall"])


def test_convergence_paragraph_sorts_the_models_by_how_they_ended():
    from coursekit.report import convergence_paragraph

    table = pd.DataFrame(
        {
            "optimizer": ["L-BFGS", "L-BFGS", "L-BFGS", "Adam", "not recorded"],
            "cap": ["200 iterations"] * 3 + ["12 epochs", ""],
            "ran": ["44 iterations (converged)", "134 iterations", "200 iterations", "12 epochs", ""],
            "last block": ["1 iterations", "2 iterations", "20 iterations", "1 epoch", ""],
            "fall": [0.0, 2e-7, 0.0016, 0.075, np.nan],
        },
        index=["a", "b", "c", "d", "e"],
    )
    text = convergence_paragraph(table)
    assert "Stopped by itself (converged): a after 44 iterations." in text
    assert (
        "(the objective fell by less than 0.01% over the last block): b (2.0e-05% over its last "
        "2 iterations, 134 iterations in all)." in text
    )
    assert "Still falling when the cap stopped it: c (0.16% over its last 20 iterations)." in text
    assert "below the previous one's by 7.5% for d (12 epochs)." in text
    assert "No history was recorded for e" in text
    assert "c (0.16%" in convergence_paragraph(table, flat=0.01).split("Still")[0]  # now flat


def test_p_text_never_rounds_across_alpha():
    from coursekit.report import p_text

    assert p_text(0.0497) == "0.0497" and p_text(0.0503) == "0.0503" and p_text(0.12) == "0.12"
    assert p_text(0.0096, alpha=0.01) == "0.0096" and p_text(0.0104, alpha=0.01) == "0.0104"
    assert p_text(0.0014) == "0.0014"


def test_error_findings_give_an_interval_a_verdict_and_the_larger_run():
    from coursekit.report import error_findings

    ours = pd.DataFrame({"training error": [0.0, 0.1], "test error": [0.02, 0.2]}, index=["A", "B"])
    paper = {"A": (0.0, 0.0351), "B": (0.05, 0.2)}
    counts = {"training error": 1000, "test error": 1000}
    rows = error_findings(ours, paper, ["A", "B"], counts=counts)
    assert [r.what for r in rows] == ["A, training error", "A, test error", "B, training error", "B, test error"]
    # A's 3.51% lies above our interval (1.3-3.1%): differs; B's "20%" is 19.5-20.5%: agrees
    assert [r.verdict for r in rows] == ["agrees", "differs", "differs", "agrees"]
    assert rows[1].ours.startswith("2.00% (95% CI 1.") and rows[1].paper == "3.51%"
    assert rows[3].paper == "20%"
    assert all(r.larger == "not recorded yet" for r in rows)
    record = types.SimpleNamespace(table=lambda: ours * 0.5, provenance={"profile": "gpu"})
    rows = error_findings(ours, paper, ["B"], counts=counts, larger=record)
    assert rows[0].larger == "5.00% (gpu profile)"
    with pytest.raises(ValueError, match="missing"):
        error_findings(ours, paper, ["C"])
    partial = types.SimpleNamespace(table=lambda: ours.loc[["B"]], provenance={"profile": "gpu"})
    with pytest.raises(ValueError, match="larger run lacks"):
        error_findings(ours, paper, ["A"], larger=partial)


def test_printed_percent_is_the_paper_s_rounding():
    from coursekit.report import printed_percent

    assert printed_percent(0.067) == ("6.7%", pytest.approx(0.0665), pytest.approx(0.0675))
    assert printed_percent(0.0) == ("0%", 0.0, pytest.approx(0.005))
    assert printed_percent(0.10)[0] == "10%" and printed_percent(0.0164)[0] == "1.64%"
    assert printed_percent(0.0057)[1:] == (pytest.approx(0.00565), pytest.approx(0.00575))
    # a training error of 2 in 60,000 images agrees with the paper's "0%"
    from coursekit.report import error_findings

    ours = pd.DataFrame({"training error": [2 / 60_000], "test error": [0.0154]}, index=["M"])
    rows = error_findings(ours, {"M": (0.0, 0.0154)}, ["M"])
    assert [r.verdict for r in rows] == ["agrees", "agrees"]


def test_distortion_column_is_a_mean_with_a_normal_interval():
    import math

    import torch

    from coursekit.attack import AttackResult
    from coursekit.report import distortion_column, distortion_display, distortion_sentence

    def result(values):
        n = len(values)
        d = torch.tensor(values, dtype=torch.float64)
        return AttackResult(
            x_adv=torch.zeros(n, 1, 2, 2),
            target=torch.zeros(n, dtype=torch.long),
            success=d.isfinite(),
            c=torch.ones(n),
            distortion=d,
            l2=d * 2,
            evaluations=torch.ones(n, dtype=torch.long),
            forward_only=torch.zeros(n, dtype=torch.long),
        )

    attacks = {"a": result([0.01, 0.02, 0.03, float("inf")]), "b": result([0.05, 0.05, 0.06, 0.04])}
    column = distortion_column(attacks, {"a": 0.02, "b": 0.2})
    half = 1.959964 * torch.tensor([0.01, 0.02, 0.03]).double().std().item() / math.sqrt(3)
    assert column.loc["a", "ours"] == pytest.approx(0.02)
    assert column.loc["a", "high"] - column.loc["a", "ours"] == pytest.approx(half, rel=1e-5)
    assert column.loc["a", "reached"] == 0.75 and column.loc["a", "images"] == 4
    assert column.loc["a", "inside"] == 1.0 and column.loc["b", "inside"] == 0.0
    assert column.loc["b", "ours / paper"] == pytest.approx(0.25)
    shown = distortion_display(column)
    assert list(shown.columns) == ["ours (95% interval)", "paper", "ours / paper"]
    assert shown.loc["b", "ours (95% interval)"].startswith("0.0500 (")
    assert distortion_sentence(column) == (
        "our averages are 0.25 to 1.00 times the paper's, and the paper's value lies inside our 95% "
        "interval for 1 of the 2 models (verdict: agrees for some models, differs for others)"
    )
    assert distortion_sentence(column.loc[["b"]]).endswith("for 0 of the 1 models (verdict: differs)")
    with pytest.raises(ValueError, match="paper has no value"):
        distortion_column(attacks, {"a": 0.02})
    with pytest.raises(ValueError, match="fewer than two"):
        distortion_column({"c": result([float("inf"), 0.1])}, {"c": 0.1})


def test_distortion_findings_give_a_verdict_and_the_recorded_run(tmp_path):
    from coursekit.records import load_record, provenance, write_record
    from coursekit.report import distortion_findings

    column = pd.DataFrame(
        {"ours": [0.02, 0.05], "low": [0.015, 0.045], "high": [0.025, 0.055], "paper": [0.02, 0.2]},
        index=["a", "b"],
    )
    rows = distortion_findings(column)
    assert [r.verdict for r in rows] == ["agrees", "differs"]
    assert rows[0].ours == "0.0200 (0.0150–0.0250)" and rows[1].paper == "0.2"
    assert all(r.larger == "not recorded yet" for r in rows)
    bigger = pd.DataFrame({"ours": [0.03], "low": [0.029], "high": [0.031]}, index=["a"])
    write_record(tmp_path, "x_table", "a test", bigger, provenance("pytest", "cpu", "quick", {"images": 2}))
    rows = distortion_findings(column, load_record("x_table", folder=tmp_path))
    assert rows[0].larger == "0.0300 (0.0290–0.0310): differs"
    assert rows[1].larger == "not in the record"


def test_transfer_headline_and_findings(tmp_path):
    from coursekit.records import load_record, provenance, write_record
    from coursekit.report import HEADLINE_ROWS, transfer_findings, transfer_headline

    adversarial = np.array([[1, 0], [1, 1], [0, 1], [1, 0]] * 10, dtype=float)  # 62.5% fooled
    noise = np.array([[0, 0], [0, 1], [0, 0], [0, 0]] * 10, dtype=float)  # 12.5%
    table4 = pd.DataFrame({"FC123-456-10": [0.3], "FC100-100-10'": [0.05]}, index=["Distorted for FC100-100-10"])
    headline = transfer_headline(adversarial, noise, table4, 200)
    assert list(headline.index) == list(HEADLINE_ROWS) and list(headline.columns) == ["rate", "low", "high"]
    assert headline.loc[HEADLINE_ROWS[0], "rate"] == pytest.approx(0.625)
    assert headline.loc[HEADLINE_ROWS[1], "rate"] == pytest.approx(0.125)
    assert headline.loc[HEADLINE_ROWS[2], "rate"] == 0.3
    rows = transfer_findings(headline)
    assert [r.what for r in rows][1] == "Table 2: examples fool other models more than noise of the same size"
    assert rows[1].verdict == "agrees" and rows[-1].verdict == "agrees"  # 30% vs 5% of 200: apart
    assert rows[0].paper == "25.6%" and rows[2].paper == "26.2%" and rows[3].paper == "5.9%"
    assert rows[2].verdict == "agrees" and rows[0].verdict == "differs"  # 62.5% (CI ~50-75) vs 25.6%
    assert all(r.larger == "not recorded yet" for r in rows)
    close = headline.copy()
    close.loc[HEADLINE_ROWS[3]] = [0.28, 0.22, 0.35]
    write_record(tmp_path, "x_headline", "a test", close, provenance("pytest", "cpu", "quick", {"images": 2}))
    rows = transfer_findings(headline, load_record("x_headline", folder=tmp_path))
    assert rows[-1].larger == "the two intervals overlap: too few samples to say"
    assert rows[3].larger.startswith("28.0% (95% CI 22.0–35.0%): differs")


def test_noise_reading_table_and_sentence():
    from coursekit.report import noise_reading_sentence, noise_reading_table
    from coursekit.transfer import NOISE_READING_LABELS

    stated, after = NOISE_READING_LABELS["stddev"], NOISE_READING_LABELS["rms"]
    index = pd.MultiIndex.from_tuples(
        [(0.1, stated), (0.1, after), (0.3, stated), (0.3, after)], names=["stddev", "reading"]
    )
    readings = pd.DataFrame(
        {"A": [0.10, 0.20, 0.30, 0.40], "B": [0.0, 0.10, 0.10, 0.30], "realised RMS": [0.07, 0.1, 0.2, 0.3]},
        index=index,
    )
    table = noise_reading_table(readings, {0.1: (0.05, 0.0), 0.3: (0.1, 0.05)})
    expected = [(s, r) for s in (0.1, 0.3) for r in (stated, after, "paper")]
    assert list(table.index) == expected
    assert table.loc[(0.3, "paper"), "B"] == 0.05 and np.isnan(table.loc[(0.1, "paper"), "realised RMS"])
    text = noise_reading_sentence({"Table 2": table})
    # stated 12.5%, after 25.0%, paper 5.0%: the σ reading closes 62% of the gap, 7.5 points remain
    assert "fool the models 12.5% of the time" in text and "as RMS after clipping 25.0%" in text
    assert "in the paper 5.0%" in text and "closes 62% of the gap" in text
    assert "a gap of up to 7.5 points remains" in text
    with pytest.raises(ValueError, match="paper needs 2 rates"):
        noise_reading_table(readings, {0.1: (0.05,), 0.3: (0.1, 0.05)})
