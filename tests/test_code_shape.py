"""The shape of the package's code, read from its source (issue 32): no function over 60 lines
(its docstring not counted), no private helper with more than 8 parameters, no import cycle
between coursekit's modules."""

import ast
from pathlib import Path

import pytest

from coursekit.records import imported_modules

SOURCE = Path(__file__).resolve().parents[1] / "src" / "coursekit"
MAX_LINES = 60  # per function, without its docstring
MAX_PRIVATE_PARAMETERS = 8


def _functions(path: Path):
    """(qualified name, node) of every function and method in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{prefix}{child.name}", child
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def lines_without_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The function's lines, from its first decorator to its end, less those of its docstring."""
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
    lines = node.end_lineno - first + 1
    body = node.body[0] if node.body else None
    if isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) and isinstance(body.value.value, str):
        lines -= body.end_lineno - body.lineno + 1
    return lines


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """Its parameters, all kinds, without self and cls."""
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _sources():
    return sorted(SOURCE.rglob("*.py"))


def test_the_line_count_leaves_out_the_docstring_only():
    source = 'def f(x):\n    """One line,\n    and another."""\n    y = x\n    return y\n'
    node = ast.parse(source).body[0]
    assert lines_without_docstring(node) == 3
    assert lines_without_docstring(ast.parse("@cache\ndef g():\n    return 1\n").body[0]) == 3
    assert parameters(ast.parse("def h(self, a, /, b, *c, d, **e): pass").body[0]) == ["a", "b", "d", "c", "e"]


def test_no_function_is_longer_than_60_lines_without_its_docstring():
    long = [
        f"{path.relative_to(SOURCE)}:{name} ({lines_without_docstring(node)} lines)"
        for path in _sources()
        for name, node in _functions(path)
        if lines_without_docstring(node) > MAX_LINES
    ]
    assert not long, f"functions over {MAX_LINES} lines (docstrings not counted): {long}"


def test_no_private_helper_takes_more_than_8_parameters():
    """Issue 32: eight helpers of the L-BFGS attack took 11-17 positional parameters; what they
    share is a frozen dataclass now (the problem, the settings, the search's state)."""
    crowded = [
        f"{path.relative_to(SOURCE)}:{name} ({len(parameters(node))})"
        for path in _sources()
        for name, node in _functions(path)
        if name.split(".")[-1].startswith("_")
        and not name.split(".")[-1].startswith("__")
        and len(parameters(node)) > MAX_PRIVATE_PARAMETERS
    ]
    assert not crowded, f"private helpers with more than {MAX_PRIVATE_PARAMETERS} parameters: {crowded}"


def _modules() -> list[str]:
    names = []
    for path in _sources():
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            names.append(".".join(parts))
    return names


def _cycle_from(start: str, graph: dict[str, list[str]]) -> list[str] | None:
    """A path of imports from ``start`` back to itself, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        module, path = stack.pop()
        for other in graph.get(module, []):
            if other == start:
                return path + [start]
            if other not in seen:
                seen.add(other)
                stack.append((other, path + [other]))
    return None


def test_no_two_modules_import_each_other_even_lazily():
    """Issue 32: optimality and verification imported each other (both lazily, inside
    functions). Every import counts here, at the top or inside a function; a module's import of
    the package it is in (its ``__init__``, run first anyway) does not."""
    modules = _modules()

    def own_package(module: str, other: str) -> bool:
        return module.startswith(other + ".") or other.startswith(module + ".")

    graph = {m: [o for o in imported_modules(m) if o in modules and not own_package(m, o)] for m in modules}
    cycles = [cycle for m in modules if (cycle := _cycle_from(m, graph))]
    assert not cycles, f"import cycles: {[' -> '.join(c) for c in cycles]}"


@pytest.mark.parametrize("module", ["attack", "optimality", "verification"])
def test_the_modules_of_the_issue_are_among_those_checked(module):
    assert module in _modules()
