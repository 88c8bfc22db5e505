"""The course's "your turn" exercises, one entry each: what the check compares against, the
likely mistakes it recognises, and the points an instructor's grading gives it (one place).

A chapter's check cell names its exercise and passes the cases it built from its own data::

    paper_decay = check_exercise("paper_decay", paper_decay, cases)

and an executed solution (folded) hands over to the rest of the chapter with::

    paper_decay = use_solution("paper_decay", solution, paper_decay)

which keeps the student's own function when it passed its check, and says which one the rest
of the chapter uses. The entries live in this package's ``ch*.py`` modules, one per chapter
(``EXERCISES``, a tuple of :class:`Exercise`); every entry carries ``sample_cases``, small cases
that need no chapter state, on which the tests check that the reference passes and that every
mistake is recognised.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .checking import (
    Mistake,
    Outcome,
    Verdict,
    _outputs,
    _verdict,
    check_arguments,
    comparer,
    judge,
    matching_mistake,
    say,
)

__all__ = ["Exercise", "all_exercises", "check_exercise", "exercise", "last_verdict", "use_solution"]


@dataclass(frozen=True)
class Exercise:
    """One "your turn" exercise.

    ``id``: the name the chapter uses (the function's name); ``chapter``: the notebook's stem;
    ``title``: as in the chapter's box; ``reference``: the correct function; ``mistakes``: at
    least two likely wrong answers, each recognised by its outputs; ``points``: for grading;
    ``sample_cases``: a function returning a few argument tuples that need no chapter state (for
    the tests and the grader's sanity check); ``rtol``/``atol``: the tolerance of the check;
    ``hint``: a sentence for a wrong answer that matches no known mistake.
    """

    id: str
    chapter: str
    title: str
    reference: Callable
    mistakes: tuple[Mistake, ...]
    sample_cases: Callable[[], Sequence]
    points: int = 1
    rtol: float = 1e-4
    atol: float = 1e-6
    hint: str = ""
    compare: Callable[[Any, Any], str | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.mistakes) < 2:
            raise ValueError(f"exercise {self.id!r} needs at least two mistakes, got {len(self.mistakes)}")
        if not isinstance(self.points, int) or self.points < 1:
            raise ValueError(f"exercise {self.id!r}: points must be a positive int, got {self.points!r}")

    def verdict(self, student: Callable, cases: Sequence) -> Verdict:
        """The verdict on ``student`` for ``cases`` (nothing printed)."""
        check_arguments(student, self.reference, cases, self.rtol, self.atol)
        same = comparer(self.rtol, self.atol, self.compare)
        return _verdict(student, self.reference, cases, same, self.mistakes, self.hint)

    def judge(self, outcomes: Sequence[Outcome], cases: Sequence) -> Verdict:
        """The verdict that :meth:`verdict` gives a function whose :class:`Outcome` on each of
        ``cases`` is ``outcomes`` (one per case, recorded elsewhere: the grader's sandbox). The
        reference and the mistakes run here, each on its own copy of the cases."""
        check_arguments(self.reference, self.reference, cases, self.rtol, self.atol)
        if len(outcomes) != len(cases):
            raise ValueError(f"outcomes must have one entry per case ({len(cases)}), got {len(outcomes)}")
        same = comparer(self.rtol, self.atol, self.compare)
        expected = _outputs_of(self.reference, cases)
        if expected is None:
            raise ValueError(f"the reference of {self.id!r} fails on these cases (a bug in the cases)")
        values = [o.value for o in outcomes] if all(o.kind == "value" for o in outcomes) else None

        def recognise() -> Mistake | None:
            made = [_outputs_of(mistake.function, cases) for mistake in self.mistakes]
            return matching_mistake(values, expected, self.mistakes, made, same)

        return judge(self.id, expected, outcomes, same, recognise, self.hint)


def _outputs_of(function: Callable, cases: Sequence) -> list[Any] | None:
    """``function``'s outputs on a deep copy of each case (None when it raises on one)."""
    return _outputs(function, [copy.deepcopy(case) for case in cases])


def all_exercises() -> dict[str, Exercise]:
    """Every exercise of the course, by id (from the ``ch*`` modules of this package, in order)."""
    found: dict[str, Exercise] = {}
    package = importlib.import_module(__package__ or "coursekit.exercises")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("ch"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for entry in getattr(module, "EXERCISES", ()):
            if entry.id in found:
                raise ValueError(f"two exercises are called {entry.id!r}")
            found[entry.id] = entry
    return found


def exercise(exercise_id: str) -> Exercise:
    """The exercise called ``exercise_id``; a clear error naming the known ones otherwise.

    Used in chapters 3a (book/03a_lbfgs_attack.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    known = all_exercises()
    if exercise_id not in known:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {', '.join(known)}")
    return known[exercise_id]


# The last check of each exercise in this session: (verdict, cases), for use_solution.
_LAST: dict[str, tuple[Verdict, Sequence]] = {}


def last_verdict(exercise_id: str) -> Verdict | None:
    """The verdict of the last ``check_exercise`` of ``exercise_id`` in this session, if any."""
    return _LAST[exercise_id][0] if exercise_id in _LAST else None


def check_exercise(exercise_id: str, student: Callable, cases: Sequence, *, quiet: bool = False) -> Callable:
    """Check the student's function for exercise ``exercise_id`` on ``cases``; print the verdict
    (naming a recognised mistake in words); return the function the rest of the chapter uses:
    the student's when it passed, else the exercise's reference (the message says so).

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    entry = exercise(exercise_id)
    verdict = entry.verdict(student, cases)
    _LAST[exercise_id] = (verdict, cases)
    if not quiet:
        say(verdict, "" if verdict.passed else " The cells below use the reference version for now.")
    return student if verdict.passed else entry.reference


def use_solution(exercise_id: str, solution: Callable, current: Callable) -> Callable:
    """After a folded solution: the function the rest of the chapter uses, said in one line.

    ``current`` is what the check cell returned. When the student's own function passed its
    check, it stays (the solution is for comparison); otherwise ``solution`` is used. The
    solution itself is checked on the check cell's cases first, and a wrong one raises (a bug in
    the chapter).

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    entry = exercise(exercise_id)
    if exercise_id not in _LAST:
        raise RuntimeError(f"run the check cell of {exercise_id!r} before its solution")
    verdict, cases = _LAST[exercise_id]
    own = entry.verdict(solution, cases)
    if not own.passed:
        raise AssertionError(f"the chapter's solution of {exercise_id!r} fails its own check: {own.message}")
    if verdict.passed:
        kept = f"Your own `{exercise_id}` passed its check, so the rest of the chapter keeps using yours."
        say(Verdict("correct", kept))
        return current
    state = "is not done yet" if verdict.status == "blank" else "is not right yet"
    say(Verdict("correct", f"The rest of the chapter uses this solution (your `{exercise_id}` {state})."))
    return solution
