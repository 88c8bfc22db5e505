"""Assigning and grading: the student notebooks carry no solution, and `make grade` grades a
folder of crafted submissions (correct, blank, a known mistake, an endless loop, an attempt to
read the answer key and another student's file, a truncated file, another chapter's notebook)
with each row of the CSV as it should be.

The end-to-end test is marked ``grading`` (`make grading`, after `make colab`, whose trained
models it reuses from the cache); the rest are quick unit tests.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import grade, sandbox  # noqa: E402
from tools.notebooks import (  # noqa: E402
    chapter_notebook,
    chapter_paths,
    is_solution,
    solution_only_uses,
    student_notebook,
    write_student_notebooks,
)

SOLUTION_START = re.compile(r"^#\s*Solution\b")


# --- the student notebooks ---------------------------------------------------------------------


def _md_cells(path: Path) -> list[tuple[list[str], str]]:
    """(tags, source) of each code cell of a chapter's MyST markdown, read independently of the
    generator (jupytext), for the trace check."""
    import jupytext

    notebook = jupytext.read(path, fmt="md:myst")
    return [(c.metadata.get("tags", []), c.source) for c in notebook.cells if c.cell_type == "code"]


def _code(line: str) -> str:
    """A line without its indentation and trailing comment (how two cells share a line)."""
    return re.sub(r"\s+#[^'\"]*$", "", line).strip()


def solution_traces(markdown: Path, student_text: str) -> list[str]:
    """Every non-trivial line of the chapter's solution cells (tagged hide-cell and starting
    "# Solution", or calling use_solution) that appears in ``student_text``, unless the same code
    is also in a cell that is not a solution (then it is not solution code)."""
    cells = _md_cells(markdown)
    solutions = [s for tags, s in cells if (SOLUTION_START.match(s) and "hide-cell" in tags) or "use_solution(" in s]
    kept = {_code(line) for tags, s in cells if s not in solutions for line in s.splitlines()}
    found = []
    for source in solutions:
        for line in source.splitlines():
            text = line.strip().removeprefix("# ")
            if len(text) >= 10 and _code(line) not in kept and text in student_text:
                found.append(text)
    return found


def check_student_notebooks(folder: Path) -> list[Path]:
    """Assert the student notebooks in ``folder`` hold no solution trace; return their paths."""
    paths = []
    for markdown in chapter_paths(ROOT):
        path = folder / f"{markdown.stem}.ipynb"
        text = path.read_text()
        assert not solution_traces(markdown, text), (path.name, solution_traces(markdown, text)[:3])
        notebook = json.loads(text)
        assert notebook["metadata"]["coursekit"]["chapter"] == markdown.stem
        sources = ["".join(c["source"]) for c in notebook["cells"]]
        assert not [s for s in sources if s.startswith(("# Solution", "#@title Solution")) or "use_solution(" in s]
        paths.append(path)
    return paths


def test_student_notebooks_have_no_solution_and_keep_the_checks(tmp_path, capsys):
    written = write_student_notebooks(ROOT, tmp_path)
    assert sorted(written) == sorted(check_student_notebooks(tmp_path))
    for markdown in chapter_paths(ROOT):
        full = chapter_notebook(markdown, ROOT)
        student = json.loads((tmp_path / f"{markdown.stem}.ipynb").read_text())
        removed = [c for c in full.cells if is_solution(c)]
        assert len(student["cells"]) == len(full.cells) - len(removed) + 1  # + the student note
        checks = [c.source for c in full.cells if "check_exercise(" in c.source and not is_solution(c)]
        assert all(any(check == "".join(c["source"]) for c in student["cells"]) for check in checks)
        note = "".join(student["cells"][1]["source"])
        assert "colab.research.google.com/github/" in note and f"student/{markdown.stem}.ipynb" in note


def test_the_trace_check_finds_a_solution_left_in(tmp_path):
    """The trace check is real: a full notebook (solutions folded, not removed) fails it."""
    markdown = next(p for p in chapter_paths(ROOT) if "use_solution(" in p.read_text())
    full = (ROOT / markdown.with_suffix(".ipynb").relative_to(ROOT)).read_text()
    assert solution_traces(markdown, full)


def test_a_cell_that_needs_a_solution_is_an_error():
    from nbformat.v4 import new_code_cell

    cells = [
        new_code_cell("def f(x):\n    ..."),
        new_code_cell("# Solution: the sum\nhelper = 3\nf = use_solution('f', lambda x: x, f)"),
        new_code_cell("print(f(2), helper)"),
    ]
    assert solution_only_uses(cells) == ["cell 2 reads `helper`, which only a solution cell defines"]


def test_a_name_a_later_function_makes_its_own_is_not_a_solution_name():
    """Only names read from the notebook's namespace count: a parameter or a local of a later
    cell's function that shares a name with a solution's variable is that function's own."""
    from nbformat.v4 import new_code_cell

    cells = [
        new_code_cell("def f(x):\n    ..."),
        new_code_cell("# Solution: a search\ndef solution(x):\n    c = x * 2\n    return c\nc = 1\n"),
        new_code_cell("def g(v, c):\n    def h(c):\n        return c\n    return h(c) + v\nprint(g(1, 2))"),
        new_code_cell("def k():\n    return c\n"),
    ]
    assert solution_only_uses(cells) == ["cell 3 reads `c`, which only a solution cell defines"]


def test_student_notebook_marks_its_exercises():
    markdown = next((p for p in chapter_paths(ROOT) if "check_exercise(" in p.read_text()), None)
    if markdown is None:
        pytest.skip("no chapter uses check_exercise yet")
    notebook = student_notebook(markdown, ROOT)
    ids = notebook.metadata["coursekit"]["exercises"]
    from coursekit.exercises import all_exercises

    assert ids and all(all_exercises()[i].chapter == markdown.stem for i in ids)


# --- judging outside the sandbox ---------------------------------------------------------------


def _entries():
    from coursekit.exercises import all_exercises

    return list(all_exercises().values())


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e.id)
def test_judging_recorded_outcomes_gives_the_check_cells_verdict(entry):
    """Exercise.judge on outcomes (as the sandbox records them) says what the check says."""
    from coursekit.exercises import outcome

    cases = list(entry.sample_cases())

    def blank(*args): ...

    def broken(*args):
        raise ZeroDivisionError("no")

    for function in [entry.reference, blank, broken, *[m.function for m in entry.mistakes]]:
        outcomes = [outcome(function, case) for case in cases]
        judged, checked = entry.judge(outcomes, cases), entry.verdict(function, cases)
        assert (judged.status, judged.mistake) == (checked.status, checked.mistake)
        assert judged.message.replace(f"`{entry.id}`", "`f`") == checked.message.replace(
            f"`{getattr(function, '__name__', '')}`", "`f`"
        )


def test_outcomes_travel_as_data_and_a_pickle_of_code_is_refused(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import grade_worker

    value = (torch.arange(3.0), [1, 2.5, None], {"a": torch.ones(2)}, ...)
    path = tmp_path / "f.pt"
    torch.save([{"kind": "value", "value": grade_worker.plain(value), "error": ""}], path)
    (got,) = grade.read_outcomes(path, 1)
    assert got.kind == "value" and torch.equal(got.value[0], value[0]) and got.value[3] is Ellipsis
    assert got.value[1] == [1, 2.5, None] and torch.equal(got.value[2]["a"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save([Evil()], path)
    assert "could not be read as data" in grade.read_outcomes(path, 1)
    path.write_bytes(b"not a zip")
    assert "could not be read as data" in grade.read_outcomes(path, 1)
    torch.save([{"kind": "value", "value": 1}], path)
    assert "one entry per case" in grade.read_outcomes(path, 2)


def test_file_names_and_contents_name_chapters():
    stems = ["01_data_and_models", "03a_lbfgs_attack", "03b_minimum_distortion"]
    assert grade.chapter_of_name("Copy of 01_data_and_models (2).ipynb", stems) == "01_data_and_models"
    assert grade.chapter_of_name("03B_Minimum_Distortion.ipynb", stems) == "03b_minimum_distortion"
    assert grade.chapter_of_name("homework.ipynb", stems) is None


# --- the sandbox ---------------------------------------------------------------------------------


def _sandboxed(tmp_path: Path, code: str, seconds: float = 60, memory: int = 2 * sandbox.GIB, mode=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    out.chmod(0o777)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/student" if (mode or sandbox.isolation()[0]) == "bubblewrap" else str(out),
    }
    limits = sandbox.Limits(seconds=seconds, memory=memory, cpu_seconds=120)
    result = sandbox.run(
        [sys.executable, "-c", code],
        read_only=[],
        writable=out,
        env=env,
        limits=limits,
        log=tmp_path / "log",
        mode=mode,
    )
    return result


def test_the_sandbox_stops_a_loop_at_its_wall_clock_limit(tmp_path):
    start = time.perf_counter()
    result = _sandboxed(tmp_path, "while True: pass", seconds=3)
    assert result.timed_out and result.returncode is None and time.perf_counter() - start < 30


def test_the_sandbox_limits_memory(tmp_path):
    result = _sandboxed(tmp_path, "x = bytearray(8 * 1024**3)", memory=1 * sandbox.GIB)
    assert result.returncode != 0 and "MemoryError" in result.log


def test_the_sandbox_hides_the_host_and_the_network(tmp_path):
    mode, missing = sandbox.isolation()
    secret = ROOT / "README.md"
    code = (
        "import socket, os\n"
        f"try:\n    open({str(secret)!r}).read(); print('READ')\n"
        "except OSError as e: print('no file', type(e).__name__)\n"
        "try:\n    socket.create_connection(('93.184.216.34', 80), timeout=3); print('NET')\n"
        "except OSError as e: print('no network', type(e).__name__)\n"
        "print('uid', os.getuid())"
    )
    result = _sandboxed(tmp_path, code)
    assert result.returncode == 0, result.log
    if mode != "bubblewrap":
        warnings.warn(f"no sandbox here ({missing}): host files and the network are reachable", stacklevel=1)
        pytest.skip(f"bubblewrap unavailable: {missing}")
    assert "no file" in result.log and "READ" not in result.log
    assert "no network" in result.log and "NET" not in result.log
    assert "uid 65534" in result.log


# --- the end-to-end check: crafted submissions ---------------------------------------------------


def cheapest_chapter(chapters: dict) -> grade.Chapter:
    """The graded chapter that runs fastest (benchmarks/chapter_times.json's CPU seconds)."""
    times = json.loads((ROOT / "benchmarks" / "chapter_times.json").read_text())["chapters"]
    return min(chapters.values(), key=lambda c: times.get(c.stem, {}).get("cpu_seconds", float("inf")))


def _with_cell(template: dict, exercise_id: str, source: str) -> dict:
    """``template`` (a student notebook's JSON) with a cell of ``source`` right after the cell
    that defines ``exercise_id``'s function (what a student's edit amounts to)."""
    notebook = json.loads(json.dumps(template))
    cells = notebook["cells"]
    index = next(i for i, c in enumerate(cells) if f"def {exercise_id}(" in "".join(c["source"]))
    cells.insert(
        index + 1,
        {
            "cell_type": "code",
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
            "id": f"student-{exercise_id}",
        },
    )
    return notebook


def _define(exercise_id: str, body: str) -> str:
    return f"def {exercise_id}(*args, **kwargs):\n" + "".join(f"    {line}\n" for line in body.splitlines())


def craft(folder: Path, template_path: Path, chapter: grade.Chapter, other: Path | None, key: Path) -> dict:
    """Write the crafted submissions into ``folder`` (one folder per "student"); returns what
    each student's rows must say."""
    template = json.loads(template_path.read_text())
    first = chapter.exercises[0]
    name = template_path.name
    snoop_targets = [key / chapter.stem / "stamp.json", folder / "correct" / name, ROOT / "book" / f"{chapter.stem}.md"]
    students = {
        "correct": [
            _define(e, f"from coursekit.exercises import exercise\nreturn exercise({e!r}).reference(*args, **kwargs)")
            for e in chapter.exercises
        ],
        "wrong": [
            _define(
                e,
                "from coursekit.exercises import exercise\n"
                f"return exercise({e!r}).mistakes[0].function(*args, **kwargs)",
            )
            for e in chapter.exercises
        ],
        "loops": [_define(first, "while True:\n    pass")],
        "snoops": [
            _define(
                first,
                "found = []\n"
                f"for path in {[str(p) for p in snoop_targets]!r}:\n"
                "    try:\n        found.append('READ ' + str(len(open(path, 'rb').read())))\n"
                "    except OSError as error:\n        found.append(type(error).__name__)\n"
                "raise RuntimeError('read: ' + ', '.join(found))",
            )
        ],
    }
    for student, cells in students.items():
        notebook = template
        for exercise_id, source in zip(chapter.exercises if student in ("correct", "wrong") else [first], cells):
            notebook = _with_cell(notebook, exercise_id, source)
        (folder / student).mkdir(parents=True)
        (folder / student / name).write_text(json.dumps(notebook))
    (folder / "blank").mkdir()
    (folder / "blank" / name).write_text(json.dumps(template))
    (folder / "truncated").mkdir()
    text = json.dumps(template)
    (folder / "truncated" / name).write_text(text[: len(text) // 2])
    if other is not None:
        (folder / "other_chapter").mkdir()
        (folder / "other_chapter" / name).write_text(other.read_text())
    return {"snoop_targets": snoop_targets}


@pytest.mark.grading
def test_grading_crafted_submissions(tmp_path):
    from coursekit.exercises import exercise

    students_folder = tmp_path / "student"
    write_student_notebooks(ROOT, students_folder)
    check_student_notebooks(students_folder)
    chapters = grade.graded_chapters(students_folder)
    assert chapters, "no chapter has a bank exercise in a check cell"
    chapter = cheapest_chapter(chapters)
    others = [p for p in students_folder.glob("*.ipynb") if p.stem != chapter.stem]
    key = tmp_path / "key"
    settings = grade.Settings(sandbox.Limits(seconds=600, memory=6 * sandbox.GIB), 5.0, "auto", key, students_folder)
    submissions = tmp_path / "submissions"
    crafted = craft(submissions, chapter.notebook, chapter, others[0] if others else None, key)
    start = time.perf_counter()
    rows = grade.grade(submissions, tmp_path / "grades.csv", settings, jobs=2)
    seconds = time.perf_counter() - start
    text = (tmp_path / "grades.csv").read_text()
    (ROOT / "_build" / "grading").mkdir(parents=True, exist_ok=True)
    (ROOT / "_build" / "grading" / "crafted.csv").write_text(text)
    print(f"\n{chapter.stem}: graded {len(list(submissions.iterdir()))} submissions in {seconds:.0f} s\n{text}")
    assert rows == list(csv.DictReader(io.StringIO(text))) or len(rows) == len(list(csv.DictReader(io.StringIO(text))))
    by = {}
    for one in csv.DictReader(io.StringIO(text)):
        by.setdefault(one["student"], []).append(one)
    first, mode, missing = chapter.exercises[0], *sandbox.isolation()
    for one in by["correct"]:
        assert (
            one["status"] == "correct"
            and float(one["points"]) == float(one["maximum"]) == exercise(one["exercise"]).points
        )
        assert one["message"].startswith("Correct")
        assert one["isolation"] == mode or missing in one["isolation"]
    for one in by["blank"]:
        assert (one["status"], float(one["points"])) == ("blank", 0) and one["message"].startswith("Not done yet")
    for one in by["wrong"]:
        assert (one["status"], float(one["points"])) == ("wrong", 0)
        assert exercise(one["exercise"]).mistakes[0].explanation in one["message"]
    loops = {r["exercise"]: r for r in by["loops"]}
    assert loops[first]["status"] == "wrong" and "ran past the time limit of 5 s per case" in loops[first]["message"]
    snoop = {r["exercise"]: r for r in by["snoops"]}[first]
    assert snoop["status"] == "wrong" and "raised RuntimeError: read:" in snoop["message"]
    if mode == "bubblewrap":
        assert "READ" not in snoop["message"], snoop["message"]
        assert snoop["message"].count("FileNotFoundError") + snoop["message"].count("PermissionError") == len(
            crafted["snoop_targets"]
        )
    else:
        warnings.warn(
            f"grading ran without a sandbox ({missing}); the reading attempt was not required to fail", stacklevel=1
        )
        assert missing in snoop["isolation"]
    for one in by["truncated"]:
        assert one["status"] == "error" and "not a valid notebook" in one["message"] and one["points"] == "0"
    for one in by.get("other_chapter", []):
        assert one["status"] == "error" and "holds the notebook of" in one["message"]
    assert {len(by[s]) for s in ("correct", "blank", "wrong", "truncated")} == {len(chapter.exercises)}
