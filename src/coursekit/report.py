"""Tables with our numbers beside the paper's (never mixed), and sentences that compare them."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from numpy.typing import ArrayLike
    from pandas.io.formats.style import Styler
    from torch import nn

    from .attack import AttackResult
    from .findings import Finding
    from .records import Record
    from .units import BasisComparison


__all__ = [
    "side_by_side",
    "format_percent",
    "difference_phrase",
    "format_rates",
    "p_text",
    "units_verdict",
    "robustness_table",
    "transfer_summary",
    "transfer_sentence",
    "cross_training_summary",
    "cross_training_sentence",
    "HEADLINE_ROWS",
    "transfer_headline",
    "transfer_findings",
    "noise_reading_table",
    "noise_reading_sentence",
    "distortion_column",
    "distortion_display",
    "distortion_findings",
    "distortion_sentence",
    "regulariser_sentences",
    "RECORDED",
    "with_recorded",
    "paired_error_change",
    "rate_interval",
    "proportion_interval",
    "percent_interval",
    "units_numbers",
    "units_paragraph",
    "units_table",
    "no_difference_verdict",
    "units_findings",
    "error_paragraph",
    "error_findings",
    "printed_percent",
    "convergence_table",
    "convergence_paragraph",
]


def side_by_side(ours: pd.DataFrame, paper: Mapping[str, Sequence[float]], measures: Sequence[str]) -> pd.DataFrame:
    """A DataFrame with, for each measure, a column of ours and a column headed "paper".

    ``ours``: DataFrame indexed by row name with one column per measure; ``paper``: {row:
    tuple of the paper's values in the order of ``measures``} (rows the paper lacks get NaN).

    Used in chapters 1 (book/01_data_and_models.md) and 4 (book/04_transfer.md).
    """
    import pandas as pd

    columns = {}
    for i, measure in enumerate(measures):
        columns[(measure, "ours")] = ours[measure]
        columns[(measure, "paper")] = pd.Series({row: paper[row][i] for row in ours.index if row in paper}, dtype=float)
    table = pd.DataFrame(columns, index=ours.index)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def format_percent(table: pd.DataFrame, digits: int = 1, columns: Sequence[Hashable] | None = None) -> Styler:
    """Display helper: a Styler showing fractions as percentages (NaN as a dash).

    Used in chapter 1 (book/01_data_and_models.md).
    """

    def fmt(value: float) -> str:
        if value != value:
            return "–"
        return f"{100 * value:.{digits}f}%"

    return table.style.format(fmt, subset=columns)


def difference_phrase(ours: float, paper: float, unit: str = "points", scale: float = 100.0, digits: int = 1) -> str:
    """ "2.3 points above the paper's" / "within 0.1 points of the paper's"."""
    diff = (ours - paper) * scale
    if abs(diff) < 10 ** (-digits):
        return "the same as the paper's"
    word = "above" if diff > 0 else "below"
    return f"{abs(diff):.{digits}f} {unit} {word} the paper's"


def format_rates(table: pd.DataFrame, digits: int = 1, plain: Mapping[str, str] | None = None) -> Styler:
    """A Styler: every column as a percentage, except the columns whose (top-level) name is
    in ``plain``, which get that format string (e.g. ``{"Av. distortion": "{:.3f}"}``).

    Used in chapter 4 (book/04_transfer.md).
    """
    plain = dict(plain or {})

    def top(column: Hashable) -> Hashable:
        return column[0] if isinstance(column, tuple) else column

    rates = [c for c in table.columns if top(c) not in plain]
    styler = format_percent(table, digits, columns=rates)
    for name, fmt in plain.items():
        columns = [c for c in table.columns if top(c) == name]
        if columns:
            styler = styler.format(fmt, subset=columns, na_rep="–")
    return styler


def p_text(p: float, alpha: float = 0.05) -> str:
    """A p-value with two significant digits, or three where two would round it onto or across
    ``alpha`` (0.0497 → "0.0497", not "0.05", when ``alpha`` is 0.05)."""
    text = f"{p:.2g}"
    rounded = float(text)
    return text if rounded != alpha and (rounded < alpha) == (p < alpha) else f"{p:.3g}"


def units_verdict(report: BasisComparison, model_name: str, alpha: float = 0.05) -> str:
    """Markdown bullets, one per measure of a ``coursekit.units`` comparison report: natural vs
    random means, the difference of means with its 95% bootstrap interval (and whether that
    contains 0), and the Mann–Whitney p value (whether single units' scores tend to rank higher
    or lower at level ``alpha``). The two tests ask different questions (means, ranks), so each
    is reported in its own words.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    lines = []
    for measure in ("purity", "similarity"):
        t = report.tests[measure]
        if t["ci low"] <= 0 <= t["ci high"]:
            interval = "it contains 0: no difference of means established"
        else:
            interval = f"it excludes 0: single units {'higher' if t['ci low'] > 0 else 'lower'} on average"
        if t["p value"] < alpha:
            ranks = f"significant at {alpha:g}: single units' scores tend to rank {_higher(t)}"
        else:
            ranks = f"not significant at {alpha:g}"
        lines.append(
            f"- **{measure}** ({model_name}): natural {t['natural mean']:.3f} vs random "
            f"{t['random mean']:.3f}; difference of means {t['difference']:+.3f}, 95% interval "
            f"{t['ci low']:+.3f} to {t['ci high']:+.3f} ({interval}); Mann–Whitney "
            f"p = {p_text(t['p value'], alpha)} ({ranks})."
        )
    return "\n".join(lines)


def _higher(test: Mapping[str, float]) -> str:
    return "higher" if test["difference"] > 0 else "lower"


def robustness_table(
    models: Mapping[str, nn.Module],
    error_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    attack_images: tuple[torch.Tensor, torch.Tensor],
    *,
    distortion_label: str = "av. min. distortion",
    bounds_input: tuple[int, int, int] | None = None,
    **attack_options: Any,
) -> tuple[pd.DataFrame, dict[str, AttackResult]]:
    """Per model (rows): its error rate on each named set, the mean minimum distortion of its
    adversarial examples, and (with ``bounds_input`` = (C, H, W)) the product of its layers'
    Lipschitz bounds. The table of Table 3 and of the adversarial-training chapter.

    ``error_sets``: {column: (x, y)}; ``attack_images``: (x, y) attacked with
    ``coursekit.transfer.adversarial_examples`` (cached; ``attack_options`` go to it).
    Returns (DataFrame, {model name: AttackResult}).

    Used in chapters 4 (book/04_transfer.md) and 6 (book/06_adversarial_training.md).
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


def _off_diagonal(table: pd.DataFrame, rows: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """The entries (row i, column j) with i ≠ j of ``table.loc[rows, columns]`` (square), [n(n−1)]."""
    import numpy as np

    values = table.loc[list(rows), list(columns)].to_numpy(dtype=float)
    return values[~np.eye(len(rows), dtype=bool)]


def transfer_summary(ours: pd.DataFrame, paper: pd.DataFrame, models: Iterable[str]) -> dict[str, float | str]:
    """Chapter 4's headline statistics of Table 2, ours and the paper's.

    ``ours``: ``transfer_table(...).errors`` (rows: the source ``models``, then
    "Gaussian noise matched to <model>" rows); ``paper``: the paper's errors as a DataFrame
    (rows and columns: ``models``). Returns a dict of fractions: the mean off-diagonal
    transfer rate (``ours``, ``paper``), that of the matched noise (``matched``), the model least
    fooled by the others' examples (``least_fooled``, ``least_rate``, ``paper_least_fooled``,
    ``paper_least_rate``), and the mean rate between two softmax models ("FC10(…)") and
    between the other pairs (``softmax``/``other``, ``paper_softmax``/``paper_other``).

    Used in chapter 4 (book/04_transfer.md).
    """
    import numpy as np

    models = list(models)
    matched_rows = [f"Gaussian noise matched to {m}" for m in models]
    softmax = np.array([m.startswith("FC10(") for m in models])
    off = ~np.eye(len(models), dtype=bool)
    both = (softmax[:, None] & softmax[None, :])[off]

    def column_means(table: pd.DataFrame) -> dict[str, float]:
        return {m: table.loc[[r for r in models if r != m], m].mean() for m in models}

    ours_means, paper_means = column_means(ours), column_means(paper)
    ours_off, paper_off = _off_diagonal(ours, models, models), _off_diagonal(paper, models, models)
    least, paper_least = min(ours_means, key=ours_means.__getitem__), min(paper_means, key=paper_means.__getitem__)
    return {
        "ours": ours_off.mean(),
        "paper": paper_off.mean(),
        "matched": _off_diagonal(ours.loc[matched_rows].set_axis(models, axis=0), models, models).mean(),
        "least_fooled": least,
        "least_rate": ours_means[least],
        "paper_least_fooled": paper_least,
        "paper_least_rate": paper_means[paper_least],
        "softmax": ours_off[both].mean(),
        "other": ours_off[~both].mean(),
        "paper_softmax": paper_off[both].mean(),
        "paper_other": paper_off[~both].mean(),
    }


def transfer_sentence(s: Mapping[str, float | str]) -> str:
    """The Table 2 summary of ``transfer_summary`` as Markdown.

    Used in chapter 4 (book/04_transfer.md).
    """
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


def cross_training_summary(table4: pd.DataFrame, models: Iterable[str]) -> dict[str, float]:
    """Chapter 4's headline statistics of Table 4 (rows named as
    ``coursekit.transfer.cross_training_table`` names them): mean off-diagonal error of the
    examples (``cross``), amplified in the RMS reading (``amplified``) and by the literal
    formula (``literal``), and the mean error of the two noise rows (``noise_06``, ``noise_10``).

    Used in chapter 4 (book/04_transfer.md).
    """
    models = list(models)

    def cross(suffix: str) -> float:
        rows = table4.loc[[f"Distorted for {m}{suffix}" for m in models]].set_axis(models, axis=0)
        return float(_off_diagonal(rows, models, models).mean())

    return {
        "cross": cross(""),
        "amplified": cross(" amplified to stddev=0.1"),
        "literal": cross(" amplified to stddev=0.1 (literal formula)"),
        "noise_06": float(table4.loc["Gaussian noise with stddev=0.06"].mean()),
        "noise_10": float(table4.loc["Gaussian noise with stddev=0.1"].mean()),
    }


def cross_training_sentence(s: Mapping[str, float]) -> str:
    """The Table 4 summary of ``cross_training_summary`` as Markdown.

    Used in chapter 4 (book/04_transfer.md).
    """
    return (
        f"Across models and training sets (off the diagonal), the test-set adversarial examples "
        f"cause {100 * s['cross']:.1f}% errors on average against {100 * s['noise_06']:.1f}% for "
        f"Gaussian noise of stddev 0.06; amplified to a per-pixel RMS of 0.1 they cause "
        f"{100 * s['amplified']:.1f}% (noise of stddev 0.1: {100 * s['noise_10']:.1f}%). With the "
        f"literal formula they cause {100 * s['literal']:.1f}%."
    )


TABLE4_KEY = "Distorted for FC100-100-10"  # the paper's key row of Table 4
TABLE4_SAME, TABLE4_OTHER = "FC123-456-10", "FC100-100-10'"  # trained on P1 (as the source), on P2
HEADLINE_ROWS = (
    "Table 2: examples, off the diagonal",
    "Table 2: noise of the same size",
    f"Table 4: FC100-100-10's examples on {TABLE4_SAME} (same half)",
    f"Table 4: FC100-100-10's examples on {TABLE4_OTHER} (other half)",
)


def transfer_headline(
    adversarial_pairs: ArrayLike, noise_pairs: ArrayLike, table4: pd.DataFrame, count4: int
) -> pd.DataFrame:
    """Chapter 4's headline rates with 95% intervals, one row each of ``HEADLINE_ROWS``:
    Table 2's off-diagonal transfer rate and that of noise of the same size per image (from
    ``transfer.fooled_pairs``: a bootstrap over images, ``rate_interval``), and Table 4's key
    contrast, the examples of FC100-100-10 on the model trained on the same half and on the one
    trained on the other half (``cross_training_table``'s cells on ``count4`` images, Wilson
    intervals). Returns a pandas DataFrame with columns "rate", "low", "high" (fractions).

    Used in chapter 4 (book/04_transfer.md).
    """
    import pandas as pd

    rows = [rate_interval(adversarial_pairs), rate_interval(noise_pairs)]
    for model in (TABLE4_SAME, TABLE4_OTHER):
        rate = float(table4.loc[TABLE4_KEY, model])
        rows.append((rate, *proportion_interval(rate, count4)))
    return pd.DataFrame(rows, index=list(HEADLINE_ROWS), columns=["rate", "low", "high"])


def _table2_paper_off_diagonal() -> float:
    import numpy as np

    from .paper import TABLE2, TABLE2_COLUMNS

    models = list(TABLE2_COLUMNS)
    values = np.array([TABLE2[m][: len(models)] for m in models])
    return float(values[~np.eye(len(models), dtype=bool)].mean())


def _contrast(rows: pd.DataFrame) -> tuple[str, str]:
    """(ours in words, verdict) of Table 4's contrast from the two Table 4 rows of a headline."""
    from .findings import AGREES, DIFFERS, UNDECIDED

    same, other = rows.loc[HEADLINE_ROWS[2]], rows.loc[HEADLINE_ROWS[3]]
    if same["low"] > other["high"]:
        return "same half fooled more, intervals apart", AGREES
    if other["low"] > same["high"]:
        return "other half fooled more, intervals apart", DIFFERS
    return "the two intervals overlap", UNDECIDED


def transfer_findings(headline: pd.DataFrame, larger: Record | None = None) -> list[Finding]:
    """Chapter 4's "What this run found" from ``transfer_headline``'s table: the transfer rate
    of Table 2 and of Table 4's key cells beside the paper's, whether the examples fool other
    models more than noise of the same size, and whether Table 4's contrast (same half against
    other half) shows; ``larger``: the same table recorded at a larger profile (record
    ``04_headline``), or None ("not recorded yet").

    Used in chapter 4 (book/04_transfer.md).
    """
    from .findings import AGREES, DIFFERS, UNDECIDED, Finding, interval_verdict
    from .paper import TABLE4, TABLE4_COLUMNS

    def interval(table: pd.DataFrame, row: str) -> str:
        return percent_interval(*table.loc[row, ["rate", "low", "high"]])

    def beyond_noise(table: pd.DataFrame) -> tuple[str, str]:
        adv, noise = table.loc[HEADLINE_ROWS[0]], table.loc[HEADLINE_ROWS[1]]
        words = f"{100 * adv['rate']:.1f}% against {100 * noise['rate']:.1f}%"
        if adv["low"] > noise["high"]:
            return words, AGREES
        return words, DIFFERS if adv["high"] < noise["low"] else UNDECIDED

    papers = {
        HEADLINE_ROWS[0]: _table2_paper_off_diagonal(),
        HEADLINE_ROWS[2]: TABLE4[TABLE4_KEY][TABLE4_COLUMNS.index(TABLE4_SAME)],
        HEADLINE_ROWS[3]: TABLE4[TABLE4_KEY][TABLE4_COLUMNS.index(TABLE4_OTHER)],
    }
    big = larger.table() if larger is not None else None
    rows = []
    for row, paper in papers.items():
        verdict = interval_verdict(paper, *headline.loc[row, ["low", "high"]])
        more = "not recorded yet"
        if big is not None:
            more = f"{interval(big, row)}: {interval_verdict(paper, *big.loc[row, ['low', 'high']])}"
        rows.append(Finding(row, interval(headline, row), f"{100 * paper:.1f}%", verdict, more))
    words, verdict = beyond_noise(headline)
    more = "not recorded yet" if big is None else "{}: {}".format(*beyond_noise(big))
    rows.insert(
        1,
        Finding(
            "Table 2: examples fool other models more than noise of the same size", words, "yes (§4.2)", verdict, more
        ),
    )
    words, verdict = _contrast(headline)
    more = "not recorded yet" if big is None else "{}: {}".format(*_contrast(big))
    rows.append(
        Finding(
            "Table 4: same half fooled more than the other half",
            words,
            f"yes ({100 * papers[HEADLINE_ROWS[2]]:.1f}% against {100 * papers[HEADLINE_ROWS[3]]:.1f}%)",
            verdict,
            more,
        )
    )
    return rows


def noise_reading_table(readings: pd.DataFrame, paper: Mapping[float, Sequence[float]]) -> pd.DataFrame:
    """``transfer.noise_readings``' table with, after each stddev's two readings, a row
    (stddev, "paper") of the paper's error rates (``paper``: {stddev: one rate per model column,
    in the table's column order}); "realised RMS" is NaN there (the paper does not measure it).

    Used in chapter 4 (book/04_transfer.md).
    """
    import pandas as pd

    models = [c for c in readings.columns if c != "realised RMS"]
    rows = []
    for stddev in dict.fromkeys(readings.index.get_level_values(0)):
        if stddev not in paper or len(paper[stddev]) != len(models):
            raise ValueError(f"paper needs {len(models)} rates for stddev {stddev!r} (one per model {models})")
        part = readings.xs(stddev, level=0, drop_level=False)
        values = dict(zip(models, paper[stddev]), **{"realised RMS": float("nan")})
        extra = pd.DataFrame([values], index=pd.MultiIndex.from_tuples([(stddev, "paper")], names=readings.index.names))
        rows += [part, extra]
    return pd.concat(rows)[list(readings.columns)]


def noise_reading_sentence(tables: Mapping[str, pd.DataFrame]) -> str:
    """What the two readings of the paper's noise rows show, in words, for each of ``tables``
    ({name: ``noise_reading_table``'s table}): the mean error over the models and stddevs under
    each reading and in the paper, how much of the gap to the paper the σ-before-clipping
    reading closes, and what remains.

    Used in chapter 4 (book/04_transfer.md).
    """
    from .transfer import NOISE_READING_LABELS

    stated, after = NOISE_READING_LABELS["stddev"], NOISE_READING_LABELS["rms"]
    parts, remaining = [], []
    for name, table in tables.items():
        models = [c for c in table.columns if c != "realised RMS"]
        mean = {r: 100 * float(table.xs(r, level=1)[models].to_numpy().mean()) for r in (stated, after, "paper")}
        gap = mean[after] - mean["paper"]
        closed = (mean[after] - mean[stated]) / gap if gap > 0 else float("nan")
        rms = table.xs(stated, level=1)["realised RMS"]
        remaining.append(mean[stated] - mean["paper"])
        parts.append(
            f"{name}: read as σ before clipping, the noise rows fool the models {mean[stated]:.1f}% of "
            f"the time on average (realised RMS {', '.join(f'{v:.3f}' for v in rms)}), as RMS after "
            f"clipping {mean[after]:.1f}%, in the paper {mean['paper']:.1f}%"
            + (f"; the σ reading closes {100 * closed:.0f}% of the gap." if gap > 0 else ".")
        )
    left = max(remaining)
    verdict = (
        f"So the reading explains part of the gap, not all of it: under the σ reading a gap of up "
        f"to {left:.1f} points remains, which this experiment does not explain (our models are not "
        f"the paper's networks, and the paper does not say more about its noise)."
        if left > 2
        else "So the reading explains the gap: read as σ before clipping, our noise rows match the paper's."
    )
    return " ".join(parts) + " " + verdict


def distortion_column(
    attacks: Mapping[str, AttackResult], paper: Mapping[str, float], level: float = 0.95
) -> pd.DataFrame:
    """Table 1's last column, ours beside the paper's (chapter 3b).

    ``attacks``: {model: ``min_distortion_attack``'s AttackResult on N images}; ``paper``:
    {model: the paper's average minimum distortion} (every model of ``attacks``). Per model:
    "ours" the mean distortion of the images whose attack succeeded (per-pixel RMS, pixels in
    [0, 1]), its ``level`` interval "low"/"high" (mean ± z·sd/√n, the normal approximation over
    the n images), "paper", "ours / paper", "inside" (1.0 when the paper's value lies in the
    interval, else 0.0), "reached" (share of images with an example) and "images" (N).

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    import math

    import pandas as pd
    import torch
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    missing = [name for name in attacks if name not in paper]
    if missing:
        raise ValueError(f"paper has no value for {missing}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    rows = {}
    for name, result in attacks.items():
        d = result.distortion.detach().to("cpu", dtype=torch.float64)
        found = d[d.isfinite()]
        if len(found) < 2:
            raise ValueError(f"fewer than two attacks on {name!r} succeeded: no interval to give")
        mean = found.mean().item()
        half = z * found.std().item() / math.sqrt(len(found))
        low, high = mean - half, mean + half
        rows[name] = {
            "ours": mean,
            "low": low,
            "high": high,
            "paper": float(paper[name]),
            "ours / paper": mean / float(paper[name]),
            "inside": float(low <= float(paper[name]) <= high),
            "reached": len(found) / len(d),
            "images": float(len(d)),
        }
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    return table


def distortion_display(column: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``distortion_column``'s table as a learner reads it: "ours (95% interval)" as text, the
    paper's value in its own column, and "ours / paper".

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    import pandas as pd

    ours = [f"{row.ours:.{digits}f} ({row.low:.{digits}f}–{row.high:.{digits}f})" for row in column.itertuples()]
    return pd.DataFrame(
        {
            "ours (95% interval)": ours,
            "paper": [f"{v:.{digits - 1}f}" for v in column["paper"]],
            "ours / paper": [f"{v:.2f}" for v in column["ours / paper"]],
        },
        index=column.index,
    )


def distortion_sentence(column: pd.DataFrame) -> str:
    """The headline of Table 1's last column in one clause, with its verdict: the range of ours
    over the paper's and for how many models the paper's value lies inside our interval.
    ``column``: ``distortion_column``'s table, or any with columns "ours", "low", "high" and
    "paper" (e.g. a recorded run's, joined with the paper's values).

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    from .findings import AGREES, DIFFERS

    ratio = column["ours"] / column["paper"]
    inside = int(((column["low"] <= column["paper"]) & (column["paper"] <= column["high"])).sum())
    verdict = (
        AGREES if inside == len(column) else DIFFERS if inside == 0 else "agrees for some models, differs for others"
    )
    return (
        f"our averages are {ratio.min():.2f} to {ratio.max():.2f} times the paper's, and the "
        f"paper's value lies inside our 95% interval for {inside} of the {len(column)} models "
        f"(verdict: {verdict})"
    )


def distortion_findings(column: pd.DataFrame, larger: Record | None = None) -> list[Finding]:
    """Chapter 3b's "What this run found": one ``Finding`` per model of ``distortion_column``'s
    table, ours with its interval beside the paper's and the verdict of ``interval_verdict``;
    ``larger``: a recorded larger run of the same column (``benchmarks/records/
    03b_minimum_distortion.py``), or None, and then each row says "not recorded yet".

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    from .findings import Finding, interval_verdict

    recorded = larger.table() if larger is not None else None
    rows = []
    for name, row in column.iterrows():
        if recorded is None:
            big = "not recorded yet"
        elif name not in recorded.index:
            big = "not in the record"
        else:
            r = recorded.loc[name]
            verdict = interval_verdict(row["paper"], r["low"], r["high"])
            big = f"{r['ours']:.4f} ({r['low']:.4f}–{r['high']:.4f}): {verdict}"
        rows.append(
            Finding(
                f"{name}: average minimum distortion",
                f"{row['ours']:.4f} ({row['low']:.4f}–{row['high']:.4f})",
                f"{row['paper']:g}",
                interval_verdict(row["paper"], row["low"], row["high"]),
                big,
            )
        )
    return rows


def regulariser_sentences(
    ours: pd.DataFrame,
    baseline: str = "weight decay",
    claim_row: str | None = "adversarial pool",
    claim_error: float = 0.012,
) -> str:
    """Chapter 6's comparison as Markdown: each row of ``ours`` (columns "test error",
    "av. min. distortion", "product of layer bounds") against the ``baseline`` row, and
    whether the paper's claim (``claim_row`` reaches a test error below ``claim_error``) holds;
    ``claim_row=None`` leaves the verdict out.

    Used in chapter 6 (book/06_adversarial_training.md).
    """
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


def with_recorded(table: pd.DataFrame, record: Record, measures: Sequence[str]) -> pd.DataFrame:
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
        key: str | tuple[str, str]
        after: str | tuple[str, str]
        if isinstance(result.columns, pd.MultiIndex):
            key, after = (measure, RECORDED), (measure, "ours")
        else:
            key, after = (RECORDED if len(measures) == 1 else f"{measure}, {RECORDED}"), measure
        if after not in result.columns:
            raise ValueError(f"table has no column {after!r} to put the recorded {measure!r} beside")
        result.insert(list(result.columns).index(after) + 1, key, values.to_numpy())
    result.attrs["recorded"] = record.caption()
    return result


def paired_error_change(wrong_a: torch.Tensor | ArrayLike, wrong_b: torch.Tensor | ArrayLike) -> dict[str, int | float]:
    """Two classifiers' errors on the same images, compared image by image (exact McNemar test).

    ``wrong_a``, ``wrong_b``: bool [N] (tensors or arrays), True where each model misclassifies
    image i. Returns {"n", "error_a", "error_b" (shares), "only_a", "only_b" (images only that
    model gets wrong), "p_value"}: the two-sided binomial test of only_a against
    Binomial(only_a + only_b, 1/2), the chance that the discordant images split at least this
    unevenly if the two models were equally good (1.0 when there are none).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import numpy as np
    from scipy.stats import binomtest

    a, b = (np.asarray(getattr(w, "cpu", lambda: w)()) for w in (wrong_a, wrong_b))
    if a.dtype != bool or b.dtype != bool or a.ndim != 1 or a.shape != b.shape or not len(a):
        raise ValueError(
            f"wrong_a and wrong_b must be bool vectors of the same non-zero length, "
            f"got {a.dtype} {a.shape} and {b.dtype} {b.shape}"
        )
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {
        "n": len(a),
        "error_a": float(a.mean()),
        "error_b": float(b.mean()),
        "only_a": only_a,
        "only_b": only_b,
        "p_value": float(p_value),
    }


def rate_interval(
    fooled: ArrayLike, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """A rate with a bootstrap interval over images: (mean, low, high), fractions in [0, 1].

    ``fooled``: array-like [N] or [N, P] of 0/1 per image (and per pair of models, e.g. the
    off-diagonal (source, target) pairs of a transfer table), NaN where a pair was not
    measured. Each image's values are averaged over its measured pairs (images with none are
    left out), then over the images; the interval is scipy's percentile bootstrap over images
    (pairs share their image, so images are the independent units). All images equal: the
    interval is the mean itself.

    Used in chapter 4 (book/04_transfer.md).
    """
    import numpy as np
    from scipy import stats

    values = np.asarray(fooled, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"fooled must be [N] or [N, P], got shape {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    measured = ~np.isnan(values).all(1)
    if not measured.any():
        raise ValueError("fooled has no measured value: no rate to give")
    if np.nanmin(values) < 0 or np.nanmax(values) > 1:
        raise ValueError("fooled must hold 0/1 values (or rates in [0, 1]) and NaN")
    per_image = np.nanmean(values[measured], axis=1)
    mean = float(per_image.mean())
    if np.ptp(per_image) == 0:
        return mean, mean, mean
    result = stats.bootstrap(
        (per_image,),
        np.mean,
        confidence_level=level,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def proportion_interval(rate: float, count: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson interval (low, high) of a rate measured on ``count`` images (scipy.stats.binomtest);
    ``rate`` in [0, 1] must be a whole number of images out of ``count``.
    """
    from scipy import stats

    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    k = round(rate * count)
    if abs(k - rate * count) > 1e-6 * count:
        raise ValueError(f"rate {rate!r} is not a whole number of {count} images")
    interval = stats.binomtest(k, count).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


def percent_interval(rate: float, low: float, high: float, digits: int = 1, level: float = 0.95) -> str:
    """ "26.0% (95% CI 20.4–32.5%)": a rate and its ``level`` interval (fractions) as percentages.

    Used in chapter 4 (book/04_transfer.md).
    """
    return f"{100 * rate:.{digits}f}% ({100 * level:g}% CI {100 * low:.{digits}f}–{100 * high:.{digits}f}%)"


def _position(value: float, low: float, high: float) -> float:
    """Where ``value`` lies between ``low`` (0) and ``high`` (1)."""
    return (value - low) / (high - low) if high != low else float("nan")


def units_numbers(report: BasisComparison, measure: str = "purity") -> dict[str, int | float]:
    """The numbers chapter 2's paragraph needs from one ``coursekit.units`` comparison report,
    for one measure ("purity" or "similarity"): the mean score of natural directions, random
    directions and the two controls (``natural``, ``random``, ``meaningless`` = random images,
    ``meaningful`` = class means), where each kind lies between the controls (``natural_position``,
    ``random_position``: 0 = like random images, 1 = like class means), the test (``difference``,
    ``ci_low``, ``ci_high``, ``p``), the largest difference the 95% interval leaves possible
    (``largest``, and ``largest_share`` of the gap between the controls), and the sample sizes
    (``units``: live units scored, ``directions``: random directions)."""
    if measure not in ("purity", "similarity"):
        raise ValueError(f"measure must be 'purity' or 'similarity', got {measure!r}")
    import numpy as np

    means = {kind: float(np.mean(scores[measure])) for kind, scores in report.scores.items()}
    low, high = means["random images"], means["class mean"]
    t = report.tests[measure]
    largest = max(abs(t["ci low"]), abs(t["ci high"]))
    return {
        "natural": means["natural"],
        "random": means["random"],
        "meaningless": low,
        "meaningful": high,
        "natural_position": _position(means["natural"], low, high),
        "random_position": _position(means["random"], low, high),
        "difference": t["difference"],
        "ci_low": t["ci low"],
        "ci_high": t["ci high"],
        "p": t["p value"],
        "largest": largest,
        "largest_share": largest / (high - low) if high != low else float("nan"),
        "units": len(report.scores["natural"][measure]),
        "directions": len(report.scores["random"][measure]),
    }


def _multiple_tests_sentence(significant: Sequence[float], tests: int, alpha: float) -> str:
    """How many of the ``significant`` p values (those below ``alpha``) of ``tests`` tests remain
    significant at the Bonferroni level alpha/tests, and how often chance alone makes at least one
    of ``tests`` independent tests significant at level ``alpha``."""
    strict = alpha / tests
    kept = [p for p in significant if p < strict]
    return (
        f"With {tests} tests at the {alpha:g} level, chance alone makes at least one significant "
        f"{1 - (1 - alpha) ** tests:.0%} of the time (if the tests were independent); at the "
        f"Bonferroni level {alpha:g}/{tests} = {strict:.3g}, "
        + (
            f"{len(kept)} of the {len(significant)} remain{'s' if len(kept) == 1 else ''} significant."
            if kept
            else "none of them remains significant."
        )
    )


def units_paragraph(reports: Mapping[str, BasisComparison], alpha: float = 0.05) -> str:
    """Chapter 2's "What the measurement says", from ``{model name: comparison report}``: where
    units and random directions lie between the controls (label purity; "far more coherent than
    random images" when every one lies at least half-way up), which natural-vs-random
    tests (both measures) are significant at ``alpha`` and by how much, and for the others the
    largest difference their 95% intervals leave possible, with the sample sizes behind them.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    if not reports:
        raise ValueError("reports is empty")
    names = list(reports)
    purity = {name: units_numbers(reports[name], "purity") for name in names}
    tests = {(name, m): units_numbers(reports[name], m) for name in names for m in ("purity", "similarity")}

    def each(key: str, fmt: str) -> str:
        return " and ".join(fmt.format(purity[n][key]) for n in names)

    def gap(t: Mapping[str, float]) -> float:
        return t["meaningful"] - t["meaningless"]

    first = purity[names[0]]
    parts = [
        f"On label purity, the top-{reports[names[0]].k} sets of single units lie "
        f"{each('natural_position', '{:.0%}')} of the way from the random-image control "
        f"({first['meaningless']:.2f}) to the class-mean control ({first['meaningful']:.2f}), "
        f"those of random directions {each('random_position', '{:.0%}')} ({' and '.join(names)})."
    ]
    lowest = min(min(t["natural_position"], t["random_position"]) for t in purity.values())
    parts.append(
        "Both kinds of direction are thus far more coherent than random images, in every model: "
        "that part of the paper's picture holds."
        if lowest >= 0.5
        else f"Not every kind is far from random images (the lowest lies {lowest:.0%} of the way)."
    )
    significant = {key: t for key, t in tests.items() if t["p"] < alpha}
    others = {key: t for key, t in tests.items() if t["p"] >= alpha}
    for (name, measure), t in significant.items():
        parts.append(
            f"In {name}, the Mann–Whitney test finds single units' {measure} scores ranking "
            f"{_higher(t)} (p = {p_text(t['p'], alpha)}); their mean differs by "
            f"{t['difference']:+.3f} ({abs(t['difference']) / gap(t):.0%} of the gap between the "
            f"controls; 95% interval {t['ci_low']:+.3f} to {t['ci_high']:+.3f})."
        )
    if significant and len(tests) > 1:
        parts.append(_multiple_tests_sentence([t["p"] for t in significant.values()], len(tests), alpha))
    if others:
        (w_name, w_measure), worst = max(others.items(), key=lambda kv: kv[1]["largest"] / gap(kv[1]))
        which = "The other tests are not" if significant else "In neither model nor measure is the Mann–Whitney test"
        parts.append(
            f"{which} significant (p ≥ {p_text(min(t['p'] for t in others.values()), alpha)}); with "
            f"{each('units', '{}')} live units and {first['directions']} random directions, the 95% "
            f"intervals still allow differences of up to {worst['largest']:.3f} ({w_measure}, "
            f"{w_name}), {worst['largest'] / gap(worst):.0%} of the gap between the controls."
        )
    return " ".join(parts)


def units_table(reports: Mapping[str, BasisComparison]) -> pd.DataFrame:
    """Chapter 2's key result, one row per model of ``{model name: comparison report}``: the
    number of live units and of random directions scored, the mean label purity of each kind's
    top-k images and of random sets of k images, the difference of means single units − random
    directions with its 95% bootstrap interval, and the Mann–Whitney p value. What the chapter
    computes, and what ``benchmarks/records/02_unit_semantics.py`` records at a larger profile.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    import pandas as pd

    if not reports:
        raise ValueError("reports is empty")
    rows = {}
    for name, report in reports.items():
        n = units_numbers(report, "purity")
        rows[name] = {
            "live units": n["units"],
            "random directions": n["directions"],
            "k": report.k,
            "units purity": n["natural"],
            "random purity": n["random"],
            "random images purity": n["meaningless"],
            "difference": n["difference"],
            "ci low": n["ci_low"],
            "ci high": n["ci_high"],
            "p value": n["p"],
        }
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    return table


def no_difference_verdict(low: float, high: float, margin: float) -> str:
    """The verdict on a claim of "no difference" from the 95% interval [low, high] of a difference
    and the ``margin`` (> 0) below which a difference does not matter: "agrees" when the whole
    interval lies within (−margin, margin), "differs" when it lies wholly beyond ±margin, and "too
    few samples to say" otherwise (the interval leaves both a negligible and a real difference
    possible)."""
    from .findings import AGREES, DIFFERS, UNDECIDED

    if not low <= high:
        raise ValueError(f"need low <= high, got {low!r}, {high!r}")
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin!r}")
    if -margin < low and high < margin:
        return AGREES
    if low >= margin or high <= -margin:
        return DIFFERS
    return UNDECIDED


def _difference_text(row: Mapping[str, float]) -> str:
    return f"{row['difference']:+.3f} (95% CI {row['ci low']:+.3f} to {row['ci high']:+.3f})"


def units_findings(table: pd.DataFrame, larger: Record | None = None) -> list[Finding]:
    """Chapter 2's "What this run found" from ``units_table`` (this run) and the record of a
    larger run (None: not recorded yet). One row on Figures 1–2 (both kinds of direction far more
    label-pure than random images: more than half-way from them to 1) and one per model on the
    paper's "no distinction", judged by ``no_difference_verdict`` with the margin 1/k: a
    difference of less than one image in k per top-k set is one a look at the figures cannot
    see.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    from .findings import AGREES, DIFFERS, Finding

    if table.empty:
        raise ValueError("table is empty")
    names = list(table.index)
    k = int(table["k"].iloc[0])
    floor = table["random images purity"]
    halfway = all(bool(((table[kind] - floor) / (1 - floor) > 0.5).all()) for kind in ("units purity", "random purity"))
    both = " and ".join
    rows = [
        Finding(
            f"label purity of the top {k} images (Figures 1–2; {both(names)})",
            f"single units {both(f'{v:.2f}' for v in table['units purity'])}, random directions "
            f"{both(f'{v:.2f}' for v in table['random purity'])}; {k} random images "
            f"{both(f'{v:.2f}' for v in floor)}",
            "both kinds of rows share semantic properties (by eye)",
            AGREES if halfway else DIFFERS,
        )
    ]
    recorded = larger.table() if larger is not None else None
    profile = larger.provenance["profile"] if larger is not None else ""
    for name in names:
        row = table.loc[name]
        extra = "not recorded yet"
        if recorded is not None and name in recorded.index:
            other = recorded.loc[name]
            verdict = no_difference_verdict(other["ci low"], other["ci high"], 1 / k)
            extra = (
                f"{_difference_text(other)}, {int(other['random directions']):,} random directions "
                f"({profile} profile): {verdict}"
            )
        rows.append(
            Finding(
                f"single units − random directions, mean purity ({name})",
                _difference_text(row),
                "no distinction (§3)",
                no_difference_verdict(row["ci low"], row["ci high"], 1 / k),
                extra,
            )
        )
    return rows


def error_paragraph(
    ours: pd.DataFrame, paper: Mapping[str, Sequence[float]], models: Iterable[str], *, close: float = 0.005
) -> str:
    """Chapter 1's comparison of Table 1's errors as Markdown: which ``models`` are within
    ``close`` (a fraction: 0.005 = half a point) of the paper's test error, which are above or
    below it, and for each of the latter both errors beside the paper's.

    ``ours``: DataFrame with columns "training error" and "test error" (fractions), indexed by
    model; ``paper``: {model: (training error, test error, ...)} as in ``coursekit.paper.TABLE1``.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    models = list(models)
    missing = [m for m in models if m not in paper or m not in ours.index]
    if missing:
        raise ValueError(f"models {missing} are missing from ours or from paper")
    groups: dict[str, list[str]] = {"within": [], "above": [], "below": []}
    for m in models:
        diff = ours.loc[m, "test error"] - paper[m][1]
        groups["within" if abs(diff) <= close else "above" if diff > 0 else "below"].append(m)

    def pct(value: float) -> str:
        return f"{100 * value:.2f}%"

    def detail(m: str) -> str:
        return (
            f"{m}: test {pct(ours.loc[m, 'test error'])} vs the paper's {pct(paper[m][1])}, "
            f"training {pct(ours.loc[m, 'training error'])} vs {pct(paper[m][0])}"
        )

    parts = []
    if groups["within"]:
        parts.append(f"Within {100 * close:.1f} points of the paper's test error: {', '.join(groups['within'])}.")
    for side in ("above", "below"):
        if groups[side]:
            parts.append(f"{side.capitalize()} it by more: " + "; ".join(detail(m) for m in groups[side]) + ".")
    return " ".join(parts)


ERROR_MEASURES = {"training error": 60_000, "test error": 10_000}  # MNIST's images per measure


def printed_percent(value: float) -> tuple[str, float, float]:
    """A published rate ``value`` (a fraction) as the paper printed it, and the range of rates
    that print so: 0.067 → ("6.7%", 0.0665, 0.0675); 0.0 → ("0%", 0.0, 0.005). The digits are
    those of the shortest decimal form of the percentage (the paper's tables drop trailing
    zeros: "10%", "1.64%")."""
    text = f"{100 * value:.6f}".rstrip("0").rstrip(".")
    decimals = len(text.split(".")[1]) if "." in text else 0
    half = 0.5 * 10.0**-decimals / 100
    return f"{text}%", max(0.0, value - half), value + half


def error_findings(
    ours: pd.DataFrame,
    paper: Mapping[str, Sequence[float]],
    models: Iterable[str],
    *,
    counts: Mapping[str, int] | None = None,
    larger: Record | None = None,
) -> list[Finding]:
    """Chapter 1's "What this run found": one ``Finding`` per model and measure ("training
    error", "test error"), ours with its 95% Wilson interval (``proportion_interval`` over the
    ``counts`` images of each measure, by default MNIST's 60,000 and 10,000), the paper's value,
    and a verdict: "agrees" when our interval meets the range of rates that print as the paper's
    value (``printed_percent``: "0%" is anything below 0.5%), else "differs". ``larger``:
    a recorded larger run with the same columns (``coursekit.findings.recorded``), shown with its
    profile; None (nothing recorded yet) says "not recorded yet".

    ``ours``: DataFrame indexed by model, errors as fractions; ``paper``: {model: (training
    error, test error, ...)} as ``coursekit.paper.TABLE1``.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    from .findings import AGREES, DIFFERS, Finding

    counts = dict(ERROR_MEASURES if counts is None else counts)
    models = list(models)
    missing = [m for m in models if m not in paper or m not in ours.index]
    if missing:
        raise ValueError(f"models {missing} are missing from ours or from paper")
    table = None if larger is None else larger.table()
    if table is not None and [m for m in models if m not in table.index]:
        raise ValueError(f"the larger run lacks models {[m for m in models if m not in table.index]}")
    rows = []
    for m in models:
        for i, measure in enumerate(counts):
            rate = float(ours.loc[m, measure])
            low, high = proportion_interval(rate, counts[measure])
            then = "not recorded yet"
            if table is not None and larger is not None:
                then = f"{100 * float(table.loc[m, measure]):.2f}% ({larger.provenance['profile']} profile)"
            printed, paper_low, paper_high = printed_percent(paper[m][i])
            meets = low <= paper_high and paper_low <= high
            rows.append(
                Finding(
                    f"{m}, {measure}",
                    percent_interval(rate, low, high, digits=2),
                    printed,
                    AGREES if meets else DIFFERS,
                    then,
                )
            )
    return rows


def convergence_table(models: Mapping[str, nn.Module]) -> pd.DataFrame:
    """How each model's training ended, from the loss history ``train`` recorded
    (``coursekit.train.loss_history``): a DataFrame indexed by model with columns "optimizer",
    "cap" and "ran" (iterations for L-BFGS, epochs for Adam, as text), "last block" (how many
    iterations or epochs the last recorded block spans) and "fall" (how much the training
    objective fell over that block, as a share of its value before it: ``coursekit.train.last_fall``).
    A model without a recorded history gets "not recorded" and NaN.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    import pandas as pd

    from .train import last_fall, loss_history

    rows = {}
    for name, model in models.items():
        history = loss_history(model)
        if history is None:
            rows[name] = {"optimizer": "not recorded", "cap": "", "ran": "", "last block": "", "fall": float("nan")}
            continue
        unit, steps = history["unit"], history["steps"]
        block = steps[-1] - steps[-2] if unit == "iteration" else 1

        def count(value: int) -> str:
            return f"{value} {unit}{'s' if value != 1 else ''}"

        ran = count(steps[-1]) + (" (converged)" if history["converged"] else "")
        rows[name] = {
            "optimizer": {"lbfgs": "L-BFGS", "adam": "Adam"}[history["optimizer"]],
            "cap": count(history["cap"]),
            "ran": ran,
            "last block": count(block),
            "fall": last_fall(history),
        }
    return pd.DataFrame(rows).T.astype({"fall": float})


def _fall_text(fall: float) -> str:
    """A relative fall as a short percentage: 0.0016 → "0.16%", 2e-7 → "0.00002%"."""
    return f"{100 * fall:.2g}%" if abs(fall) >= 1e-5 else f"{100 * fall:.1e}%"


def convergence_paragraph(table: pd.DataFrame, flat: float = 1e-4) -> str:
    """``convergence_table``'s rows in words: which L-BFGS models stopped by themselves, which
    were flat at the cap (their last block lowered the objective by less than ``flat``, a
    fraction of it) and which were still falling, and how the Adam models' last epoch compared
    with the one before. Models without a history are named as such.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    groups: dict[str, list[str]] = {"converged": [], "flat": [], "falling": [], "adam": [], "none": []}
    for name, row in table.iterrows():
        if row["optimizer"] == "not recorded":
            groups["none"].append(name)
        elif row["optimizer"] == "Adam":
            groups["adam"].append(f"{_fall_text(row['fall'])} for {name} ({row['ran']})")
        elif row["ran"].endswith("(converged)"):
            groups["converged"].append(f"{name} after {row['ran'].split(' (')[0]}")
        elif row["fall"] < flat:
            groups["flat"].append(
                f"{name} ({_fall_text(row['fall'])} over its last {row['last block']}, {row['ran']} in all)"
            )
        else:
            groups["falling"].append(f"{name} ({_fall_text(row['fall'])} over its last {row['last block']})")
    parts = []
    if groups["converged"]:
        parts.append(f"Stopped by itself (converged): {', '.join(groups['converged'])}.")
    if groups["flat"]:
        parts.append(
            f"Flat when the cap stopped it (the objective fell by less than "
            f"{_fall_text(flat)} over the last block): {', '.join(groups['flat'])}."
        )
    if groups["falling"]:
        parts.append(f"Still falling when the cap stopped it: {', '.join(groups['falling'])}.")
    if groups["adam"]:
        parts.append(
            "The Adam models run a fixed number of epochs; their last epoch's mean loss was "
            f"below the previous one's by {', '.join(groups['adam'])}."
        )
    if groups["none"]:
        parts.append(
            f"No history was recorded for {', '.join(groups['none'])} (a cache file written "
            "before coursekit recorded histories; delete it to retrain)."
        )
    return " ".join(parts)
