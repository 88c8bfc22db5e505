"""'What this run found': verdicts from intervals, and the Markdown table."""

import pytest

from coursekit.findings import AGREES, DIFFERS, UNDECIDED, Finding, findings_markdown, interval_verdict, recorded


def test_interval_verdicts():
    assert interval_verdict(0.5, 0.4, 0.6) == AGREES
    assert interval_verdict(0.7, 0.4, 0.6) == DIFFERS
    assert interval_verdict(0.7, 0.1, 0.9, too_wide=0.5) == UNDECIDED
    assert interval_verdict(0.4, 0.4, 0.4) == AGREES  # the ends count
    with pytest.raises(ValueError, match="low <= high"):
        interval_verdict(0.5, 0.6, 0.4)


def test_the_table_has_one_row_per_finding_and_a_larger_column_only_when_needed():
    rows = [Finding("a", "1%", "2%", AGREES), Finding("b|c", "3%", "—", UNDECIDED)]
    text = findings_markdown(rows, profile="quick", sample="100 images")
    lines = text.splitlines()
    assert lines[0] == "This run: the quick profile, 100 images."
    assert lines[2] == "| measured | this run (quick) | paper | verdict |" and len(lines) == 6
    assert "b\\|c" in lines[5]  # a pipe in a cell is escaped
    larger = [Finding("a", "1%", "2%", AGREES, larger="1.5% (gpu)"), rows[1]]
    with_larger = findings_markdown(larger, profile="quick", sample="x", larger_label="gpu")
    assert with_larger.splitlines()[2].endswith("| gpu |") and with_larger.splitlines()[5].endswith("| — |")


def test_bad_findings_are_refused():
    with pytest.raises(ValueError, match="Finding.ours"):
        Finding("a", "", "2%", AGREES)
    with pytest.raises(ValueError, match="not be empty"):
        findings_markdown([], profile="quick", sample="x")


def test_an_unrecorded_name_is_none():
    assert recorded("no_such_record") is None
