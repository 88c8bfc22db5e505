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
