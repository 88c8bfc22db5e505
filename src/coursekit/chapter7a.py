"""Chapter 7a's results beside the paper's claims: the rows of its "What this run found".

Two tables, one row per model, hold what the rows need; the chapter computes them at its
profile and ``benchmarks/records/07a_attacks_and_linearity.py`` records them at a larger one
with the same functions:

``NEAREST`` ("07a_nearest")
    ``linearity.pocket_table`` of the minimum-norm perturbations untargeted DDN found: how many
    images it moved to an error, their median distortion, and the pockets test.
``VERSUS`` ("07a_fgsm_pgd")
    ``versus_table`` of ``linearity.fgsm_against_pgd`` at ε = ``EPS``: FGSM's and PGD's errors
    on the same images, compared image by image.

``findings`` turns them (and the recorded tables, where they exist) into ``coursekit.findings``
rows with a verdict in words. The thresholds of the verdicts are stated beside each rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from ._checks import check_int
from .findings import AGREES, DIFFERS, UNDECIDED, Finding
from .report import proportion_interval

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EPS", "LINEAR_MODEL", "NEAREST", "VERSUS", "chapter_images", "findings", "versus_table"]

NEAREST, VERSUS = "07a_nearest", "07a_fgsm_pgd"
EPS = 0.05  # the ℓ∞ budget of the FGSM–PGD comparison (pixel units; FC10 is not yet saturated)
LINEAR_MODEL = "FC10(1e-4)"
CNN = "CNN"
RARE = 0.1  # "rarely found by random sampling": at most 1 random point in 10 errs (95% sure)
SIGNIFICANT = 0.05  # the paired test's level


def chapter_images(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The chapter's images: the first ``count`` of a fixed random order of the MNIST test set
    (seed 1; both parts of chapter 7 draw the same), x [count, 1, 28, 28] in [0, 1], y [count].

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    from .data import load_mnist

    x_test, y_test = load_mnist("test")
    check_int("count", count, maximum=len(x_test))
    order = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(1))[:count]
    return x_test[order], y_test[order]


def versus_table(paired: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """One row per model from ``{model: linearity.fgsm_against_pgd(...)}``: "images", "FGSM
    error", "PGD error" (shares), "only FGSM", "only PGD" (images only that attack fooled) and
    "p value" (the exact paired test of the two).

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    import pandas as pd

    if not paired:
        raise ValueError("paired must name at least one model, got an empty mapping")
    names = {"n": "images", "error_a": "FGSM error", "error_b": "PGD error", "only_a": "only FGSM"}
    names |= {"only_b": "only PGD", "p_value": "p value"}
    return pd.DataFrame({m: {names[k]: float(v) for k, v in row.items()} for m, row in paired.items()}).T


def _share(frame: pd.DataFrame, model: str, column: str) -> tuple[float, float, float]:
    """(share, low, high): a share of the row's tested images with its 95% Wilson interval."""
    rate, count = float(frame.loc[model, column]), int(frame.loc[model, "tested"])
    low, high = proportion_interval(rate, count) if count else (math.nan, math.nan)
    return rate, low, high


def _reached_text(frame: pd.DataFrame) -> str:
    return "; ".join(
        f"{m}: {frame.loc[m, 'reached']:.0%} (median distortion {frame.loc[m, 'median distortion']:.3f})"
        for m in frame.index
    )


def _shares_text(frame: pd.DataFrame, column: str) -> str:
    parts = []
    for m in frame.index:
        rate, low, high = _share(frame, m, column)
        parts.append(f"{m}: {rate:.0%} (95% CI {low:.0%}–{high:.0%})")
    return "; ".join(parts)


def _versus_text(frame: pd.DataFrame) -> str:
    if LINEAR_MODEL not in frame.index:
        return "not in this run"
    row = frame.loc[LINEAR_MODEL]
    return (
        f"FGSM {row['FGSM error']:.0%}, PGD {row['PGD error']:.0%}; only PGD fools "
        f"{int(row['only PGD'])}, only FGSM {int(row['only FGSM'])} (p = {row['p value']:.2g})"
    )


def _reached_verdict(frame: pd.DataFrame) -> str:
    if (frame["reached"] >= 1).all():
        return AGREES
    return f"{DIFFERS} (the attack stopped short on some images: more steps may reach them)"


def _random_verdict(frame: pd.DataFrame) -> str:
    intervals = [_share(frame, m, "random, same distance") for m in frame.index]
    if all(high <= RARE for _, _, high in intervals):
        return f"{AGREES} (at most 1 random point in 10 errs, for every model)"
    if any(low > RARE for _, low, _ in intervals):
        return f"{DIFFERS} (random points at that distance err often)"
    return UNDECIDED


def _pocket_verdict(frame: pd.DataFrame) -> str:
    far = [_share(frame, m, "t = 4") for m in frame.index]
    if all(low > 0.5 for _, low, _ in far):
        return f"{DIFFERS}: the wrong answer goes on (this says nothing of its probability)"
    if all(high < 0.5 for _, _, high in far):
        return f"{AGREES}: the answer comes back past the example"
    return UNDECIDED


def _versus_verdict(frame: pd.DataFrame) -> str:
    if LINEAR_MODEL not in frame.index:
        return UNDECIDED
    row = frame.loc[LINEAR_MODEL]
    if row["p value"] >= SIGNIFICANT:
        return UNDECIDED
    if row["only PGD"] > row["only FGSM"]:
        return f"{DIFFERS}: PGD finds more errors, also on a linear model"
    return f"{AGREES}: FGSM finds at least as many errors"


def _cnn(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if frame is None or CNN not in frame.index else frame.loc[[CNN]]


def _without_cnn(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    if frame is None:
        return None
    others = [m for m in frame.index if m != CNN]
    return frame.loc[others] if others else None


def findings(
    nearest: pd.DataFrame,
    versus: pd.DataFrame,
    larger_nearest: pd.DataFrame | None = None,
    larger_versus: pd.DataFrame | None = None,
) -> list[Finding]:
    """The chapter's five rows: this run's ``nearest`` and ``versus`` tables (see the module
    docstring), and the recorded larger run's (``Record.table()``, None while not recorded: the
    row then says "not recorded yet"). The larger column gives that run's numbers and, after a
    dash, the verdict the same rule gives on them.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    fully_connected = _without_cnn(nearest)
    if fully_connected is None:
        raise ValueError(f"nearest must have a row for a model other than the CNN, got {list(nearest.index)}")
    cnn, larger_cnn = _cnn(nearest), _cnn(larger_nearest)
    none = "not recorded yet"

    def larger(frame: pd.DataFrame | None, text, verdict) -> str:
        """The larger run's numbers and, after a dash, its own verdict."""
        return none if frame is None or not len(frame) else f"{text(frame)} — {verdict(frame)}"

    rows = [
        Finding(
            "an error near every image the model gets right (§4.2), linear models too: share reached",
            _reached_text(fully_connected),
            "every image, every model (§4.2; Table 1)",
            _reached_verdict(fully_connected),
            larger(_without_cnn(larger_nearest), _reached_text, _reached_verdict),
        ),
        Finding(
            "the same for a CNN (§4.2 expects it; no MNIST result)",
            _reached_text(cnn) if cnn is not None else "no CNN in this run",
            "expected",
            _reached_verdict(cnn) if cnn is not None else f"{UNDECIDED} (none here)",
            larger(larger_cnn, _reached_text, _reached_verdict),
        ),
        Finding(
            "rarely found by random sampling (§4): a random point at the same distance errs",
            _shares_text(nearest, "random, same distance"),
            "rarely",
            _random_verdict(nearest),
            larger(larger_nearest, lambda f: _shares_text(f, "random, same distance"), _random_verdict),
        ),
        Finding(
            "'pockets', read narrowly (§4): at x + 4r the right answer is back",
            "still wrong at x + 4r: " + _shares_text(nearest, "t = 4"),
            "pockets (no measurement)",
            _pocket_verdict(nearest),
            larger(larger_nearest, lambda f: _shares_text(f, "t = 4"), _pocket_verdict),
        ),
        Finding(
            f"one step suffices on a linear model (Goodfellow et al.): FGSM vs PGD, {LINEAR_MODEL}, ε = {EPS:g}",
            _versus_text(versus),
            "not in the paper",
            _versus_verdict(versus),
            larger(larger_versus, _versus_text, _versus_verdict),
        ),
    ]
    return rows
