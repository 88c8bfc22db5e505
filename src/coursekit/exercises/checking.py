"""Checking a student's function against a reference: a verdict in words, never an error.

A chapter leaves a short function for the student to complete (its body ``...``), then a check
cell calls :func:`check_function` with the student's function, a reference (usually the
engineered ``coursekit`` function or a few-line version the chapter has shown), and a few test
cases. The check prints one of

- ``Correct: …`` when every case matches (within the stated tolerance),
- ``Not done yet: …`` while the body is still ``...`` (or raises ``NotImplementedError``),
- ``Not yet right: …`` naming the likely mistake in words when the function behaves like one of
  the exercise's known mistakes (:class:`Mistake`), else the first case that differs and by how
  much, or the error it raised,

and returns the function the rest of the chapter should use: the student's when it is correct,
the reference otherwise (the message says so). So a notebook runs top to bottom (nbval, Colab)
whether or not the exercise has been done, and the student's own code is used once it is right.

    fgsm = check_function(my_fgsm, reference=coursekit_fgsm, cases=[(model, x, y, 0.1)])
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Mistake", "Outcome", "Verdict", "check_function", "compare_values", "is_blank", "judge", "outcome"]

WIDTH = 75  # characters per printed line: the site's output column shows ~88 without scrolling


@dataclass(frozen=True)
class Mistake:
    """A likely wrong answer to an exercise: what the student did, in words, and a function that
    does exactly that (so the check can recognise it by its outputs).

    ``explanation`` completes "it looks like …", e.g. "you divided by the number of inputs; the
    paper divides by k, the layer's number of units (its outputs)".
    """

    explanation: str
    function: Callable


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``status`` is "correct", "blank" or "wrong"; ``message`` says it;
    ``mistake`` is the recognised :class:`Mistake`'s explanation, if any."""

    status: str
    message: str
    mistake: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "correct"


def is_blank(value: Any) -> bool:
    """True for what an unfinished exercise returns: ``...`` (Ellipsis) or ``None``."""
    return value is Ellipsis or value is None


def _as_array(value: Any) -> np.ndarray | None:
    """``value`` as a float64 numpy array, or None when it is not numeric."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    if isinstance(value, (int, float, np.number, np.ndarray)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, np.number)) for v in value):
        return np.asarray(value, dtype=np.float64)
    return None


def compare_values(expected: Any, got: Any, *, rtol: float = 1e-4, atol: float = 1e-6) -> str | None:
    """``None`` if ``got`` matches ``expected``, else one sentence saying how it differs.

    Tensors, arrays and numbers are compared in shape and value (``|got - expected| <= atol +
    rtol |expected|`` elementwise, NaN equal to NaN); tuples and lists element by element; other
    objects with ``==``.
    """
    if isinstance(expected, (tuple, list)) and not _is_numeric_sequence(expected):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a {type(expected).__name__} of {len(expected)} items, got {_describe(got)}"
        for index, (e, g) in enumerate(zip(expected, got)):
            problem = compare_values(e, g, rtol=rtol, atol=atol)
            if problem:
                return f"item {index}: {problem}"
        return None
    want, have = _as_array(expected), _as_array(got)
    if want is None:
        return None if got == expected else f"expected {expected!r}, got {got!r}"
    if have is None:
        return f"expected a {_kind(expected)}, got {_describe(got)}"
    if want.shape != have.shape:
        return f"expected shape {tuple(want.shape)}, got shape {tuple(have.shape)}"
    close = np.isclose(have, want, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf (and close)
        error = np.where(close, 0.0, np.abs(have - want))
    worst = np.unravel_index(np.nanargmax(error), error.shape) if error.ndim else ()
    where = f" at index {tuple(int(i) for i in worst)}" if worst else ""
    return (
        f"{int((~close).sum())} of {close.size} values differ; the largest difference is "
        f"{float(error[worst]):.3g}{where} (expected {float(want[worst]):.4g}, got "
        f"{float(have[worst]):.4g}; tolerance {atol:g} + {rtol:g}·|expected|)"
    )


def _is_numeric_sequence(value: Sequence) -> bool:
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value)


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    return type(value).__name__


def _describe(value: Any) -> str:
    if is_blank(value):
        return repr(value)
    return f"a {_kind(value)}"


def _name(function: Callable) -> str:
    return getattr(function, "__name__", type(function).__name__)


def _arguments(case: Any) -> tuple:
    return case if isinstance(case, tuple) else (case,)


def _outputs(function: Callable, cases: Sequence) -> list[Any] | None:
    """``function``'s result on every case, or None when it raises on one."""
    try:
        return [function(*_arguments(case)) for case in cases]
    except Exception:  # a mistake that cannot run on a case simply does not match it
        return None


@dataclass(frozen=True)
class Outcome:
    """What a student's function did on one case: ``kind`` is "value" (it returned ``value``),
    "blank" (it raised NotImplementedError), "raised" (``error``: "TypeError: …") or "timeout"
    (``error`` says the limit). The grader records these in the student's sandbox and judges
    them outside it (:func:`judge`)."""

    kind: str
    value: Any = None
    error: str = ""


def outcome(function: Callable, case: Any) -> Outcome:
    """``function``'s :class:`Outcome` on one case (its exceptions caught, never raised)."""
    try:
        return Outcome("value", function(*_arguments(case)))
    except NotImplementedError:
        return Outcome("blank")
    except Exception as error:  # the student's code: report it, never fail the notebook
        return Outcome("raised", error=f"{type(error).__name__}: {error}")


def matching_mistake(
    got: Sequence[Any] | None,
    expected: Sequence[Any],
    mistakes: Sequence[Mistake],
    made: Sequence[Sequence[Any] | None],
    same: Callable[[Any, Any], str | None],
) -> Mistake | None:
    """The first mistake whose outputs (``made[i]``: mistake i's outputs on every case, None when it
    raised) equal the student's outputs ``got`` on every case and differ from ``expected`` on one."""
    if got is None:
        return None
    for mistake, outputs in zip(mistakes, made):
        if outputs is None:
            continue
        if all(same(m, g) is None for m, g in zip(outputs, got)) and any(
            same(e, m) is not None for e, m in zip(expected, outputs)
        ):
            return mistake
    return None


def judge(
    name: str,
    expected: Sequence[Any],
    outcomes: Iterable[Outcome],
    same: Callable[[Any, Any], str | None],
    recognise: Callable[[], Mistake | None],
    hint: str = "",
) -> Verdict:
    """The verdict on a function called ``name`` whose :class:`Outcome` s on the cases are
    ``outcomes`` (consumed in order, up to the first problem), against the reference's outputs
    ``expected``. ``recognise()`` returns the known mistake the function makes, if any (asked only
    when a case differs)."""
    total = len(expected)
    for number, (want, got) in enumerate(zip(expected, outcomes), start=1):
        if got.kind == "blank":
            return Verdict("blank", f"Not done yet: `{name}` is still to be written.")
        if got.kind in ("raised", "timeout"):
            verb = "raised" if got.kind == "raised" else "ran past"
            return Verdict("wrong", f"Not yet right: `{name}` {verb} {got.error} (case {number} of {total}).")
        if is_blank(got.value) and not is_blank(want):
            return Verdict("blank", f"Not done yet: `{name}` returns {got.value!r}; replace the `...`.")
        problem = same(want, got.value)
        if problem:
            mistake = recognise()
            if mistake is not None:
                return Verdict("wrong", f"Not yet right: it looks like {mistake.explanation}", mistake.explanation)
            advice = f" Hint: {hint}" if hint else ""
            return Verdict("wrong", f"Not yet right: case {number} of {total}: {problem}.{advice}")
    return Verdict("correct", f"Correct: `{name}` matches the reference on {total} case{'s' if total != 1 else ''}.")


def _verdict(
    student: Callable,
    reference: Callable,
    cases: Sequence,
    same: Callable[[Any, Any], str | None],
    mistakes: Sequence[Mistake] = (),
    hint: str = "",
) -> Verdict:
    expected = [reference(*_arguments(case)) for case in cases]

    def recognise() -> Mistake | None:
        made = [_outputs(mistake.function, cases) for mistake in mistakes]
        return matching_mistake(_outputs(student, cases), expected, mistakes, made, same)

    outcomes = (outcome(student, case) for case in cases)  # lazily: stops at the first problem
    return judge(_name(student), expected, outcomes, same, recognise, hint)


def check_arguments(student: Callable, reference: Callable, cases: Sequence, rtol: float, atol: float) -> None:
    """Raise a clear error for arguments a check cannot use (a chapter's bug, not the student's)."""
    if not callable(student):
        raise TypeError(f"student must be a function, got {student!r}")
    if not callable(reference):
        raise TypeError(f"reference must be a function, got {reference!r}")
    if isinstance(cases, (str, bytes)) or not isinstance(cases, Sequence) or len(cases) == 0:
        raise ValueError(f"cases must be a non-empty sequence of argument tuples, got {cases!r}")
    for name, tolerance in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {tolerance!r}")


def comparer(rtol: float, atol: float, compare: Callable[[Any, Any], str | None] | None) -> Callable:
    """``compare`` if given, else :func:`compare_values` with ``rtol`` and ``atol``."""
    return compare or (lambda expected, got: compare_values(expected, got, rtol=rtol, atol=atol))


def say(verdict: Verdict, suffix: str = "") -> None:
    """Print ``verdict``'s message (and ``suffix``) in lines that fit the page."""
    print(textwrap.fill(verdict.message + suffix, width=WIDTH))


def check_function(
    student: Callable,
    reference: Callable,
    cases: Sequence,
    *,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    compare: Callable[[Any, Any], str | None] | None = None,
    mistakes: Sequence[Mistake] = (),
    hint: str = "",
    quiet: bool = False,
) -> Callable:
    """Check ``student`` against ``reference`` on ``cases``; print the verdict; return the one to use.

    ``cases``: a non-empty sequence of argument tuples (a non-tuple case is one argument).
    ``compare(expected, got)`` returns ``None`` when they agree, else a sentence (default:
    :func:`compare_values` with ``rtol``/``atol``). ``mistakes``: the exercise's likely wrong
    answers; when the student's function gives one's outputs on every case, the message names
    it in words. ``hint``: a sentence added when the function is wrong in an unrecognised way.
    The reference is called first, so a case that the reference itself rejects raises (that is
    a bug in the chapter, not the student's). Returns ``student`` if it passed every case, else
    ``reference`` (and the message says so).
    """
    check_arguments(student, reference, cases, rtol, atol)
    verdict = _verdict(student, reference, cases, comparer(rtol, atol, compare), mistakes, hint)
    if not quiet:
        say(verdict, "" if verdict.passed else " The cells below use the reference version for now.")
    return student if verdict.passed else reference
