"""Chapter 7a's "What this run found" rows (coursekit.chapter7a): verdicts from the tables."""

import pandas as pd
import pytest
import torch

from coursekit.chapter7a import chapter_images, findings, versus_table
from coursekit.findings import AGREES, DIFFERS, UNDECIDED


def _nearest(models=("FC10(1e-4)", "FC100-100-10"), reached=1.0, t4=1.0, random=0.0, tested=100):
    return pd.DataFrame(
        {
            m: {
                "tested": float(tested),
                "reached": reached,
                "median distortion": 0.05,
                "t = 0.5": 0.0,
                "t = 4": t4,
                "random, same distance": random,
            }
            for m in models
        }
    ).T


def _versus(only_fgsm=1, only_pgd=9, p=0.02):
    row = {"n": 100, "error_a": 0.5, "error_b": 0.58, "only_a": only_fgsm, "only_b": only_pgd, "p_value": p}
    return versus_table({"FC10(1e-4)": row, "FC100-100-10": row})


def test_the_rows_say_agrees_differs_or_too_few():
    rows = findings(_nearest(), _versus())
    assert len(rows) == 5
    reached, cnn, random, pockets, versus = rows
    assert reached.verdict == AGREES and "FC10(1e-4): 100% (median distortion 0.050)" in reached.ours
    assert cnn.ours == "no CNN in this run" and cnn.verdict.startswith(UNDECIDED)
    assert random.verdict.startswith(AGREES) and "95% CI" in random.ours
    assert pockets.verdict.startswith(DIFFERS) and "probability" in pockets.verdict
    assert versus.verdict.startswith(DIFFERS) and "only PGD fools 9" in versus.ours
    assert all(row.larger == "not recorded yet" for row in rows)


def test_unclear_or_opposite_results_get_their_own_verdicts():
    rows = findings(_nearest(reached=0.9, t4=0.2, random=0.5), _versus(p=0.4))
    assert rows[0].verdict.startswith(DIFFERS)
    assert rows[2].verdict.startswith(DIFFERS)
    assert rows[3].verdict.startswith(AGREES)
    assert rows[4].verdict == UNDECIDED
    few = findings(_nearest(t4=0.5, random=0.1, tested=10), _versus(only_fgsm=9, only_pgd=1))
    assert few[2].verdict == UNDECIDED and few[3].verdict == UNDECIDED
    assert few[4].verdict.startswith(AGREES)


def test_a_larger_run_with_a_cnn_fills_the_larger_column():
    larger = _nearest(models=("FC10(1e-4)", "FC100-100-10", "CNN"), tested=900)
    rows = findings(_nearest(), _versus(), larger, _versus())
    assert "CNN" in rows[1].larger and "CNN" not in rows[0].larger
    assert rows[1].larger.endswith("— agrees") and rows[4].larger.endswith("also on a linear model")
    assert rows[1].ours == "no CNN in this run"
    assert all(row.larger != "not recorded yet" for row in rows)
    with_cnn = findings(larger, _versus())
    assert with_cnn[1].verdict == AGREES and "CNN" in with_cnn[1].ours


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="other than the CNN"):
        findings(_nearest(models=("CNN",)), _versus())
    with pytest.raises(ValueError, match="paired"):
        versus_table({})


def test_the_chapter_images_are_a_fixed_draw():
    x, y = chapter_images(5)
    assert x.shape == (5, 1, 28, 28) and y.shape == (5,)
    x2, y2 = chapter_images(8)
    assert torch.equal(x, x2[:5]) and torch.equal(y, y2[:5])
    with pytest.raises(ValueError, match="count"):
        chapter_images(0)
