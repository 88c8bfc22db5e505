"""Recorded results: provenance, validation, staleness, and the "paper scale (recorded)" column."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import tomllib

from coursekit import records
from coursekit.records import (
    StaleRecordError,
    code_version,
    load_record,
    provenance,
    source_version,
    validate_record,
    write_record,
)
from coursekit.report import RECORDED, side_by_side, with_recorded

ROOT = Path(__file__).resolve().parents[1]


def _table():
    table = pd.DataFrame(
        {"test error": [0.02, 0.07], "av. min. distortion": [0.05, float("nan")]}, index=["FC100-100-10", "FC10(1)"]
    )
    table.index.name = "model"
    return table


def _write(tmp_path, **overrides):
    prov = provenance("python benchmarks/record_tables.py --images 3", "cpu", "quick", {"images": 3, "targets": 9})
    prov.update(overrides)
    return write_record(tmp_path, "table1", "Table 1", _table(), prov)


def test_source_version_ignores_docstrings_and_comments_only():
    base = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    assert source_version(base) == source_version('def f(x):\n    """Other doc."""\n\n    return x + 1\n')
    assert source_version(base) != source_version('def f(x):\n    """Doc."""\n    return x + 2\n')
    assert len(code_version("attack")) == 16
    with pytest.raises(ValueError, match="module"):
        code_version("no_such_module")


def test_source_version_sees_statements_fstrings_and_blocks_not_layout():
    base = 'def f(x):\n    """Doc."""\n    y = f"{x!r:>8} λ"  # a comment\n    return (x +\n            y)\n'
    same = (
        'def f(x):\n\n  # only a comment\n  """Another docstring,\n  on two lines."""\n'
        '  y = f"{x!r:>8} λ"\n  return (x + y)\n'
    )
    assert source_version(base) == source_version(same)
    assert source_version(base) != source_version(base.replace("{x!r:>8}", "{x!r:>9}"))
    assert source_version(base) != source_version(
        base.replace("    return (x +\n            y)", "return (x +\n            y)")
    )
    nested = "def g():\n    if a:\n        b()\n    c()\n"
    assert source_version(nested) != source_version(nested.replace("    c()", "        c()"))


PYTHONS = sorted(Path.home().glob(".pyenv/versions/3.1[0-3].*/bin/python3.1[0-3]"))


def test_source_version_is_the_same_on_python_3_10_to_3_13():
    """Issue 24 item 3: ast.dump differs between Python versions, so a record written on 3.11
    was stale on Colab's 3.13. Each pyenv interpreter hashes every coursekit module and reads
    its imports (the hashing module imports without torch) and must agree with this one."""
    if not PYTHONS:
        pytest.skip("no pyenv Python 3.10-3.13 here")
    modules = sorted(p.stem for p in (ROOT / "src" / "coursekit").glob("*.py"))
    script = (
        "import json, sys; from coursekit.records import code_version, module_closure; "
        "print(json.dumps({m: [code_version(m), list(module_closure(m))] for m in sys.argv[1:]}))"
    )
    here = {m: [code_version(m), list(records.module_closure(m))] for m in modules}
    for python in PYTHONS:
        done = subprocess.run(
            [str(python), "-c", script, *modules],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == here, f"{python.name} hashes differently"
    assert (
        "torch"
        not in subprocess.run(
            [sys.executable, "-c", "import sys, coursekit.records; print(sorted(sys.modules))"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        ).stdout
    )


def test_provenance_covers_the_exact_solver():
    """The polish runs exact.box_qp: a change there changes the attack's results."""
    assert "exact" in records.DEFAULT_MODULES
    assert "exact" in provenance("cmd", "cpu", "quick", {"images": 3})["code_version"]


def test_round_trip_keeps_numbers_and_provenance(tmp_path):
    path = _write(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    record = load_record("table1", folder=tmp_path)
    assert record.table().loc["FC100-100-10", "test error"] == 0.02
    assert math.isnan(record.table().loc["FC10(1)", "av. min. distortion"])
    assert record.provenance["code_version"]["attack"] == code_version("attack")
    assert record.provenance["device"].startswith("cpu")
    caption = record.caption()
    assert "images 3" in caption and "record_tables.py --images 3" in caption
    assert json.loads(path.read_text())["rows"]["FC10(1)"]["av. min. distortion"] is None


def test_a_record_of_changed_code_is_refused(tmp_path):
    prov = provenance("cmd", "cpu", "quick", {"images": 3})
    prov["code_version"] = {**prov["code_version"], "attack": "0" * 16}
    write_record(tmp_path, "table1", "Table 1", _table(), prov)
    with pytest.raises(StaleRecordError, match="coursekit.attack"):
        load_record("table1", folder=tmp_path)
    assert records.stale_modules(load_record("table1", folder=tmp_path, allow_stale=True)) == ["attack"]


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda d: d.update(schema=2), "schema"),
        (lambda d: d["provenance"].pop("device"), "device"),
        (lambda d: d["provenance"].update(date="yesterday"), "ISO"),
        (lambda d: d["provenance"].update(git_dirty="no"), "git_dirty"),
        (lambda d: d["rows"]["FC10(1)"].update({"test error": "7%"}), "finite number"),
        (lambda d: d["rows"]["FC10(1)"].pop("test error"), "columns"),
        (lambda d: d.update(rows={}), "rows"),
    ],
)
def test_validation_names_what_is_wrong(tmp_path, change, match):
    data = json.loads(_write(tmp_path).read_text())
    change(data)
    with pytest.raises(ValueError, match=match):
        validate_record(data)


def test_unknown_record_names_the_available_ones(tmp_path):
    _write(tmp_path)
    with pytest.raises(FileNotFoundError, match="table1"):
        load_record("table9", folder=tmp_path)


@pytest.mark.parametrize("name", records.available())
def test_every_shipped_record_is_valid_and_matches_the_code(name):
    """Fails when the code a shipped record was computed with has changed: re-run its command."""
    record = load_record(name)
    assert record.provenance["git_commit"] != "unknown (not a git checkout)"


def test_records_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.json" in config["tool"]["setuptools"]["package-data"]["coursekit.records"]


def test_recorded_column_beside_a_plain_table(tmp_path):
    _write(tmp_path)
    record = load_record("table1", folder=tmp_path)
    live = pd.DataFrame(
        {"av. min. distortion": [0.04, 0.03, 0.06], "paper": [0.08, 0.07, 0.1]},
        index=["FC100-100-10", "AE400-10", "FC10(1)"],
    )
    shown = with_recorded(live, record, ["av. min. distortion"])
    assert list(shown.columns) == ["av. min. distortion", RECORDED, "paper"]
    assert shown.loc["FC100-100-10", RECORDED] == 0.05
    assert math.isnan(shown.loc["AE400-10", RECORDED])  # not in the record
    assert math.isnan(shown.loc["FC10(1)", RECORDED])  # recorded as null
    assert shown.attrs["recorded"] == record.caption()
    assert list(live.columns) == ["av. min. distortion", "paper"]  # the input is left alone


def test_recorded_column_beside_side_by_side(tmp_path):
    _write(tmp_path)
    record = load_record("table1", folder=tmp_path)
    ours = pd.DataFrame({"test error": [0.021, 0.075]}, index=["FC100-100-10", "FC10(1)"])
    table = side_by_side(ours, {"FC100-100-10": (0.0164,), "FC10(1)": (0.0640,)}, ["test error"])
    shown = with_recorded(table, record, ["test error"])
    assert list(shown.columns) == [("test error", "ours"), ("test error", RECORDED), ("test error", "paper")]
    assert shown.loc["FC10(1)", ("test error", RECORDED)] == 0.07
    with pytest.raises(ValueError, match="not in record"):
        with_recorded(table, record, ["success rate"])


# ------------------------------------------------------------ issue 31 item 1: derived module lists


def _all_modules() -> list[str]:
    """Every coursekit module, dotted below coursekit ("attack", "spectral", "spectral.fourier")."""
    names = []
    for path in sorted((ROOT / "src" / "coursekit").rglob("*.py")):
        parts = list(path.relative_to(ROOT / "src" / "coursekit").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts:
            names.append(".".join(parts))
    return names


def test_module_closure_holds_every_module_that_importing_it_loads():
    """An independent check of the import graph read from the source: Python itself imports each
    coursekit module in a fresh set of coursekit modules, and every coursekit module it loads
    must be in ``module_closure`` (which also holds the lazy imports inside functions, which an
    import does not run)."""
    script = (
        "import importlib, json, sys\n"
        "loaded = {}\n"
        "for name in sys.argv[1:]:\n"
        "    for m in [m for m in sys.modules if m.startswith('coursekit.')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module('coursekit.' + name)\n"
        "    loaded[name] = sorted(m[len('coursekit.'):] for m in sys.modules if m.startswith('coursekit.'))\n"
        "print(json.dumps(loaded))\n"
    )
    modules = _all_modules()
    done = subprocess.run(
        [sys.executable, "-c", script, *modules],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    for name in modules:
        missing = set(loaded[name]) - set(records.module_closure(name))
        assert not missing, f"importing coursekit.{name} loads {sorted(missing)}, which module_closure misses"
    assert {"_checks", "box_lbfgs", "exact"} <= set(records.module_closure("attack"))  # exact: a lazy import
    assert {"spectral", "spectral.fourier", "spectral.network"} <= set(records.module_closure("train"))  # lazy


def test_module_closure_reads_relative_absolute_lazy_and_type_checking_imports(tmp_path, monkeypatch):
    """The statements it follows and the ones it leaves out, on a made-up package."""
    package = tmp_path / "coursekit"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nimport torch\nfrom .b import f\nif TYPE_CHECKING:\n"
        "    from .c import g\nelse:\n    pass\ndef h():\n    try:\n        import coursekit.sub.d\n"
        "    except ImportError:\n        pass\n",
        "b.py": "def f():\n    from coursekit import e\n",
        "c.py": "",
        "e.py": "from .sub import d, name_in_d\n",
        "sub/__init__.py": "",
        "sub/d.py": "from ..c import nothing\nname_in_d = 1\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    monkeypatch.setattr(records.resources, "files", lambda _: package)
    assert records.imported_modules("a") == ["b", "sub", "sub.d"]  # not c: only for the type checker
    assert records.imported_modules("e") == ["sub", "sub.d"]
    assert records.module_closure("a") == ("a", "b", "c", "e", "sub", "sub.d")  # c through sub.d
    (package / "c.py").write_text("from .missing import x\n")
    with pytest.raises(ValueError, match="coursekit.missing"):
        records.module_closure("a")
    with pytest.raises(ValueError, match="module"):
        records.module_closure("no_such_module")


def test_records_cover_the_attacks_helpers():
    """Issue 31 item 1: DEFAULT_MODULES lacked box_lbfgs and _checks, which the attack runs."""
    assert {"attack", "box_lbfgs", "_checks", "exact", "train", "models", "data"} <= set(records.DEFAULT_MODULES)
    assert records.DEFAULT_MODULES == records.module_closure(*records.RECORDED_ROOTS)
    assert set(provenance("cmd", "cpu", "quick", {"images": 3}, modules=("attack",))["code_version"]) == set(
        records.module_closure("attack")
    )


_VERSIONS = """
import importlib, json, sys
answers = []
for root in sys.argv[1:]:
    for m in [m for m in sys.modules if m == 'coursekit' or m.startswith('coursekit.')]:
        del sys.modules[m]
    sys.path[0] = root
    attack = importlib.import_module('coursekit.attack')
    records = importlib.import_module('coursekit.records')
    answers.append({
        'attack key': attack.attack_cache_key()['code'],
        'training': importlib.import_module('coursekit.train').TRAIN_CODE_VERSION,
        'pools': importlib.import_module('coursekit.adversarial_training').POOL_CODE_VERSION,
        'relu networks': importlib.import_module('coursekit.verification').RELU_CODE_VERSION,
        'pgd training': getattr(records, 'modules_version', lambda m: None)('modern_attacks.training'),
        'records': records.provenance('cmd', 'cpu', 'quick', {})['code_version'],
    })
print(json.dumps(answers))
"""


def _versions_after_edits(tmp_path, edits: dict[str, tuple[str, str, str]]) -> dict[str, dict]:
    """The cache versions of copies of the package, each with one edit {label: (file, old, new)},
    and of an unedited copy ("original"), computed by importing each copy afresh."""
    roots = {}
    for label, (file, old, new) in {"original": ("_checks.py", "", ""), **edits}.items():
        root = tmp_path / label.replace(" ", "-")
        shutil.copytree(ROOT / "src" / "coursekit", root / "coursekit", ignore=shutil.ignore_patterns("__pycache__"))
        text = (root / "coursekit" / file).read_text(encoding="utf-8")
        assert old in text
        (root / "coursekit" / file).write_text(text.replace(old, new, 1), encoding="utf-8")
        roots[label] = str(root)
    done = subprocess.run(
        [sys.executable, "-c", _VERSIONS, *roots.values()], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return dict(zip(roots, json.loads(done.stdout)))


def test_cache_versions_follow_every_module_the_code_imports(tmp_path):
    """Issue 31 item 1: subtracting 0.5 inside _checks.logit_margin made every distortion inf,
    and the attack's cache key stayed the same (transfer would have served stale attacks); the
    training, pools and ReLU networks had hand-bumped integers. Each version is now the hash of
    the code its module imports, transitively: a statement changed in a helper changes every
    version that runs it, a docstring does not, and a change in the model zoo leaves the attack's
    key alone (the attack does not import it)."""
    margin = "return own - without_label(logits, labels).amax(1)"
    versions = _versions_after_edits(
        tmp_path,
        {
            "helper": ("_checks.py", margin, margin + " - 0.5"),
            "docstring": ("_checks.py", "positive where the\n    label wins", "positive where the label wins"),
            "zoo": ("models.py", "from torch import nn\n", "from torch import nn\n\nUNUSED = 1\n"),
        },
    )
    original = versions["original"]
    assert versions["docstring"] == original
    for kind in ("attack key", "training", "pools", "relu networks", "pgd training", "records"):
        assert versions["helper"][kind] != original[kind], f"the {kind} version missed a change in _checks"
    assert versions["helper"]["records"]["_checks"] != original["records"]["_checks"]
    assert versions["zoo"]["attack key"] == original["attack key"]
    for kind in ("training", "pools", "relu networks", "pgd training"):
        assert versions["zoo"][kind] != original[kind], f"the {kind} version missed a change in models"
