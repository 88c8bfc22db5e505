"""Recorded results: tables that a command wrote, with where and how they were made.

A chapter built on a CPU cannot recompute the paper-scale tables (hours there, minutes on a GPU).
A *record* carries such a table from the run that computed it into the package: a JSON file in
this folder (installed with ``coursekit``, read with ``importlib.resources``, so it works on
Colab where only the package is installed). Each record holds

- ``name``, ``title``; ``index`` (the row label's meaning), ``columns`` and ``rows``
  ({row: {column: number or null}});
- ``provenance``: ``git_commit`` (and ``git_dirty``), ``code_version`` ({module: hash of the
  module's source tokens, docstrings, comments and layout ignored, the same on Python 3.10 to
  3.13}, for the modules the run names and every coursekit module they import, found by reading
  their import statements: ``module_closure``), ``torch``, ``python``, ``device``, ``profile``,
  ``date`` (UTC, ISO 8601), the ``command`` that wrote it and its ``parameters`` (sizes such as
  the number of images).

``load_record`` validates a record and refuses a *stale* one (a module it was computed with has
changed since; the tests check every shipped record the same way). Records are written only by
``write_record`` from a run (``benchmarks/record_tables.py``), never typed in.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import tempfile
import tokenize
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.abc import Traversable
    from pathlib import Path
    from typing import Any

    import pandas as pd
    import torch


__all__ = [
    "DEFAULT_MODULES",
    "PROVENANCE_FIELDS",
    "RECORDED_ROOTS",
    "SCHEMA",
    "available",
    "code_version",
    "describe_device",
    "imported_modules",
    "load_record",
    "module_closure",
    "modules_version",
    "provenance",
    "Record",
    "record_data",
    "source_tokens",
    "source_version",
    "stale_modules",
    "StaleRecordError",
    "validate_record",
    "write_record",
]

SCHEMA = 1
# The modules whose results the recorded tables show (the zoo, its training and data, the attack,
# its exact polish, transfer); a record covers them and everything they import (DEFAULT_MODULES).
RECORDED_ROOTS = ("attack", "exact", "transfer", "models", "train", "data")
PROVENANCE_FIELDS = (
    "git_commit",
    "git_dirty",
    "code_version",
    "torch",
    "python",
    "device",
    "profile",
    "date",
    "command",
    "parameters",
)


class StaleRecordError(ValueError):
    """The code a record was computed with has changed since."""


@dataclass(frozen=True)
class Record:
    """A validated record: ``rows`` is {row: {column: float (NaN for null)}}."""

    name: str
    title: str
    index: str
    columns: tuple[str, ...]
    rows: dict
    provenance: dict

    def table(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (rows in recorded order, columns as recorded)."""
        import pandas as pd

        table = pd.DataFrame.from_dict(self.rows, orient="index")[list(self.columns)]
        table.index.name = self.index
        return table

    def caption(self) -> str:
        """One line naming where the numbers come from."""
        p = self.provenance
        dirty = "+local changes" if p["git_dirty"] else ""
        sizes = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in p["parameters"].items())
        return (
            f"recorded {p['date'][:10]} on {p['device']} ({sizes}; torch {p['torch']}, profile {p['profile']}, "
            f"commit {p['git_commit'][:10]}{dirty}) by `{p['command']}`"
        )


_LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_MARKERS = {tokenize.NEWLINE: "<newline>", tokenize.INDENT: "<indent>", tokenize.DEDENT: "<dedent>"}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python ≥ 3.12 splits f-strings
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def _source_slice(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    """The text of ``lines`` (with their line ends) from tokenize position ``start`` to ``end``."""
    (row0, col0), (row1, col1) = start, end
    if row0 == row1:
        return lines[row0 - 1][col0:col1]
    return lines[row0 - 1][col0:] + "".join(lines[row0 : row1 - 1]) + lines[row1 - 1][:col1]


def source_tokens(source: str) -> list[str]:
    """Python ``source`` as a list of token texts that is the same on Python 3.10 to 3.13:
    comments, blank lines, line continuations and the width of indentation dropped (statement
    ends and indentation changes kept as markers), each f-string one token of its source text
    (3.12 and later tokenize its parts), and every statement that is a bare string (docstrings)
    left out."""
    lines = source.splitlines(keepends=True)
    tokens: list[tuple[int, str]] = []
    stream = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in stream:
        if token.type in _LAYOUT:
            continue
        if token.type == _FSTRING_START:  # gather the f-string (nested ones too) into one token
            depth, start = 1, token.start
            while depth:
                token = next(stream)
                depth += (token.type == _FSTRING_START) - (token.type == _FSTRING_END)
            tokens.append((tokenize.STRING, _source_slice(lines, start, token.end)))
            continue
        tokens.append((token.type, _MARKERS.get(token.type, token.string)))
    while tokens and tokens[-1][0] in _MARKERS:  # the end of the file: its markers vary
        tokens.pop()
    kept, statement_start = [], True
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j][0] == tokenize.STRING:
            j += 1
        if statement_start and j > i and (j == len(tokens) or tokens[j][0] == tokenize.NEWLINE):
            i = j + 1  # a bare string statement (a docstring) and its end of line
            continue
        statement_start = tokens[i][0] in _MARKERS
        kept.append(tokens[i][1])
        i += 1
    return kept


@functools.lru_cache(maxsize=256)  # by the source text: an edited module is hashed afresh
def source_version(source: str) -> str:
    """A 16-hex-digit hash of Python ``source``'s tokens (``source_tokens``): editing comments,
    docstrings or layout keeps it; changing any statement changes it; the same on every Python
    from 3.10 to 3.13 (this module needs only the standard library, so that can be tested)."""
    return hashlib.sha256("\x00".join(source_tokens(source)).encode()).hexdigest()[:16]


def _module_file(module: str) -> Traversable | None:
    """The source file of ``coursekit.<module>`` (``module`` dotted below coursekit, e.g.
    ``"attack"``, ``"spectral.fourier"``, or a package such as ``"spectral"``, whose file is its
    ``__init__.py``), or None when the package has no such module."""
    folder = resources.files("coursekit")
    *packages, last = module.split(".")
    for part in packages:
        folder = folder.joinpath(part)
    for candidate in (folder.joinpath(f"{last}.py"), folder.joinpath(last).joinpath("__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _check_module_name(module: str) -> Traversable:
    """The source file of ``coursekit.<module>``; ValueError naming ``module`` when it is none."""
    if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
        raise ValueError(f"module must be a coursekit module name such as 'attack', got {module!r}")
    path = _module_file(module)
    if path is None:
        raise ValueError(f"module must be a coursekit module name, got {module!r} (no such file in coursekit)")
    return path


def code_version(module: str) -> str:
    """``source_version`` of ``coursekit.<module>`` (read from the installed package); ``module``
    is dotted below coursekit: ``"attack"``, ``"spectral.fourier"``, ``"spectral"`` (its
    ``__init__.py``)."""
    return source_version(_check_module_name(module).read_text(encoding="utf-8"))


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` test is ``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (a block that
    never runs: its imports are for the type checker only)."""
    name = test.attr if isinstance(test, ast.Attribute) else test.id if isinstance(test, ast.Name) else None
    return name == "TYPE_CHECKING"


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")  # the fields of a statement holding statements


def _import_statements(statements: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``statements`` and the blocks nested in them (functions,
    classes, ``if``/``try``/``with``/``for``/``match``), except the body of ``if TYPE_CHECKING:``.
    (An import is a statement, so no expression needs to be searched.)"""
    for node in statements:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for block in _BLOCKS:
            if block == "body" and isinstance(node, ast.If) and _is_type_checking(node.test):
                continue
            yield from _import_statements(getattr(node, block, []))


def _imported_names(node: ast.Import | ast.ImportFrom, package: list[str]) -> tuple[list[str], list[str]]:
    """The coursekit modules an import statement names, dotted below coursekit: (those that
    must be modules, those that are modules only if such a file exists). In a module of the
    coursekit folder, ``from .spectral import fourier, layer_bounds`` gives (["spectral"],
    ["spectral.fourier", "spectral.layer_bounds"]): a name imported from a package may be a
    submodule or a function. ``package``: the parts of the package the importing module is in."""
    if isinstance(node, ast.Import):
        return [alias.name[len("coursekit.") :] for alias in node.names if alias.name.startswith("coursekit.")], []
    named = node.module.split(".") if node.module else []
    if node.level == 0:
        if not named or named[0] != "coursekit":
            return [], []  # another package (torch, numpy, ...)
        base = named[1:]
    else:
        if node.level - 1 > len(package):
            raise ValueError(f"line {node.lineno}: a relative import goes above the coursekit package")
        base = package[: len(package) - (node.level - 1)] + named
    maybe = [".".join([*base, alias.name]) for alias in node.names if alias.name != "*"]
    return ([".".join(base)] if base else []), maybe


@functools.lru_cache(maxsize=256)
def _imports_in_source(module: str, package: tuple[str, ...], source: str) -> tuple[str, ...]:
    """``imported_modules`` of ``module`` with this ``source`` (cached by the source text itself,
    so an edited file is read afresh)."""
    found: set[str] = set()
    for node in _import_statements(ast.parse(source).body):
        required, maybe = _imported_names(node, list(package))
        for name in required:
            if _module_file(name) is None:
                raise ValueError(f"coursekit.{module} imports coursekit.{name}, which is not in the package")
        for name in required + [m for m in maybe if _module_file(m) is not None]:
            parts = name.split(".")
            found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))  # and the packages above
    found.discard(module)
    return tuple(sorted(found))


def imported_modules(module: str) -> list[str]:
    """The coursekit modules that the source of ``coursekit.<module>`` imports itself (not
    transitively), sorted: its ``import``/``from ... import`` statements, absolute
    (``coursekit.x``) or relative (``.x``, ``..x``), at the top or inside functions (lazy
    imports), with the packages above each (importing ``spectral.fourier`` runs
    ``spectral/__init__.py``). Imports under ``if TYPE_CHECKING:`` are left out (they never
    run), and so is ``coursekit/__init__.py`` (the package's version string only)."""
    path = _check_module_name(module)
    parts = tuple(module.split("."))
    package = parts if path.name == "__init__.py" else parts[:-1]
    return list(_imports_in_source(module, package, path.read_text(encoding="utf-8")))


def module_closure(*modules: str) -> tuple[str, ...]:
    """``modules`` and every coursekit module they import, directly or through others (lazy
    imports included; see ``imported_modules``), with the packages they are in (importing
    ``spectral.fourier`` runs ``spectral/__init__.py`` first), sorted: the code whose behaviour
    a result computed by ``modules`` can depend on. Derived from the source each time, so that a
    new import can never be missed by a hand-kept list."""
    if not modules:
        raise ValueError("modules must name at least one coursekit module, got none")
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            parts = module.split(".")
            todo += imported_modules(module) + [".".join(parts[:end]) for end in range(1, len(parts))]
    return tuple(sorted(seen))


def modules_version(*modules: str) -> str:
    """A 16-hex-digit hash of the code of ``modules`` and of everything they import
    (``module_closure``): ``code_version`` of each, so docstrings, comments and layout do not
    count and any changed statement does. Part of the cache key of what ``modules`` compute."""
    joined = ",".join(f"{module}:{code_version(module)}" for module in module_closure(*modules))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


DEFAULT_MODULES = module_closure(*RECORDED_ROOTS)  # what a record's code_version covers by default


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=20, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def describe_device(device: torch.device | str) -> str:
    """ "NVIDIA H100 80GB HBM3 (cuda)" or "cpu: x86_64, 2 cores"."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"cpu: {platform.machine()}, {os.cpu_count()} cores"


def provenance(
    command: str, device: torch.device | str, profile: str, parameters: dict, modules: Sequence[str] = DEFAULT_MODULES
) -> dict:
    """The provenance of a run about to be recorded (git state read from this checkout);
    ``parameters``: the run's sizes, e.g. {"images": 60000, "targets": 9}; ``code_version``
    holds the hash of ``modules`` and of every coursekit module they import (``module_closure``)."""
    import torch

    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"command must be the command line that runs the experiment, got {command!r}")
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit or "unknown (not a git checkout)",
        "git_dirty": bool(status) if status is not None else True,
        "code_version": {m: code_version(m) for m in module_closure(*modules)},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": describe_device(device),
        "profile": profile,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "parameters": dict(parameters),
    }


def _number(value, where: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isinf(value):
        raise ValueError(f"{where} must be a finite number or null, got {value!r}")
    return None if math.isnan(value) else float(value)


def record_data(name: str, title: str, table: pd.DataFrame, prov: dict) -> dict:
    """The JSON-ready record of a pandas DataFrame ``table`` (numbers only; NaN → null)."""
    rows = {
        str(row): {str(c): _number(float(v), f"table[{row!r}, {c!r}]") for c, v in values.items()}
        for row, values in table.to_dict(orient="index").items()
    }
    data = {
        "schema": SCHEMA,
        "name": name,
        "title": title,
        "index": str(table.index.name or ""),
        "columns": [str(c) for c in table.columns],
        "rows": rows,
        "provenance": prov,
    }
    validate_record(data)
    return data


def write_record(folder: str | Path, name: str, title: str, table: pd.DataFrame, prov: dict) -> Path:
    """Write ``folder/<name>.json`` atomically (a temporary file renamed into place)."""
    data = record_data(name, title, table, prov)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=1, ensure_ascii=False)
        stream.write("\n")
    target = folder / f"{name}.json"
    os.replace(temporary, target)
    return target


def validate_record(data: Any) -> Record:
    """Check a record's structure and types; return it as a ``Record``. Raises ValueError naming
    the first field that is missing or wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"a record must be a JSON object, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise ValueError(f"record schema must be {SCHEMA}, got {data.get('schema')!r}")
    for key in ("name", "title", "index"):
        if not isinstance(data.get(key), str) or (key != "index" and not data[key]):
            raise ValueError(f"record field {key!r} must be a non-empty string, got {data.get(key)!r}")
    columns = data.get("columns")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise ValueError(f"record field 'columns' must be a list of names, got {columns!r}")
    rows = data.get("rows")
    if not isinstance(rows, dict) or not rows:
        raise ValueError("record field 'rows' must be a non-empty object {row: {column: value}}")
    parsed = {}
    for row, values in rows.items():
        if not isinstance(values, dict) or set(values) != set(columns):
            raise ValueError(f"record row {row!r} must have exactly the columns {columns}")
        parsed[row] = {c: _number(values[c], f"rows[{row!r}][{c!r}]") for c in columns}
        parsed[row] = {c: (math.nan if v is None else v) for c, v in parsed[row].items()}
    prov = data.get("provenance")
    if not isinstance(prov, dict):
        raise ValueError("record field 'provenance' must be an object")
    missing = [f for f in PROVENANCE_FIELDS if f not in prov]
    if missing:
        raise ValueError(f"record provenance lacks {missing}")
    for key in PROVENANCE_FIELDS:
        if key == "git_dirty":
            if not isinstance(prov[key], bool):
                raise ValueError(f"provenance 'git_dirty' must be true or false, got {prov[key]!r}")
        elif key == "parameters":
            if not isinstance(prov[key], dict):
                raise ValueError(f"provenance 'parameters' must be an object, got {prov[key]!r}")
        elif key == "code_version":
            if (
                not isinstance(prov[key], dict)
                or not prov[key]
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in prov[key].items())
            ):
                raise ValueError(f"provenance 'code_version' must map module names to hashes, got {prov[key]!r}")
        elif not isinstance(prov[key], str) or not prov[key]:
            raise ValueError(f"provenance {key!r} must be a non-empty string, got {prov[key]!r}")
    try:
        datetime.fromisoformat(prov["date"])
    except ValueError:
        raise ValueError(f"provenance 'date' must be ISO 8601, got {prov['date']!r}") from None
    return Record(data["name"], data["title"], data["index"], tuple(columns), parsed, dict(prov))


def stale_modules(record: Record) -> list[str]:
    """The modules whose code has changed since ``record`` was computed (empty: up to date); a
    module that no longer exists has changed too."""
    return [m for m, version in record.provenance["code_version"].items() if _current_version(m) != version]


def _current_version(module: str) -> str | None:
    """``code_version(module)``, or None for a name that is no longer a coursekit module."""
    try:
        return code_version(module)
    except ValueError:
        return None


def available() -> list[str]:
    """The names of the records shipped with the package."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".json"))


def load_record(name: str, *, folder: str | Path | None = None, allow_stale: bool = False) -> Record:
    """Read, validate and return record ``name`` (from the package, or from ``folder``).

    Raises FileNotFoundError for an unknown name (naming the ones available), ValueError for a
    malformed record and ``StaleRecordError`` when its code has changed (unless ``allow_stale``).
    """
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must be a record name such as 'table1', got {name!r}")
    source = Path(folder) / f"{name}.json" if folder is not None else resources.files(__name__).joinpath(f"{name}.json")
    if not source.is_file():
        known = available() if folder is None else sorted(p.stem for p in Path(folder).glob("*.json"))
        raise FileNotFoundError(f"no record {name!r}; available: {known or 'none'}")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"record {name!r} is not valid JSON: {error}") from None
    record = validate_record(data)
    if record.name != name:
        raise ValueError(f"record file {name}.json holds record {record.name!r}")
    stale = stale_modules(record)
    if stale and not allow_stale:
        raise StaleRecordError(
            f"record {name!r} was computed with other code in coursekit.{', coursekit.'.join(stale)}; "
            f"re-run `{record.provenance['command']}` to record it again"
        )
    return record
