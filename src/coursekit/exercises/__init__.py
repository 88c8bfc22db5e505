"""The student's "your turn" exercises: checks that say what is wrong in words, and the course's
exercise bank (references, likely mistakes, points).

- :func:`check_exercise` / :func:`use_solution`: what a chapter's check cell and folded solution
  call, by the exercise's id (``bank``; the entries are in the ``ch*`` modules, one per chapter);
- :func:`check_function`: the same check for any student function against any reference, with
  optional :class:`Mistake` s (``checking``).
"""

from .bank import Exercise, all_exercises, check_exercise, exercise, last_verdict, use_solution
from .checking import Mistake, Outcome, Verdict, check_function, compare_values, is_blank, outcome

__all__ = [
    "Exercise",
    "Mistake",
    "Outcome",
    "Verdict",
    "all_exercises",
    "check_exercise",
    "check_function",
    "compare_values",
    "exercise",
    "is_blank",
    "last_verdict",
    "outcome",
    "use_solution",
]
