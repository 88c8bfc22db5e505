"""Tables with our numbers beside the paper's (never mixed), and sentences that compare them."""

from __future__ import annotations

from collections.abc import Mapping


def side_by_side(ours, paper: Mapping, measures: list[str]):
    """A DataFrame with, for each measure, a column of ours and a column headed "paper".

    ``ours``: DataFrame indexed by row name with one column per measure; ``paper``: {row:
    tuple of the paper's values in the order of ``measures``} (rows the paper lacks get NaN).
    """
    import pandas as pd

    columns = {}
    for i, measure in enumerate(measures):
        columns[(measure, "ours")] = ours[measure]
        columns[(measure, "paper")] = pd.Series({row: paper[row][i] for row in ours.index if row in paper}, dtype=float)
    table = pd.DataFrame(columns, index=ours.index)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def format_percent(table, digits: int = 1, columns=None):
    """Display helper: a Styler showing fractions as percentages (NaN as a dash)."""
    def fmt(value):
        if value != value:
            return "–"
        return f"{100 * value:.{digits}f}%"

    return table.style.format(fmt, subset=columns)


def difference_phrase(ours: float, paper: float, unit: str = "points", scale: float = 100.0, digits: int = 1) -> str:
    """"2.3 points above the paper's" / "within 0.1 points of the paper's"."""
    diff = (ours - paper) * scale
    if abs(diff) < 10 ** (-digits):
        return "the same as the paper's"
    word = "above" if diff > 0 else "below"
    return f"{abs(diff):.{digits}f} {unit} {word} the paper's"


def format_rates(table, digits: int = 1, plain: Mapping[str, str] | None = None):
    """A Styler: every column as a percentage, except the columns whose (top-level) name is
    in ``plain``, which get that format string (e.g. ``{"Av. distortion": "{:.3f}"}``)."""
    plain = dict(plain or {})

    def top(column):
        return column[0] if isinstance(column, tuple) else column

    rates = [c for c in table.columns if top(c) not in plain]
    styler = format_percent(table, digits, columns=rates)
    for name, fmt in plain.items():
        columns = [c for c in table.columns if top(c) == name]
        if columns:
            styler = styler.format(fmt, subset=columns, na_rep="–")
    return styler


def units_verdict(report, model_name: str, alpha: float = 0.05) -> str:
    """Markdown bullets, one per measure of a ``coursekit.units`` comparison report: natural vs
    random means, the difference with its 95% interval, the p value, and whether single units
    are significantly higher, lower, or not different at level ``alpha``."""
    lines = []
    for measure in ("purity", "similarity"):
        t = report.tests[measure]
        if t["p value"] < alpha:
            direction = "higher" if t["difference"] > 0 else "lower"
            outcome = f"single units are significantly {direction}."
        else:
            outcome = "no significant difference."
        lines.append(
            f"- **{measure}** ({model_name}): natural {t['natural mean']:.3f} vs random "
            f"{t['random mean']:.3f}; difference {t['difference']:+.3f} (95% CI {t['ci low']:+.3f} "
            f"to {t['ci high']:+.3f}), p = {t['p value']:.2g}: {outcome}"
        )
    return "\n".join(lines)


def robustness_table(models: Mapping, error_sets: Mapping, attack_images, *,
                     distortion_label: str = "av. min. distortion", bounds_input=None, **attack_options):
    """Per model (rows): its error rate on each named set, the mean minimum distortion of its
    adversarial examples, and (with ``bounds_input`` = (C, H, W)) the product of its layers'
    Lipschitz bounds. The table of Table 3 and of the adversarial-training chapter.

    ``error_sets``: {column: (x, y)}; ``attack_images``: (x, y) attacked with
    ``coursekit.transfer.adversarial_examples`` (cached; ``attack_options`` go to it).
    Returns (DataFrame, {model name: AttackResult}).
    """
    import pandas as pd

    from .spectral import layer_bounds
    from .train import evaluate
    from .transfer import adversarial_examples

    x_attack, y_attack = attack_images
    rows, attacks = {}, {}
    for name, model in models.items():
        row = {column: evaluate(model, x, y) for column, (x, y) in error_sets.items()}
        attacks[name] = adversarial_examples(model, x_attack, y_attack, **attack_options)
        row[distortion_label] = attacks[name].distortion.mean().item()
        if bounds_input is not None:
            row["product of layer bounds"] = layer_bounds(model, bounds_input).attrs["product"]
        rows[name] = row
    return pd.DataFrame(rows).T, attacks


def _off_diagonal(table, rows, columns):
    """The entries (row i, column j) with i ≠ j of ``table.loc[rows, columns]`` (square), [n(n−1)]."""
    import numpy as np

    values = table.loc[list(rows), list(columns)].to_numpy(dtype=float)
    return values[~np.eye(len(rows), dtype=bool)]


def transfer_summary(ours, paper, models) -> dict:
    """Chapter 4's headline statistics of Table 2, ours and the paper's.

    ``ours``: ``transfer_table(...).errors`` (rows: the source ``models``, then
    "Gaussian noise matched to <model>" rows); ``paper``: the paper's errors as a DataFrame
    (rows and columns: ``models``). Returns a dict of fractions: the mean off-diagonal
    transfer rate (``ours``, ``paper``), that of the matched noise (``matched``), the model least
    fooled by the others' examples (``least_fooled``, ``least_rate``, ``paper_least_fooled``,
    ``paper_least_rate``), and the mean rate between two softmax models ("FC10(…)") and
    between the other pairs (``softmax``/``other``, ``paper_softmax``/``paper_other``).
    """
    import numpy as np

    models = list(models)
    matched_rows = [f"Gaussian noise matched to {m}" for m in models]
    softmax = np.array([m.startswith("FC10(") for m in models])
    off = ~np.eye(len(models), dtype=bool)
    both = (softmax[:, None] & softmax[None, :])[off]

    def column_means(table):
        return {m: table.loc[[r for r in models if r != m], m].mean() for m in models}

    ours_means, paper_means = column_means(ours), column_means(paper)
    ours_off, paper_off = _off_diagonal(ours, models, models), _off_diagonal(paper, models, models)
    least, paper_least = min(ours_means, key=ours_means.get), min(paper_means, key=paper_means.get)
    return {
        "ours": ours_off.mean(), "paper": paper_off.mean(),
        "matched": _off_diagonal(ours.loc[matched_rows].set_axis(models, axis=0), models, models).mean(),
        "least_fooled": least, "least_rate": ours_means[least],
        "paper_least_fooled": paper_least, "paper_least_rate": paper_means[paper_least],
        "softmax": ours_off[both].mean(), "other": ours_off[~both].mean(),
        "paper_softmax": paper_off[both].mean(), "paper_other": paper_off[~both].mean(),
    }


def transfer_sentence(s: Mapping) -> str:
    """The Table 2 summary of ``transfer_summary`` as Markdown."""
    return (
        f"Off the diagonal, our adversarial examples fool the other models {100 * s['ours']:.1f}% of the "
        f"time on average (paper: {100 * s['paper']:.1f}%); Gaussian noise of exactly the same size per "
        f"image fools them {100 * s['matched']:.1f}% of the time. The diagonal is 100% by construction. "
        f"The model least fooled by the others' examples is {s['least_fooled']} "
        f"({100 * s['least_rate']:.1f}% on average; in the paper {s['paper_least_fooled']}, "
        f"{100 * s['paper_least_rate']:.1f}%). Between two softmax models the examples transfer "
        f"{100 * s['softmax']:.1f}% of the time, between the other pairs {100 * s['other']:.1f}% "
        f"(paper: {100 * s['paper_softmax']:.1f}% and {100 * s['paper_other']:.1f}%)."
    )


def cross_training_summary(table4, models) -> dict:
    """Chapter 4's headline statistics of Table 4 (rows named as
    ``coursekit.transfer.cross_training_table`` names them): mean off-diagonal error of the
    examples (``cross``), amplified in the RMS reading (``amplified``) and by the literal
    formula (``literal``), and the mean error of the two noise rows (``noise_06``, ``noise_10``)."""
    models = list(models)

    def cross(suffix: str) -> float:
        rows = table4.loc[[f"Distorted for {m}{suffix}" for m in models]].set_axis(models, axis=0)
        return float(_off_diagonal(rows, models, models).mean())

    return {"cross": cross(""), "amplified": cross(" amplified to stddev=0.1"),
            "literal": cross(" amplified to stddev=0.1 (literal formula)"),
            "noise_06": float(table4.loc["Gaussian noise with stddev=0.06"].mean()),
            "noise_10": float(table4.loc["Gaussian noise with stddev=0.1"].mean())}


def cross_training_sentence(s: Mapping) -> str:
    """The Table 4 summary of ``cross_training_summary`` as Markdown."""
    return (
        f"Across models and training sets (off the diagonal), the test-set adversarial examples "
        f"cause {100 * s['cross']:.1f}% errors on average against {100 * s['noise_06']:.1f}% for "
        f"Gaussian noise of stddev 0.06; amplified to a per-pixel RMS of 0.1 they cause "
        f"{100 * s['amplified']:.1f}% (noise of stddev 0.1: {100 * s['noise_10']:.1f}%). With the "
        f"literal formula they cause {100 * s['literal']:.1f}%."
    )


def regulariser_sentences(ours, baseline: str = "weight decay", claim_row: str | None = "adversarial pool",
                          claim_error: float = 0.012) -> str:
    """Chapter 6's comparison as Markdown: each row of ``ours`` (columns "test error",
    "av. min. distortion", "product of layer bounds") against the ``baseline`` row, and
    whether the paper's claim (``claim_row`` reaches a test error below ``claim_error``) holds;
    ``claim_row=None`` leaves the verdict out."""
    base = ours.loc[baseline]
    lines = []
    for name in ours.index.drop(baseline):
        row = ours.loc[name]
        lines.append(
            f"- **{name}**: test error {100 * row['test error']:.2f}% "
            f"({100 * (row['test error'] - base['test error']):+.2f} points vs {baseline}), minimum "
            f"distortion ×{row['av. min. distortion'] / base['av. min. distortion']:.2f}, product of "
            f"bounds ×{row['product of layer bounds'] / base['product of layer bounds']:.2g}."
        )
    if claim_row is None:
        return "\n".join(lines)
    error = ours.loc[claim_row, "test error"]
    claim = "holds" if error < claim_error else "does not hold"
    return "\n".join(lines) + (
        f"\n\nThe paper's claim of a test error below {100 * claim_error:.1f}% with the {claim_row} "
        f"**{claim}** in this run ({100 * error:.2f}%)."
    )


RECORDED = "paper scale (recorded)"


def with_recorded(table, record, measures: list[str]):
    """``table`` with, after each measure's column, a column "paper scale (recorded)" read from
    ``record`` (a ``coursekit.records.Record``; rows matched by name, NaN where it lacks one).

    ``table``: a DataFrame with plain columns (one measure: the new column is named
    "paper scale (recorded)"; several: "<measure>, paper scale (recorded)") or ``side_by_side``'s
    two-level columns ((measure, "paper scale (recorded)") after (measure, "ours")). The
    record's provenance line is kept in ``result.attrs["recorded"]`` for the caption.
    """
    import pandas as pd

    recorded = record.table()
    missing = [m for m in measures if m not in recorded.columns]
    if missing:
        raise ValueError(f"measures {missing} are not in record {record.name!r} (it has {list(recorded.columns)})")
    result = table.copy()
    for measure in measures:
        values = recorded[measure].reindex(result.index)
        if isinstance(result.columns, pd.MultiIndex):
            key, after = (measure, RECORDED), (measure, "ours")
        else:
            key, after = (RECORDED if len(measures) == 1 else f"{measure}, {RECORDED}"), measure
        if after not in result.columns:
            raise ValueError(f"table has no column {after!r} to put the recorded {measure!r} beside")
        result.insert(list(result.columns).index(after) + 1, key, values.to_numpy())
    result.attrs["recorded"] = record.caption()
    return result


def paired_error_change(wrong_a, wrong_b) -> dict:
    """Two classifiers' errors on the same images, compared image by image (exact McNemar test).

    ``wrong_a``, ``wrong_b``: bool [N] (tensors or arrays), True where each model misclassifies
    image i. Returns {"n", "error_a", "error_b" (shares), "only_a", "only_b" (images only that
    model gets wrong), "p_value"}: the two-sided binomial test of only_a against
    Binomial(only_a + only_b, 1/2), the chance that the discordant images split at least this
    unevenly if the two models were equally good (1.0 when there are none).
    """
    import numpy as np
    from scipy.stats import binomtest

    a, b = (np.asarray(getattr(w, "cpu", lambda: w)()) for w in (wrong_a, wrong_b))
    if a.dtype != bool or b.dtype != bool or a.ndim != 1 or a.shape != b.shape or not len(a):
        raise ValueError(f"wrong_a and wrong_b must be bool vectors of the same non-zero length, "
                         f"got {a.dtype} {a.shape} and {b.dtype} {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"n": len(a), "error_a": float(a.mean()), "error_b": float(b.mean()),
            "only_a": only_a, "only_b": only_b, "p_value": float(p_value)}
