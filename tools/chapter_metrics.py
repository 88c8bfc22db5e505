"""How much a learner reads in a chapter: words of prose on the learner's path.

The learner's path is a chapter's Markdown outside code cells and outside folded blocks
(dropdowns, toggles, cells tagged ``hide-cell``/``hide-input``/``remove-input``),
and outside display math. A chapter aims at no more than ``PROSE_LIMIT`` words there; what a
reviewer needs goes into folded "Reproduction notes". The browser test measures the built page
as well (visible words and tables with folded parts closed: ``tests/test_site.py``).

    python -m tools.chapter_metrics     # words per chapter
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROSE_LIMIT = 1500  # words of prose on the learner's path of a chapter's .md
PAGE_WORD_LIMIT = 3000  # visible words of the built page (folded parts closed; code and outputs included)
PAGE_TABLE_LIMIT = 4  # tables visible on the built page with folded parts closed
# Chapters not yet rewritten for the learner's path (issue 30). Each chapter's branch removes its
# own line; non-strict, so the merge order does not matter.
PENDING_TEACH: set[str] = set()
FENCE = re.compile(r"^\s*(`{3,}|:{3,})\s*(\{[\w-]+\})?(.*)$")
FOLDED = re.compile(r"dropdown|toggle|details|hide-cell|hide-input|remove-input")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def _opens(lines: list[str], index: int, stack: list[tuple[str, bool]]) -> tuple[str, bool] | None:
    """The (fence, hidden) a line opens, or None when it opens nothing."""
    match = FENCE.match(lines[index])
    if not match or not (match.group(2) or not stack or not lines[index].strip().startswith(stack[-1][0])):
        return None
    fence, directive = match.group(1), match.group(2) or ""
    if stack and lines[index].strip() == stack[-1][0] and not directive:
        return None
    if not (directive or match.group(3).strip() or not stack):
        return None
    options = " ".join(lines[index + 1 : index + 6])
    folded = bool(FOLDED.search(directive + match.group(3) + options))
    code = directive == "{code-cell}" or (not directive and fence.startswith("`"))
    return fence, folded or code


def learner_prose(text: str) -> str:
    """The prose of a MyST chapter on the learner's path (front matter, code, folded blocks and
    display math removed)."""
    text = re.sub(r"^---\n.*?\n---\n", "", text, flags=re.S)
    lines, out, stack = text.splitlines(), [], []
    for index, line in enumerate(lines):
        if stack and line.strip() == stack[-1][0]:
            stack.pop()
            continue
        opened = _opens(lines, index, stack)
        if opened:
            stack.append(opened)
            continue
        if not any(hidden for _, hidden in stack):
            out.append(line)
    prose = "\n".join(out)
    return re.sub(r"\$\$.*?\$\$", "", prose, flags=re.S)


def prose_words(text: str) -> int:
    """Words of prose on the learner's path of a chapter's text."""
    return len(WORD.findall(learner_prose(text)))


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tools.notebooks import chapter_paths

    for path in chapter_paths(Path(".")):
        if path.stem.startswith("0"):
            words = prose_words(path.read_text())
            over = f"  (over {PROSE_LIMIT})" if words > PROSE_LIMIT else ""
            print(f"{path.stem:34s} {words:5d} words{over}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
