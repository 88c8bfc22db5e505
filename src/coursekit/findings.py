"""A chapter's "What this run found": this run's numbers beside the paper's, each with a plain
verdict, and what a recorded larger run gave where this run is too small to decide.

    rows = [Finding("FC10(1e-4), test error", "7.9% (95% CI 7.4-8.4%)", "7.7%",
                    interval_verdict(0.077, 0.074, 0.084))]
    Markdown(findings_markdown(rows, profile="quick", sample="10,000 test images"))

The verdicts are words a learner can act on: "agrees", "differs" (by how much, in the cell's
own words) or "too few samples to say". A number is always formatted from a variable; the paper's
appears only in its own column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import Record

__all__ = ["AGREES", "DIFFERS", "UNDECIDED", "Finding", "findings_markdown", "interval_verdict", "recorded"]

AGREES, DIFFERS, UNDECIDED = "agrees", "differs", "too few samples to say"


@dataclass(frozen=True)
class Finding:
    """One row of "What this run found": ``what`` was measured, ``ours`` (formatted, with its
    interval where it has one), the ``paper``'s value ("—" where the paper has none), the
    ``verdict`` in words, and optionally what a ``larger`` recorded run gave (formatted, with its
    profile).

    Used in chapters 3a (book/03a_lbfgs_attack.md), 5 (book/05_spectral.md) and
    6 (book/06_adversarial_training.md).
    """

    what: str
    ours: str
    paper: str
    verdict: str
    larger: str = ""

    def __post_init__(self) -> None:
        for name in ("what", "ours", "paper", "verdict"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"Finding.{name} must be a non-empty str, got {getattr(self, name)!r}")


def interval_verdict(paper: float, low: float, high: float, *, too_wide: float | None = None) -> str:
    """``AGREES`` when the paper's value lies in our interval [low, high], ``DIFFERS`` when it
    lies outside; ``UNDECIDED`` when the interval is wider than ``too_wide`` (too few samples for
    the comparison to mean anything, whichever side the paper's value falls)."""
    if not low <= high:
        raise ValueError(f"need low <= high, got {low!r}, {high!r}")
    if too_wide is not None and high - low > too_wide:
        return UNDECIDED
    return AGREES if low <= paper <= high else DIFFERS


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: Sequence[Finding], *, profile: str, sample: str, larger_label: str = "") -> str:
    """The findings as a Markdown table (one row each), under a line naming this run's
    ``profile`` and ``sample`` (e.g. "100 training images per model"); a column for the larger
    run appears when any finding has one, headed ``larger_label`` (e.g. "recorded gpu run").

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    if not findings:
        raise ValueError("findings must not be empty")
    larger = any(f.larger for f in findings)
    head = ["measured", f"this run ({profile})", "paper", "verdict"]
    head += [larger_label or "larger run"] if larger else []
    lines = [f"This run: the {profile} profile, {sample}.", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for f in findings:
        cells = [f.what, f.ours, f.paper, f.verdict] + ([f.larger or "—"] if larger else [])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def recorded(name: str) -> Record | None:
    """The record ``name`` shipped with the package (``coursekit.records``), or None while no
    larger run has been recorded. A record whose code has changed since it was made raises
    (``StaleRecordError``): a number from other code is never shown as this code's.

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    6 (book/06_adversarial_training.md), 7a (book/07a_attacks_and_linearity.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    from .records import available, load_record

    return load_record(name) if name in available() else None
