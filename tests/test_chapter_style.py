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


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_code_lines_fit_the_page(chapter):
    text = chapter.read_text()
    assert code_cells(text), f"no code cells found in {chapter}"
    assert long_lines(text) == []
