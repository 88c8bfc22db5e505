"""The part of the grader that runs a notebook: inside the sandbox for a submission, outside it
for the answer key (a build tool; ``tools/grade.py`` copies this file into each run's folder).

    python grade_worker.py key     NOTEBOOK --cases DIR --exercises ID... [--cell-timeout S]
    python grade_worker.py student NOTEBOOK --cases DIR --out DIR --exercises ID... [--call-timeout S]

Both run the notebook's code cells in order with nbclient (a kernel of this Python, errors
allowed, so one broken cell does not stop the rest), up to its last check cell
(``check_exercise("<id>", f, cases)``) of the exercises asked for: later cells cannot change what
is graded. A first cell installs :func:`install`, which replaces ``check_exercise`` in the kernel:

- ``key``: the trusted run of the chapter's own student notebook. Each check saves its cases
  (``torch.save``, a full pickle: only the grader writes and reads these files) to
  ``DIR/<id>.pt``, then checks as usual.
- ``student``: a submission, in the sandbox. A check only records the student's function and
  returns the exercise's reference (so later cells run as with a blank exercise; the student's
  function is not called here). A last cell (:func:`harvest`) calls each recorded function on
  the key's cases (each on its own copy, each call under ``--call-timeout`` seconds) and writes
  its :class:`coursekit.exercises.Outcome` s, as plain data, to ``OUT/<id>.pt``; the grader loads
  them with ``torch.load(weights_only=True)`` and judges them outside the sandbox. A student's
  code can make these files say anything about its own function, but nothing about the verdict.

Either way ``OUT/run.json`` (key: ``DIR/run.json``) lists the cells that raised.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHECK = re.compile(r"\bcheck_exercise\(\s*[\"'](?P<id>[\w.-]+)[\"']")
SUBMITTED: dict[str, Callable] = {}  # exercise id -> the student's function, as its check cell passed it
LIMIT = 8  # cells that raised, listed in run.json


class CallTimeout(BaseException):
    """A student's function ran past the time limit of one call (a BaseException, so that the
    check's ``except Exception`` does not swallow it)."""


def install(mode: str, cases: str) -> None:
    """In the kernel: replace ``check_exercise`` (in ``coursekit.exercises`` and its ``bank``) by
    the recording version of ``mode`` ("key" or "student"); ``cases``: the cases folder."""
    import torch

    import coursekit.exercises as exercises
    from coursekit.exercises import bank

    original = bank.check_exercise

    def check_exercise(exercise_id: str, student: Callable, cases_: Any, *, quiet: bool = False) -> Callable:
        if mode == "key":
            target = Path(cases) / f"{exercise_id}.pt"
            torch.save(list(cases_), target.with_suffix(".part"))
            os.replace(target.with_suffix(".part"), target)
            return original(exercise_id, student, cases_, quiet=quiet)
        SUBMITTED[exercise_id] = student
        print(f"(grading: `{exercise_id}` recorded; it is called on the course's cases at the end)")
        return bank.exercise(exercise_id).reference

    exercises.check_exercise = check_exercise  # type: ignore[assignment]
    bank.check_exercise = check_exercise  # type: ignore[assignment]


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CallTimeout` in the block after ``seconds`` of wall-clock time (SIGALRM)."""

    def expire(signum, frame):
        raise CallTimeout(f"the time limit of {seconds:g} s per case")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as data that ``torch.load(weights_only=True)`` reads back: tensors (detached, on
    the CPU), numbers, strings, None, and lists/tuples/dicts of them; numpy arrays become tensors;
    ``...`` becomes {"blank": "..."}; anything else {"unsupported": its type's name}."""
    import numpy as np
    import torch

    if depth > 20:
        return {"unsupported": "a structure nested more than 20 deep"}
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if value is Ellipsis:
        return {"blank": "..."}
    if isinstance(value, (list, tuple)):
        items = [plain(item, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"dict": {key: plain(item, depth + 1) for key, item in value.items()}}
    return {"unsupported": type(value).__name__}


def _record(student: Callable, case: Any, seconds: float) -> dict:
    """One case's outcome as plain data (see :func:`plain`)."""
    from coursekit.exercises import outcome

    try:
        with time_limit(seconds):
            result = outcome(student, copy.deepcopy(case))
    except CallTimeout as error:
        return {"kind": "timeout", "error": str(error)}
    except MemoryError:
        return {"kind": "raised", "error": "MemoryError: it ran out of memory"}
    return {"kind": result.kind, "value": plain(result.value), "error": result.error}


def harvest(namespace: dict, exercise_ids: list[str], cases: str, out: str, seconds: float) -> None:
    """In the kernel, after the notebook: each exercise's outcomes on the key's cases, to ``out``."""
    import torch

    for exercise_id in exercise_ids:
        student = SUBMITTED.get(exercise_id) or namespace.get(exercise_id)
        if not callable(student):
            found: Any = {"missing": f"`{exercise_id}` is not defined in the notebook (or not a function)"}
        else:
            cases_ = torch.load(Path(cases) / f"{exercise_id}.pt", weights_only=False)  # the grader's own file
            found = [_record(student, case, seconds) for case in cases_]
        target = Path(out) / f"{exercise_id}.pt"
        torch.save(found, target.with_suffix(".part"))
        os.replace(target.with_suffix(".part"), target)


def graded_cells(notebook, exercise_ids: list[str]):
    """The notebook's cells up to its last check cell of ``exercise_ids`` (all when there is none)."""
    last = max(
        (
            i
            for i, c in enumerate(notebook.cells)
            if c.cell_type == "code" and set(CHECK.findall(c.source)) & set(exercise_ids)
        ),
        default=len(notebook.cells) - 1,
    )
    return notebook.cells[: last + 1]


def run(
    mode: str, path: Path, exercise_ids: list[str], cases: Path, out: Path, cell_timeout: int, call_timeout: float
) -> None:
    """Run the notebook at ``path`` in ``mode`` (see the module's docstring); write ``run.json``."""
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    notebook = nbformat.read(path, as_version=4)
    here = str(Path(__file__).resolve().parent)
    setup = (
        f"import sys\nsys.path.insert(0, {here!r})\nimport grade_worker\ngrade_worker.install({mode!r}, {str(cases)!r})"
    )
    cells = [new_code_cell(setup)] + [c for c in graded_cells(notebook, exercise_ids) if c.cell_type == "code"]
    if mode == "student":
        args = f"globals(), {exercise_ids!r}, {str(cases)!r}, {str(out)!r}, {call_timeout!r}"
        cells.append(new_code_cell(f"import grade_worker as _grader\n_grader.harvest({args})"))
    for cell in cells:
        cell.outputs, cell.metadata = [], {}
    notebook.cells = cells
    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": os.getcwd()}},
    )
    client.execute()
    errors = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and len(errors) < LIMIT:
                errors.append({"cell": index, "error": f"{output.get('ename')}: {str(output.get('evalue'))[:300]}"})
    (out / "run.json").write_text(json.dumps({"errors": errors, "cells": len(cells)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("key", "student"))
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--cases", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None, help="student: where the outcomes go")
    parser.add_argument("--exercises", nargs="+", required=True)
    parser.add_argument("--cell-timeout", type=int, default=1800)
    parser.add_argument("--call-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else args.cases
    run(args.mode, args.notebook, args.exercises, args.cases, out, args.cell_timeout, args.call_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
