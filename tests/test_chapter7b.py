"""Chapter 7b's tables and sentences (coursekit.chapter7b): each formatted from its inputs."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import ttest_rel

from coursekit import chapter7b as c7
from coursekit.findings import AGREES, DIFFERS, UNDECIDED
from coursekit.records import Record


def _certificates():
    return {
        "FC10(1e-4)": (torch.tensor([0.01, 0.02, 0.0]), torch.tensor([0.02, 0.03, 0.01])),
        "FC100-100-10": (torch.tensor([0.001, 0.002, 0.004]), torch.tensor([0.03, 0.04, 0.04])),
    }


def test_certificate_table_is_over_the_certified_images():
    table = c7.certificate_table(_certificates())
    fc10 = table.loc["FC10(1e-4)"]
    assert fc10["certified"] == pytest.approx(2 / 3)
    assert fc10["mean radius"] == pytest.approx(0.015) and fc10["mean found"] == pytest.approx(0.025)
    assert fc10["median ratio"] == pytest.approx(1.75)  # ratios 2 and 1.5
    assert table.loc["FC100-100-10", "median ratio"] == pytest.approx(20.0)
    assert (table["inside"] == 0).all()


def test_certificate_table_counts_examples_inside_the_radius_and_refuses_bad_input():
    inside = {"m": (torch.tensor([0.05, 0.01]), torch.tensor([0.02, 0.03]))}
    assert c7.certificate_table(inside).loc["m", "inside"] == 1
    with pytest.raises(ValueError, match="no positive radius"):
        c7.certificate_table({"m": (torch.zeros(2), torch.ones(2))})
    with pytest.raises(ValueError, match="same length"):
        c7.certificate_table({"m": (torch.zeros(2), torch.ones(3))})
    with pytest.raises(ValueError, match="empty"):
        c7.certificate_table({})


def test_certificate_sentence_says_where_the_truth_lies_and_which_gap_is_wider():
    text = c7.certificate_sentence(c7.certificate_table(_certificates()))
    assert "a median 1.75 times the radius on FC10(1e-4), 20 times" in text
    assert "The gap is wider for FC100-100-10" in text and "No attack found an example inside" in text
    bad = c7.certificate_table({"m": (torch.tensor([0.05, 0.01]), torch.tensor([0.02, 0.03]))})
    assert "On 1 images an attack found an example inside the radius: a bug" in c7.certificate_sentence(bad)


def test_bound_chain_and_its_sentence():
    columns = {
        "certified": torch.tensor([1.0, 1.0, 0.0]),
        "no box": torch.tensor([2.0, 1.5, 0.5]),
        "in box": torch.tensor([4.0, 3.0, 1.0]),
        "found": torch.tensor([4.0, 3.3, 1.0]),
    }
    chain = c7.bound_chain(columns, keep=torch.tensor([True, True, False]))
    assert chain.shape == (2, 4) and list(chain.columns) == list(columns)
    text = c7.chain_sentence(chain)
    assert "Over the 2 correctly classified images" in text
    assert "a median 1.75 times the certificate" in text  # 2 and 1.5
    assert "by 2.00 more" in text and "a median 1.050 times" in text and "holds on every image" in text
    disordered = chain.copy()
    disordered.iloc[0, 3] = 3.0
    assert "not every image" in c7.chain_sentence(disordered)
    with pytest.raises(ValueError, match="one length"):
        c7.bound_chain(columns, keep=torch.tensor([1, 1, 0]))
    with pytest.raises(ValueError, match="4 columns"):
        c7.chain_sentence(chain.iloc[:, :3])


def _summary():
    index = pd.MultiIndex.from_tuples(
        [("ℓ2", "L-BFGS, paper's"), ("ℓ2", "L-BFGS + polish (ours)"), ("ℓ∞", "PGD, ε bisected"), ("ℓ∞", "FMN")]
    )
    return pd.DataFrame(
        {
            "passes/ex": [33.0, 46.0, 100.0, 100.0],
            "success": [1.0, 1.0, 1.0, 1.0],
            "mean ratio": [1.026, 1.0024, 1.116, 1.011],
            "worst ratio": [1.044, 1.0067, 1.27, 1.02],
        },
        index=index,
    )


def test_exact_sentence():
    per_image = pd.DataFrame({("ℓ2", "a"): [1.0, 1.1]})
    text = c7.exact_sentence(
        _summary(), per_image, 5, 5, paper="L-BFGS, paper's", ours="L-BFGS + polish (ours)", larger_images=20
    )
    assert "On 5 of 5 images" in text and "lands 2.6% beyond" in text and "polished attack 0.24%" in text
    assert "closest in ℓ2 is L-BFGS + polish (ours) and in ℓ∞ FMN (+1.1%)" in text
    assert "the gpu profile solves 20" in text and "a hair below 1" not in text
    below = pd.DataFrame({("ℓ2", "a"): [0.9999, 1.1]})
    assert "a hair below 1" in c7.exact_sentence(
        _summary(), below, 5, 5, paper="L-BFGS, paper's", ours="L-BFGS + polish (ours)", larger_images=20
    )
    with pytest.raises(ValueError, match="no ℓ2 row"):
        c7.exact_sentence(_summary(), per_image, 5, 5, paper="nope", ours="L-BFGS + polish (ours)", larger_images=20)


def test_exact_record_table_is_flat_with_the_proven_counts():
    flat = c7.exact_record_table(_summary(), {"ℓ2": 5, "ℓ∞": 4})
    assert list(flat.index)[0] == "ℓ2 L-BFGS, paper's" and flat.loc["ℓ∞ FMN", "images"] == 4
    with pytest.raises(ValueError, match="lacks the norms"):
        c7.exact_record_table(_summary(), {"ℓ2": 5})


def test_ug100_table_computes_both_statistics_beside_theirs():
    ratios = pd.DataFrame({"PGD, ε bisected": [1.2, 1.0, np.nan], "FMN": [1.0, 1.1, 1.5]})
    optimum = torch.tensor([1.0, 3.0, 2.0])
    table = c7.ug100_table(ratios, optimum)
    pgd = table.loc["PGD"]
    assert pgd["ours: mean of per-image ratios"] == "+10.0%"  # (0.2 + 0) / 2
    assert pgd["ours: ratio of mean distances"] == "+5.0%"  # (1.2 + 3) / (1 + 3)
    assert pgd["UG100: ratio of means (their statistic)"] == "+10.98%"
    assert pgd["UG100: mean of per-image ratios"] == "+11.3%"
    best = table.loc["best of a pool"]  # per image: 1.0, 1.0, 1.5
    assert best["ours: mean of per-image ratios"] == "+16.7%"
    assert "over networks" in best["UG100: ratio of means (their statistic)"]
    assert table.loc["C&W", "ours: mean of per-image ratios"] == "not run"
    assert table.loc["FMN", "UG100: ratio of means (their statistic)"] == "—"
    with pytest.raises(ValueError, match="rows"):
        c7.ug100_table(ratios, torch.ones(2))


def test_solve_cost_sentence():
    costs = pd.DataFrame(
        {"images": [2, 2], "proven": [2, 1], "mean s/image": [2.0, 30.0], "unstable units": [11.0, 24.5]},
        index=["784-16-10", "784-32-10"],
    )
    text = c7.solve_cost_sentence(costs, 3.8, 2.3)
    assert "15.0 times as long (1 of 2 proven" in text and "from 11 to 24" in text and "3.8 s" in text
    with pytest.raises(ValueError, match="at least two"):
        c7.solve_cost_sentence(costs.iloc[:1], 1.0, 1.0)


def test_one_seed_sentence_concludes_about_these_two_networks_only():
    change = {"n": 10000, "error_a": 0.0245, "error_b": 0.0217, "only_a": 116, "only_b": 88, "p_value": 0.058}
    text = c7.one_seed_sentence(change, trained="PGD-trained", plain="plain")
    assert "the PGD-trained network errs on 2.17%, the plain one on 2.45%: a lower error" in text
    assert "cannot tell from chance" in text and "p = 0.058" in text
    assert "That compares these two networks, one training seed each;" in text
    assert "unlikely by chance" in c7.one_seed_sentence({**change, "p_value": 0.01}, trained="a", plain="b")


def test_seeds_change_is_the_paired_t_test_over_seeds():
    plain, trained = [0.020, 0.022, 0.021], [0.025, 0.026, 0.027]
    test = c7.seeds_change(plain, trained)
    reference = ttest_rel(trained, plain)
    assert test["n"] == 3 and test["p"] == pytest.approx(reference.pvalue)
    assert test["mean"] == pytest.approx(0.5) and test["verdict"] == "raised"
    assert "+0.50 points" in c7.seeds_sentence(test) and "raises the clean error" in c7.seeds_sentence(test)
    same = c7.seeds_change([0.02, 0.03], [0.021, 0.031])  # every change equal: no spread
    assert math.isnan(same["p"]) and same["verdict"] == "not shown"
    assert c7.seeds_change([0.02, 0.03, 0.025], [0.021, 0.028, 0.026])["verdict"] == "not shown"
    with pytest.raises(ValueError, match="≥ 2"):
        c7.seeds_change([0.1], [0.2])
    with pytest.raises(ValueError, match="alpha"):
        c7.seeds_change([0.1, 0.2], [0.2, 0.3], alpha=2)


def test_masking_sentence():
    checks = pd.DataFrame({"PGD ≥ FGSM": [True, True], "transfer": [0.9, 0.1]}, index=["a", "b"])
    assert c7.masking_sentence(checks).startswith("All 1 checks pass on all 2 models")
    checks.loc["b", "PGD ≥ FGSM"] = False
    assert c7.masking_sentence(checks).startswith("Failed: b: check PGD ≥ FGSM.")
    with pytest.raises(ValueError, match="boolean"):
        c7.masking_sentence(checks[["transfer"]])


def _record(name, index, rows):
    columns = tuple(next(iter(rows.values())))
    return Record(name, "t", index, columns, rows, {"profile": "gpu"})


def test_verification_findings():
    table = c7.certificate_table(_certificates())
    rows = c7.verification_findings(table, None, paper="L-BFGS, paper's", record=None)
    assert len(rows) == 1 and rows[0].verdict == AGREES and "FC100-100-10 20×" in rows[0].ours
    rows = c7.verification_findings(table, _summary(), paper="L-BFGS, paper's", record=None)
    assert rows[1].ours == "+2.6% (worst +4.4%)" and rows[1].verdict == AGREES
    assert rows[1].larger == "not recorded yet"
    record = _record(c7.EXACT_RECORD, "x", {"ℓ2 L-BFGS, paper's": {"mean ratio": 1.031, "images": 20.0}})
    rows = c7.verification_findings(table, _summary(), paper="L-BFGS, paper's", record=record)
    assert rows[1].larger == "+3.1% (20 images, gpu)"
    inside = c7.certificate_table({"m": (torch.tensor([0.05]), torch.tensor([0.02]))})
    assert c7.verification_findings(inside, None, paper="x", record=None)[0].verdict == DIFFERS


def test_training_findings():
    training = pd.DataFrame(
        {"clean": [0.021, 0.022], "PGD": [0.93, 0.07], "DDN success": [1.0, 1.0], "min. dist.": [0.03, 0.06]},
        index=["wd", "pgd"],
    )
    one_seed = {"error_a": 0.0245, "error_b": 0.0217, "p_value": 0.058}
    rows = c7.training_findings(training, base="wd", trained="pgd", one_seed=one_seed, record=None)
    assert rows[0].ours == "-0.28 points against the same net, one seed (p = 0.058)"
    assert rows[0].verdict == UNDECIDED
    assert rows[0].larger == "not recorded yet"
    assert rows[1].verdict == AGREES and "×2.00" in rows[1].ours
    seeds = {
        f"seed {s}": {"plain clean": p, "trained clean": t}
        for s, (p, t) in enumerate([(0.020, 0.025), (0.022, 0.026), (0.021, 0.027)])
    }
    rows = c7.training_findings(
        training, base="wd", trained="pgd", one_seed=one_seed, record=_record(c7.SEEDS_RECORD, "seed", seeds)
    )
    assert rows[0].larger.startswith("+0.50 points over 3 seeds") and "raised (gpu)" in rows[0].larger


def test_chapter_images_are_the_chapters_draw():
    x, y = c7.chapter_images(5)
    assert x.shape == (5, 1, 28, 28) and y.shape == (5,)
    again, _ = c7.chapter_images(5)
    torch.testing.assert_close(x, again)
    with pytest.raises(ValueError, match="count"):
        c7.chapter_images(0)


def test_robustness_sentence():
    training = pd.DataFrame({"PGD": [0.93, 0.07], "min. dist.": [0.03, 0.06]}, index=["wd", "pgd"])
    text = c7.robustness_sentence(training, base="wd", trained="pgd", eps=0.1, images=100)
    assert text.startswith("Mixed PGD training lowered PGD's error at ε = 0.1 from 93% to 7% on our 100")
    assert "by 2.00:" in text
    assert "did not lower" in c7.robustness_sentence(training, base="pgd", trained="wd", eps=0.1, images=1)
    with pytest.raises(ValueError, match="no row"):
        c7.robustness_sentence(training, base="x", trained="pgd", eps=0.1, images=1)


def _toy_models():
    torch.manual_seed(0)
    return {
        name: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval() for name in ("plain", "other")
    }


def test_defence_table_and_masking_checks_on_toy_models():
    models = _toy_models()
    x = torch.rand(6, 1, 28, 28)
    y = torch.arange(6) % 10
    training, adversaries = c7.defence_table(models, x, y, x, y, eps=0.1, pgd_steps=3, ddn_steps=10)
    assert list(training.columns) == ["clean", "FGSM", "PGD", "DDN success", "min. dist."]
    assert (
        ((training[["clean", "FGSM", "PGD", "DDN success"]] >= 0) & (training[["clean", "FGSM", "PGD"]] <= 1))
        .all()
        .all()
    )
    assert set(adversaries) == set(models) and adversaries["plain"].x_adv.shape == x.shape
    checks = c7.masking_checks(models, training, adversaries["plain"].x_adv, x, y, pgd_steps=3)
    assert checks.select_dtypes(include="bool").shape == (2, 4)
    assert checks.loc["plain", "PGD ≥ transfer"]  # its own examples, transferred to itself
    assert 0 <= checks.loc["other", "transfer"] <= 1 and 0 <= checks.loc["other", "error at large ε"] <= 1
    assert c7.masking_sentence(checks)  # a sentence either way
