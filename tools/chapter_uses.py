"""Which chapter uses which coursekit helper, read from the chapters' own code, and the sentence
that says so in each helper's docstring ("Used in chapter 3b (book/03b_minimum_distortion.md).").

The chapters (the MyST notebooks ``_toc.yml`` lists) import what they call: ``from coursekit.x
import a, b`` in their code cells. Every function and class a chapter imports carries, as the last
paragraph of its docstring, the sentence naming exactly the chapters that import it (as d2l's
helpers name the chapter that defines them); no other docstring claims a chapter.
``tests/test_chapter_uses.py`` checks it against the chapters as they are; this tool writes the
sentences after a chapter changes its imports::

    python tools/chapter_uses.py            # list the helpers whose sentence is wrong or missing
    python tools/chapter_uses.py --write    # rewrite those sentences in src/coursekit
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.M | re.S)
CLAIM = re.compile(r"Used in chapters? (.*?)\.(?:\s*$)", re.S)
CHAPTER_REFERENCE = re.compile(r"(\d+[a-z]?) \((book/[^)]+\.md)\)")
WIDTH = 96  # the sentence's lines, indentation included, stay well inside ruff's 120


def chapter_number(path: Path) -> str:
    """The chapter's number as the book says it, from its file name: 03b_… → "3b", 01_… → "1"."""
    match = re.match(r"0*(\d+[a-z]?)_", path.name)
    if match is None:
        raise ValueError(f"path must be a chapter file named like 03b_title.md, got {path.name!r}")
    return match.group(1)


def _imports_of_cell(code: str) -> list[tuple[str, str]]:
    """(module, name) of every ``from coursekit.<module> import <name>`` in a code cell (its
    MyST options, ``:tags: …`` lines or a ``---`` block, and IPython magics and shell lines left
    out)."""
    code = re.sub(r"\A---\n.*?\n---\n", "", code, flags=re.S)
    lines = code.splitlines()
    while lines and re.match(r"^:\w[\w-]*:", lines[0]):
        lines.pop(0)
    lines = [line for line in lines if not line.lstrip().startswith(("%", "!"))]
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("coursekit."):
            found += [(node.module, alias.name) for alias in node.names]
    return found


def chapter_imports(root: Path = ROOT) -> dict[tuple[str, str], set[Path]]:
    """{(module, name): the chapters whose code cells import it}, for every chapter of ``_toc.yml``."""
    sys.path.insert(0, str(root))
    from tools.notebooks import chapter_paths

    uses: dict[tuple[str, str], set[Path]] = {}
    for path in chapter_paths(root):
        if not re.match(r"\d", path.name):
            continue  # the introduction is not a numbered chapter
        for cell in CODE_CELL.findall(path.read_text(encoding="utf-8")):
            for key in _imports_of_cell(cell):
                uses.setdefault(key, set()).add(path.relative_to(root))
    return uses


def helper_chapters(root: Path = ROOT) -> dict[int, tuple[object, set[Path]]]:
    """{id of a helper: (the function or class, the chapters importing it)} (constants, which
    have no docstring, left out); one entry per object, whatever name the chapters use."""
    helpers: dict[int, tuple[object, set[Path]]] = {}
    for (module, name), chapters in chapter_imports(root).items():
        obj = getattr(importlib.import_module(module), name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            helpers.setdefault(id(obj), (obj, set()))[1].update(chapters)
    return helpers


def sentence(chapters: set[Path]) -> str:
    """ "Used in chapter 3b (book/03b_minimum_distortion.md)." for the chapters, in book order."""
    parts = [f"{chapter_number(p)} ({p.as_posix()})" for p in sorted(chapters, key=lambda p: p.name)]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Used in chapter{'s' if len(parts) > 1 else ''} {listed}."


def claimed(doc: str | None) -> set[Path]:
    """The chapters a docstring's "Used in chapter(s) …." sentence names (empty: none)."""
    match = CLAIM.search(doc or "")
    if match is None:
        return set()
    return {Path(path) for _, path in CHAPTER_REFERENCE.findall(" ".join(match.group(1).split()))}


def public_helpers(src: Path) -> list[tuple[Path, ast.FunctionDef | ast.ClassDef]]:
    """Every public function and class (at module level, and methods of public classes) in src."""
    found = []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                found.append((path, node))
    return found


def wrong_sentences(root: Path = ROOT) -> list[tuple[object, set[Path], set[Path]]]:
    """(helper, the chapters importing it, the chapters its docstring claims) wherever the two differ."""
    return [(obj, chapters, claimed(obj.__doc__)) for obj, chapters in helper_chapters(root).values()
            if claimed(obj.__doc__) != chapters]  # fmt: skip


def _docstring_node(path: Path, name: str) -> tuple[ast.AST, ast.Expr | None]:
    """The definition of ``name`` at the top level of the file, and its docstring's node (or None)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name]
    if len(found) != 1:
        raise ValueError(f"{path.name} defines {name!r} {len(found)} times; write its sentence by hand")
    node = found[0]
    first = node.body[0]
    is_doc = (
        isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    )
    return node, first if is_doc else None


def _wrapped(text: str, indent: str) -> list[str]:
    """``text`` in lines of at most WIDTH characters, never breaking "3b (book/….md)" apart."""
    glued = CHAPTER_REFERENCE.sub(lambda m: f"{m.group(1)}\x00({m.group(2)})", text)
    lines = textwrap.wrap(glued, width=WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)
    return [line.replace("\x00", " ") for line in lines]


def write_sentence(obj: object, chapters: set[Path]) -> None:
    """Rewrite the last paragraph of ``obj``'s docstring in its source file: the sentence for
    ``chapters`` (replacing an old one, or added as a new paragraph)."""
    source = inspect.unwrap(obj) if callable(obj) else obj  # a decorated function: the function itself
    path = Path(inspect.getsourcefile(source))  # type: ignore[arg-type]
    node, doc = _docstring_node(path, source.__name__)  # type: ignore[attr-defined]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    indent = " " * (node.col_offset + 4)
    if doc is None:  # no docstring: the sentence is one
        body = node.body[0]
        new = [f'{indent}"""{sentence(chapters)}"""\n']
        lines[body.lineno - 1 : body.lineno - 1] = new
        path.write_text("".join(lines), encoding="utf-8")
        return
    text = "".join(lines[doc.lineno - 1 : doc.end_lineno])
    opening = text.index('"""') + 3
    closing = text.rindex('"""')
    inner = CLAIM.sub("", text[opening:closing]).rstrip()
    sentence_lines = _wrapped(sentence(chapters), indent)
    new_text = text[:opening] + inner + "\n\n" + "\n".join(sentence_lines) + "\n" + indent + text[closing:]
    lines[doc.lineno - 1 : doc.end_lineno] = [new_text]
    path.write_text("".join(lines), encoding="utf-8")


def stale_claims(root: Path = ROOT) -> list[tuple[Path, str]]:
    """(file, name) of every public helper whose docstring claims chapters although no chapter
    imports it (a chapter stopped using it)."""
    used = {(Path(inspect.getsourcefile(inspect.unwrap(obj))).resolve(), inspect.unwrap(obj).__name__)  # type: ignore[arg-type]
            for obj, _ in helper_chapters(root).values()}  # fmt: skip
    return [
        (path, node.name)
        for path, node in public_helpers(root / "src" / "coursekit")
        if claimed(ast.get_docstring(node, clean=False)) and (path.resolve(), node.name) not in used
    ]


def remove_sentence(path: Path, name: str) -> None:
    """Take the "Used in chapter …" paragraph out of the docstring of ``name`` in ``path``."""
    node, doc = _docstring_node(path, name)
    if doc is None:
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    text = "".join(lines[doc.lineno - 1 : doc.end_lineno])
    opening, closing = text.index('"""') + 3, text.rindex('"""')
    inner = CLAIM.sub("", text[opening:closing]).rstrip()
    multiline = "\n" in inner
    indent = " " * (node.col_offset + 4)
    new_text = text[:opening] + inner + ("\n" + indent if multiline else "") + text[closing:]
    lines[doc.lineno - 1 : doc.end_lineno] = [new_text]
    path.write_text("".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the wrong or missing sentences")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    wrong = wrong_sentences()
    for obj, chapters, claims in wrong:
        name = f"{obj.__module__}.{obj.__qualname__}"  # type: ignore[attr-defined]
        print(f"{name}: imported by {sorted(map(str, chapters))}, its docstring says {sorted(map(str, claims))}")
        if args.write:
            write_sentence(obj, chapters)
    print(f"{len(wrong)} helpers {'rewritten' if args.write else 'to rewrite (--write)'}")
    stale = stale_claims()
    for path, name in stale:
        print(f"{path.name}:{name}: no chapter imports it any more, its docstring still names chapters")
        if args.write:
            remove_sentence(path, name)
    print(f"{len(stale)} stale sentences {'removed' if args.write else 'to remove (--write)'}")


if __name__ == "__main__":
    main()
