"""Grade the students' notebooks: one CSV row per (student, notebook, exercise).

    make grade SUBMISSIONS=<folder> GRADES=<file.csv>
    python -m tools.grade SUBMISSIONS GRADES [--jobs N] [--timeout S] [--memory GiB] [--chapters 01 03a]

``SUBMISSIONS`` holds one folder per student, named by the student, with that student's
``.ipynb`` files (a chapter's student notebook from ``make student``, worked on; the file name
names the chapter, as downloaded from Colab). Each "your turn" exercise of the exercise bank
(``coursekit.exercises``) is a graded question:

1. **The answer key** (trusted, once per chapter, cached in ``_build/grading/key``): the
   chapter's own student notebook runs with blank exercises (``tools/grade_worker.py key``), and
   each check cell's cases are saved as they are built there; one otter-grader test file per
   exercise is written beside them (``tests/<id>.py``: its points from the bank, all or nothing,
   one test case per case of the check cell).
2. **Each submission** runs alone in the sandbox (``tools/sandbox.py``: bubblewrap where it
   works) with a time limit for the notebook, a memory limit and no network, in an empty folder
   that holds only the notebook, the worker and the key's cases (the inputs, not the reference's
   outputs). It executes the notebook up to its last check cell, then calls the student's
   functions on the key's cases and writes what they returned, as plain data.
3. **The verdict** is computed here, outside the sandbox: the outputs are read with
   ``torch.load(weights_only=True)`` (data only, never code), compared with the reference's
   and the known mistakes' outputs on the same cases (``Exercise.judge``: the check cell's own
   comparison and message), and otter runs the exercise's test file on that comparison to score
   it. A student's code never decides its own verdict.

A notebook that is not valid JSON, is another chapter's, errors, loops or exhausts its memory
gets its rows with 0 points and the reason; the batch goes on. The ``isolation`` column says how
each notebook was isolated ("bubblewrap", or "process" and what was missing).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import sandbox

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "grade_worker.py"
COLUMNS = ("student", "notebook", "chapter", "exercise", "points", "maximum", "status", "message", "isolation")
MAX_NOTEBOOK_BYTES = 50 * 1024**2  # a bigger .ipynb is refused unread
MAX_RESULT_BYTES = 200 * 1024**2  # a bigger outputs file from the sandbox is refused unread


@dataclass(frozen=True)
class Settings:
    """How to grade: ``limits`` of each submission's sandbox; ``call_timeout``: seconds per call of
    a student's function; ``isolation``: "auto" (bubblewrap if it works, else process), or one of
    them; ``key``: the answer key's folder; ``students``: the student notebooks' folder."""

    limits: sandbox.Limits = sandbox.Limits()
    call_timeout: float = 60.0
    isolation: str = "auto"
    key: Path = ROOT / "_build" / "grading" / "key"
    students: Path = ROOT / "_build" / "student"


@dataclass(frozen=True)
class Chapter:
    """A graded chapter: its ``stem``, its student ``notebook`` (path) and its ``exercises`` (ids)."""

    stem: str
    notebook: Path
    exercises: tuple[str, ...]


def row(student: str, notebook: str, chapter: str, exercise: str, status: str, message: str, **more: Any) -> dict:
    """One CSV row (points 0 unless given; ``maximum`` from the bank when the exercise is known)."""
    from coursekit.exercises import all_exercises

    known = all_exercises()
    maximum = known[exercise].points if exercise in known else 0
    values = {"points": 0, "maximum": maximum, "isolation": ""} | more
    return dict(
        student=student, notebook=notebook, chapter=chapter, exercise=exercise, status=status, message=message, **values
    )


# ---------------------------------------------------------------------------------------------
# The chapters and the answer key


def graded_chapters(students: Path) -> dict[str, Chapter]:
    """{stem: Chapter} for every student notebook in ``students`` that has bank exercises."""
    import nbformat

    if not students.is_dir():
        raise FileNotFoundError(f"no student notebooks in {students}: run `make student` first")
    chapters = {}
    for path in sorted(students.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        exercises = tuple(notebook.metadata.get("coursekit", {}).get("exercises", []))
        if exercises:
            chapters[path.stem] = Chapter(path.stem, path, exercises)
    return chapters


def _digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def coursekit_digest() -> str:
    """A digest of the installed coursekit package's source (a new version makes a new key)."""
    import coursekit

    return _digest(*sorted(Path(coursekit.__file__).parent.rglob("*.py")))


def build_key(chapter: Chapter, settings: Settings) -> Path:
    """The chapter's answer key (cases and otter test files), built unless up to date; its folder.

    The chapter's own student notebook runs here, trusted, with the real (writable) model cache.
    """
    folder = settings.key / chapter.stem
    stamp = {"notebook": _digest(chapter.notebook), "coursekit": coursekit_digest(), "exercises": chapter.exercises}
    stamp_file = folder / "stamp.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == json.loads(json.dumps(stamp)):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "cases").mkdir(parents=True)
    os.chmod(settings.key, 0o700)
    command = [sys.executable, str(WORKER), "key", str(chapter.notebook.resolve()), "--cases", str(folder / "cases")]
    command += ["--exercises", *chapter.exercises, "--cell-timeout", str(int(settings.limits.seconds))]
    done = _run_trusted(command, settings.limits.seconds * 2)
    missing = [e for e in chapter.exercises if not (folder / "cases" / f"{e}.pt").exists()]
    if done.returncode != 0 or missing:
        raise RuntimeError(
            f"the answer key of {chapter.stem} could not be built (no cases for {missing}); the chapter's own "
            f"student notebook must run: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    for exercise_id in chapter.exercises:
        write_test_file(exercise_id, folder)
    stamp_file.write_text(json.dumps(stamp))
    return folder


def _run_trusted(command: list[str], seconds: float) -> Any:
    """Run one of the grader's own commands (the key), in a fresh temporary folder."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="grade-key-") as work:
        return subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=seconds)


def load_cases(folder: Path, exercise_id: str) -> list:
    """The key's cases of ``exercise_id`` (a pickle the grader wrote itself: trusted)."""
    import torch

    return torch.load(folder / "cases" / f"{exercise_id}.pt", weights_only=False)


TEST_FILE = '''"""The graded question `{id}` ({chapter}): {title}.

Written by tools/grade.py from coursekit's exercise bank (its points, all or nothing) and the
answer key's cases (the check cell's, {count}); otter-grader runs it in the grader's process, on
the comparison of the student's outputs with the reference's (``judged``).
"""

from otter.test_files import test_case

name = {id!r}
points = {points}
all_or_nothing = True
'''
TEST_CASE = """

@test_case(name="{id}, case {number} of {count}")
def case_{number}(judged):
    judged.require({number})
"""


def write_test_file(exercise_id: str, folder: Path) -> Path:
    """Write the otter test file of ``exercise_id`` (one test case per key case) into ``folder/tests``."""
    from coursekit.exercises import exercise

    entry = exercise(exercise_id)
    count = len(load_cases(folder, exercise_id))
    fields = dict(id=exercise_id, chapter=entry.chapter, title=entry.title, points=entry.points, count=count)
    text = TEST_FILE.format(**fields) + "".join(TEST_CASE.format(number=n, **fields) for n in range(1, count + 1))
    path = folder / "tests" / f"{exercise_id}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# Judging what a sandbox returned


class Judged:
    """The comparison of a student's outcomes with the reference on each case, for otter's test
    cases: ``require(n)`` raises AssertionError (with the check's message) unless case n matched."""

    def __init__(self, exercise_id: str, outcomes: list, cases: list) -> None:
        from coursekit.exercises import exercise

        entry = exercise(exercise_id)
        self.verdict = entry.judge(outcomes, cases)
        self.matched = [self.verdict.passed] * len(cases)
        if not self.verdict.passed:  # which cases match on their own (for otter's per-case results)
            for number, (one, case) in enumerate(zip(outcomes, cases)):
                self.matched[number] = entry.judge([one], [case]).passed

    def require(self, number: int) -> None:
        if not self.matched[number - 1]:
            raise AssertionError(self.verdict.message)


def score(exercise_id: str, folder: Path, judged: Judged) -> tuple[float, float]:
    """(points, maximum) that otter gives the exercise's test file on ``judged``."""
    from otter.test_files import ExceptionTestFile

    test_file = ExceptionTestFile.from_file(str(folder / "tests" / f"{exercise_id}.py"))
    test_file.run({"judged": judged})
    return float(test_file.score), float(test_file.possible)


def decode(value: Any) -> Any:
    """The worker's plain data (``grade_worker.plain``) back as values (``...`` for a blank)."""
    if isinstance(value, dict):
        if "blank" in value:
            return Ellipsis
        if "dict" in value:
            return {key: decode(item) for key, item in value["dict"].items()}
        return value  # {"unsupported": type name}: compares unequal to anything the reference gives
    if isinstance(value, (list, tuple)):
        items = [decode(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def read_outcomes(path: Path, count: int) -> list:
    """The outcomes a sandbox wrote to ``path``: a list of ``count`` Outcomes, or a str saying
    why they cannot be used. Read as data only (``weights_only=True``)."""
    import torch

    from coursekit.exercises import Outcome

    if not path.exists():
        return "it wrote no results"
    if path.stat().st_size > MAX_RESULT_BYTES:
        return f"its results file is over {MAX_RESULT_BYTES // 1024**2} MiB"
    try:
        data = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    except Exception as error:  # anything torch refuses: not data, or not a file it wrote
        return f"its results could not be read as data ({type(error).__name__})"
    if isinstance(data, dict) and isinstance(data.get("missing"), str):
        return data["missing"]
    if not isinstance(data, list) or len(data) != count or not all(isinstance(d, dict) for d in data):
        return f"its results are not one entry per case ({count})"
    kinds = ("value", "blank", "raised", "timeout")
    if not all(d.get("kind") in kinds and isinstance(d.get("error", ""), str) for d in data):
        return "its results are malformed"
    return [Outcome(d["kind"], decode(d.get("value")), d.get("error", "")) for d in data]


def judge_exercise(exercise_id: str, folder: Path, outcomes: list | str, why: str) -> tuple[float, str, str]:
    """(points, status, message) of one exercise; ``outcomes``: from :func:`read_outcomes`;
    ``why``: what stopped the notebook, if anything (added to a message about missing results)."""
    if isinstance(outcomes, str):
        return 0.0, "error", f"Not graded: {outcomes}{'; ' + why if why else ''}."
    judged = Judged(exercise_id, outcomes, load_cases(folder, exercise_id))
    points, maximum = score(exercise_id, folder, judged)
    if (points == maximum) != judged.verdict.passed:
        raise AssertionError(f"otter's score {points}/{maximum} disagrees with the verdict {judged.verdict}")
    return points, judged.verdict.status, judged.verdict.message


# ---------------------------------------------------------------------------------------------
# One submission


def chapter_of_name(name: str, stems: list[str]) -> str | None:
    """The chapter a file name names ("Copy of 01_data_and_models (2).ipynb" → 01_data_and_models)."""
    found = [stem for stem in stems if stem.lower() in name.lower()]
    return max(found, key=len) if found else None


def read_submission(path: Path) -> Any:
    """The submitted notebook (nbformat), or a str saying why it is not one."""
    import nbformat

    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return f"the file is over {MAX_NOTEBOOK_BYTES // 1024**2} MiB"
    try:
        text = path.read_bytes().decode("utf-8")
        notebook = nbformat.reads(text, as_version=4)
    except (UnicodeDecodeError, ValueError) as error:  # json's and nbformat's "not a notebook"
        return f"the file is not a valid notebook ({type(error).__name__}: {str(error)[:120]})"
    if not isinstance(notebook.get("cells"), list):
        return "the file is not a valid notebook (it has no cells)"
    return notebook


def chapter_of_content(notebook: Any) -> str | None:
    """The chapter a notebook's content says it is: its metadata, else its check cells' exercises."""
    import re

    from coursekit.exercises import all_exercises

    named = notebook.metadata.get("coursekit", {}).get("chapter") if isinstance(notebook.metadata, dict) else None
    if isinstance(named, str):
        return named
    known = all_exercises()
    pattern = re.compile(r"\bcheck_exercise\(\s*[\"'](?P<id>[\w.-]+)[\"']")
    for cell in notebook.cells:
        for match in pattern.finditer(str(cell.get("source", ""))):
            if match["id"] in known:
                return known[match["id"]].chapter
    return None


def sandbox_env(home: str) -> dict[str, str]:
    """The whole environment of a submission's process: no variable of the grader's leaks in."""
    import coursekit
    from coursekit.config import cache_dir

    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": home,
        "PYTHONPATH": str(Path(coursekit.__file__).resolve().parent.parent),
        "COURSEKIT_CACHE": str(cache_dir().resolve()),
        "COURSEKIT_PROGRESS": "off",
        "COURSEKIT_THREADS": os.environ.get("COURSEKIT_THREADS", "1"),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib" if home.startswith("/home/") else f"{home}/.matplotlib",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",
    }
    for name in ("COURSEKIT_PROFILE", "COURSEKIT_DEVICE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def run_submission(notebook_path: Path, chapter: Chapter, key: Path, settings: Settings, mode: str) -> tuple[dict, str]:
    """Run one submission in the sandbox; ({exercise id: outcomes or why not}, what stopped it)."""
    import coursekit
    from coursekit.config import cache_dir

    with tempfile.TemporaryDirectory(prefix="grade-run-") as temporary:
        run_dir = Path(temporary)
        inputs, outputs = run_dir / "input", run_dir / "output"
        shutil.copytree(key / "cases", inputs / "cases")
        shutil.copy(WORKER, inputs / WORKER.name)
        shutil.copy(notebook_path, inputs / "submission.ipynb")
        outputs.mkdir()
        for folder in (run_dir, inputs, inputs / "cases", outputs):
            folder.chmod(0o755 if folder != outputs else 0o777)
        home = "/home/student" if mode == "bubblewrap" else str(outputs / "home")
        command = [sys.executable, str(inputs / WORKER.name), "student", str(inputs / "submission.ipynb")]
        command += ["--cases", str(inputs / "cases"), "--out", str(outputs), "--exercises", *chapter.exercises]
        command += ["--cell-timeout", str(int(settings.limits.seconds)), "--call-timeout", str(settings.call_timeout)]
        read_only = [inputs, Path(coursekit.__file__).resolve().parent, cache_dir().resolve()]
        result = sandbox.run(
            command,
            read_only=read_only,
            writable=outputs,
            env=sandbox_env(home),
            limits=settings.limits,
            log=run_dir / "sandbox.log",
            mode=mode,
        )
        why = stopped(result, outputs, settings)
        found = {e: read_outcomes(outputs / f"{e}.pt", len(load_cases(key, e))) for e in chapter.exercises}
    return found, why


def stopped(result: sandbox.Result, outputs: Path, settings: Settings) -> str:
    """What stopped the notebook before it finished, in words ("" when it finished)."""
    if result.timed_out:
        return f"the notebook ran past its time limit of {settings.limits.seconds:g} s and was stopped"
    if result.returncode != 0:
        memory = settings.limits.memory / sandbox.GIB
        if "DeadKernelError" in result.log or "MemoryError" in result.log:
            return f"the notebook's kernel died (memory limit {memory:g} GiB)"
        return f"the notebook could not be run (exit status {result.returncode}; memory limit {memory:g} GiB)"
    try:
        errors = json.loads((outputs / "run.json").read_text())["errors"]
    except (OSError, ValueError, KeyError, TypeError):
        return "the notebook stopped before it finished"
    if errors:
        first = errors[0]
        return f"cell {first.get('cell')} of the graded part raised {str(first.get('error'))[:200]}"
    return ""


def grade_file(
    student: str, path: Path, relative: str, chapters: dict[str, Chapter], keys: dict[str, Path], settings: Settings
) -> list[dict]:
    """The rows of one submitted file (``keys``: each chapter's answer key folder)."""
    mode, missing = _mode(settings)
    isolation = mode if not missing else f"process (missing: {missing})"
    named = chapter_of_name(path.name, list(chapters))
    notebook = read_submission(path)
    if isinstance(notebook, str):
        if named is None:
            return [row(student, relative, "", "", "error", f"Not graded: {notebook}.", isolation=isolation)]
        return [
            row(student, relative, named, e, "error", f"Not graded: {notebook}.") for e in chapters[named].exercises
        ]
    content = chapter_of_content(notebook)
    stem = named or content
    if stem is None or stem not in chapters:
        why = "it is not one of the graded chapters' notebooks" if stem is None else f"{stem} has no graded exercise"
        return [row(student, relative, stem or "", "", "error", f"Not graded: {why}.", isolation=isolation)]
    chapter = chapters[stem]
    if content is not None and content != stem:
        why = f"Not graded: this file holds the notebook of {content}, not of {stem}."
        return [row(student, relative, stem, e, "error", why) for e in chapter.exercises]
    key = keys[stem]
    found, why = run_submission(path, chapter, key, settings, mode)
    rows = []
    for exercise_id in chapter.exercises:
        points, status, message = judge_exercise(exercise_id, key, found[exercise_id], why)
        rows.append(row(student, relative, stem, exercise_id, status, message, points=points, isolation=isolation))
    return rows


def _mode(settings: Settings) -> tuple[str, str]:
    """(mode, what is missing) for ``settings.isolation``."""
    if settings.isolation == "process":
        return "process", "bubblewrap not used (--isolation process)"
    mode, missing = sandbox.isolation()
    if settings.isolation == "bubblewrap" and mode != "bubblewrap":
        raise RuntimeError(f"--isolation bubblewrap, but {missing}")
    return mode, missing


def submissions(folder: Path) -> list[tuple[str, Path, str]]:
    """(student, notebook path, path relative to the student's folder) for every ``.ipynb`` of every
    student folder in ``folder`` (checkpoints skipped), in order."""
    if not folder.is_dir():
        raise NotADirectoryError(f"SUBMISSIONS must be a folder of student folders, got {folder}")
    found = []
    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(student.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts and path.is_file() and not path.is_symlink():
                found.append((student.name, path, str(path.relative_to(student))))
    return found


def write_grades(rows: list[dict], path: Path) -> None:
    """Write the rows as CSV (``COLUMNS``) to ``path``, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for one in rows:
        points = one["points"]
        writer.writerow(one | {"points": int(points) if float(points).is_integer() else round(points, 2)})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(buffer.getvalue())
    os.replace(partial, path)


def grade(
    folder: Path, grades: Path, settings: Settings, jobs: int = 1, assigned: list[str] | None = None
) -> list[dict]:
    """Grade every submission in ``folder`` (``jobs`` at a time); write and return the rows.

    ``assigned``: chapter prefixes ("01", "03a") a student should have handed in; a missing one
    gets its rows with 0 points ("not handed in").
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    chapters = graded_chapters(settings.students)
    mode, missing = _mode(settings)
    print(f"isolation: {mode}" + (f" — WEAKER: {missing}" if missing else ""), file=sys.stderr)
    work = submissions(folder)
    start = time.perf_counter()
    # every key first (a chapter that cannot run stops the batch here), each built once
    keys = {stem: build_key(chapter, settings) for stem, chapter in chapters.items()}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda item: grade_file(*item, chapters, keys, settings), work))
    rows = [one for result in results for one in result]
    rows += not_handed_in(folder, rows, chapters, assigned or [])
    rows.sort(key=lambda r: (r["student"], r["notebook"], r["exercise"]))
    write_grades(rows, grades)
    print(f"graded {len(work)} notebooks in {time.perf_counter() - start:.0f} s: {grades}", file=sys.stderr)
    return rows


def not_handed_in(folder: Path, rows: list[dict], chapters: dict[str, Chapter], assigned: list[str]) -> list[dict]:
    """Rows for the assigned chapters a student did not hand in."""
    wanted = [stem for stem in chapters if any(stem.startswith(prefix) for prefix in assigned)]
    extra = []
    for student in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        seen = {r["chapter"] for r in rows if r["student"] == student}
        for stem in wanted:
            if stem not in seen:
                extra += [row(student, "", stem, e, "missing", "Not handed in.") for e in chapters[stem].exercises]
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="one folder per student, holding their .ipynb files")
    parser.add_argument("grades", type=Path, help="the CSV to write")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook (wall clock)")
    parser.add_argument("--call-timeout", type=float, default=60, help="seconds per call of a student's function")
    parser.add_argument("--memory", type=float, default=6, help="GiB of address space per process")
    parser.add_argument("--isolation", choices=("auto", "bubblewrap", "process"), default="auto")
    parser.add_argument("--chapters", nargs="*", default=[], help="chapters assigned (prefixes: 01 03a)")
    parser.add_argument("--students", type=Path, default=Settings.students, help="the student notebooks")
    parser.add_argument("--key", type=Path, default=Settings.key, help="the answer key's folder")
    args = parser.parse_args(argv)
    limits = sandbox.Limits(seconds=args.timeout, memory=int(args.memory * sandbox.GIB))
    settings = Settings(limits, args.call_timeout, args.isolation, args.key.resolve(), args.students.resolve())
    grade(args.submissions, args.grades, settings, args.jobs, args.chapters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
