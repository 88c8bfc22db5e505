"""The chapters' code fits the page: the built site's code column shows 88 characters at a
1280-px window without scrolling sideways (the browser test checks the page itself)."""

import re
from pathlib import Path

import pytest

from tools.notebooks import chapter_paths

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE = 88
# Wrapped on the branch of issue 17 (which also moves their table plumbing into coursekit.report);
# remove a chapter from here when that lands. Non-strict, so the merge order does not matter.
WRAPPED_ELSEWHERE: set[str] = set()
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.M | re.S)


def code_cells(text: str) -> list[str]:
    """The sources of the ``{code-cell}`` blocks of a MyST notebook, in order (options included)."""
    return CELL.findall(text)


def long_lines(text: str) -> list[str]:
    """``cell N, line M (L chars)`` for every code-cell line longer than ``MAX_LINE``."""
    found = []
    for index, cell in enumerate(code_cells(text)):
        for number, line in enumerate(cell.splitlines(), 1):
            if len(line) > MAX_LINE:
                found.append(f"cell {index}, line {number} ({len(line)} chars): {line[:50]}…")
    return found


def test_code_cells_are_found():
    text = (
        "# t\n\n```{code-cell} ipython3\n:tags: [hide-input]\n\nx = 1\n```\n\ntext\n\n```python\ny\n```\n"
        "```{code-cell} ipython3\n" + "z" * 89 + "\n```\n"
    )
    assert code_cells(text) == [":tags: [hide-input]\n\nx = 1\n", "z" * 89 + "\n"]
    assert long_lines(text) == [f"cell 1, line 1 (89 chars): {'z' * 50}…"]
    assert long_lines(text.replace("z" * 89, "z" * 88)) == []


def _chapters():
    for path in chapter_paths(ROOT):
        pending = pytest.mark.xfail(reason="wrapped by issue 17", strict=False)
        yield pytest.param(path, id=path.stem, marks=[pending] if path.stem in WRAPPED_ELSEWHERE else [])


@pytest.mark.parametrize("chapter", list(_chapters()))
def test_chapter_code_lines_fit_the_page(chapter):
    text = chapter.read_text()
    assert code_cells(text), f"no code cells found in {chapter}"
    assert long_lines(text) == []


def display_math_inside_paragraphs(text: str) -> list[str]:
    """Lines that open a ``$$`` display block right after a line of text, or that close one
    right before a line of text: MyST then pairs the dollars wrongly and the page shows raw TeX
    (and a ``{term}`` role after it as plain text). A display block stands in its own paragraph."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$$"):
            i += 1
            continue
        end = i if len(line.strip()) > 2 and line.rstrip().endswith("$$") else i + 1
        while end < len(lines) and not lines[end].rstrip().endswith("$$"):
            end += 1
        if i > 0 and lines[i - 1].strip():
            found.append(f"line {i + 1}: no blank line before {line[:40]!r}")
        if end + 1 < len(lines) and lines[end + 1].strip():
            found.append(f"line {end + 1}: no blank line after the block opened by {line[:40]!r}")
        i = end + 1
    return found


def test_display_math_inside_a_paragraph_is_found():
    assert display_math_inside_paragraphs("a\n\n$$x$$\n\nb") == []
    assert display_math_inside_paragraphs("a\n\n$$\nx\n$$\n\nb") == []
    assert len(display_math_inside_paragraphs("a\n$$x$$\nb")) == 2
    assert len(display_math_inside_paragraphs("a\n\n$$\nx\n$$\nb")) == 1
    assert display_math_inside_paragraphs("a\n\n$$x\ny$$\n\nb") == []
    assert len(display_math_inside_paragraphs("a\n$$x\ny$$\nb")) == 2


@pytest.mark.parametrize("chapter", list(_chapters()))
def test_display_math_stands_in_its_own_paragraph(chapter):
    assert display_math_inside_paragraphs(chapter.read_text()) == []


# --- The learner's path (COURSE_STYLE, "Two paths") ------------------------------------------------

from tools.chapter_metrics import PENDING_TEACH, PROSE_LIMIT, learner_prose, prose_words  # noqa: E402
from tools.notebooks import chapter_terms  # noqa: E402

NEW_TERMS_LIMIT = 8
QUIZ_CELL = re.compile(r"\bask\(")


def _teaching_chapters():
    for path in chapter_paths(ROOT):
        if not path.stem[:2].isdigit():
            continue
        pending = pytest.mark.xfail(reason="not yet rewritten (issue 30)", strict=False)
        yield pytest.param(path, id=path.stem, marks=[pending] if path.stem in PENDING_TEACH else [])


def test_learner_prose_ignores_code_folds_and_display_math():
    text = (
        "---\nfm: x\n---\n# Title\n\nOne two three.\n\n```{code-cell} ipython3\nprint('four five')\n```\n\n"
        ":::{dropdown} Reproduction notes\nsix seven\n:::\n\n```{admonition} Exercise 1\n:class: tip\neight\n```\n\n"
        "$$\nnine\n$$\n"
    )
    assert prose_words(text) == 7  # Title, One, two, three, eight, and the box option line ":class: tip"
    assert "six" not in learner_prose(text) and "eight" in learner_prose(text)


@pytest.mark.parametrize("chapter", list(_teaching_chapters()))
def test_the_learner_path_is_short(chapter):
    words = prose_words(chapter.read_text())
    assert words <= PROSE_LIMIT, f"{words} words of prose on the learner's path (limit {PROSE_LIMIT})"


@pytest.mark.parametrize("chapter", list(_teaching_chapters()))
def test_a_chapter_opens_with_its_question_and_ends_with_its_lesson(chapter):
    text = chapter.read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert "What you learned" in headings and "What this run found" in headings, headings
    learned = text.split("## What you learned", 1)[1].split("\n## ", 1)[0]
    bullets = re.findall(r"^- ", learned, re.M)
    assert 3 <= len(bullets) <= 5, f"'What you learned' has {len(bullets)} bullets (3-5)"
    opening = text.split("```{code-cell}", 1)[0]
    assert re.search(r"\*\*The question\.\*\*", opening), "no '**The question.**' before the first cell"


@pytest.mark.parametrize("chapter", list(_teaching_chapters()))
def test_two_to_four_concept_questions(chapter):
    cells = [c for c in code_cells(chapter.read_text()) if QUIZ_CELL.search(c)]
    assert 2 <= len(cells) <= 4, f"{len(cells)} concept questions (2-4)"
    for cell in cells:
        assert "remove-input" in cell.split("\n", 1)[0] or ":tags: [remove-input]" in cell, cell[:80]


@pytest.mark.parametrize("chapter", list(_teaching_chapters()))
def test_at_most_eight_new_terms_on_the_learner_path(chapter):
    earlier: set[str] = set()
    for path in chapter_paths(ROOT):
        if path == chapter:
            break
        earlier |= {t.lower() for t in chapter_terms(path.read_text())}
    new = [t for t in chapter_terms(learner_prose(chapter.read_text())) if t.lower() not in earlier]
    assert len(new) <= NEW_TERMS_LIMIT, f"{len(new)} new terms: {new}"


@pytest.mark.parametrize("chapter", list(_teaching_chapters()))
def test_no_reference_solution_shows_before_the_student_tries(chapter):
    """Every solution is folded (a hide-cell cell or a dropdown), and every exercise check uses
    the exercise bank, which names likely mistakes in words."""
    text = chapter.read_text()
    for cell in code_cells(text):
        body = cell.split("\n\n", 1)[-1] if cell.startswith(":") else cell
        if body.startswith("# Solution"):
            assert "hide-cell" in cell.split("\n", 1)[0], f"a visible solution: {body[:60]!r}"
    assert "check_function(" not in text, "use check_exercise (the bank's mistakes and points)"
    assert "check_exercise(" in text, "no exercise"
