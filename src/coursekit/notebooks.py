"""Keep the chapters' Colab notebooks in step with their MyST markdown.

The chapters are written as jupytext MyST markdown (``book/*.md``), which the book builds and
executes. Colab cannot open markdown, and Jupyter Book 1 links the Colab button to a
same-name ``.ipynb`` when one sits beside the ``.md``. So every chapter has a generated
``book/<chapter>.ipynb`` without outputs, committed, and excluded from the build.

The repository URL and branch that Colab installs ``coursekit`` from are set in one place,
``_config.yml`` (``repository: url / branch``); ``sync`` writes them into each chapter's
set-up cell (the lines marked ``# from _config.yml``) and regenerates the notebooks.

    python -m coursekit.notebooks sync    # after editing a chapter or _config.yml
    python -m coursekit.notebooks check   # exit 1 if any notebook or set-up cell is stale (CI)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPOSITORY_LINE = re.compile(r'^(\s*)COURSE_REPOSITORY = ".*"  # from _config\.yml$', re.M)
BRANCH_LINE = re.compile(r'^(\s*)COURSE_BRANCH = ".*"  # from _config\.yml$', re.M)


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
    """``text`` with the set-up cell's repository and branch lines set to ``url`` and ``branch``."""
    text = REPOSITORY_LINE.sub(lambda m: f'{m.group(1)}COURSE_REPOSITORY = "{url}"  # from _config.yml', text)
    return BRANCH_LINE.sub(lambda m: f'{m.group(1)}COURSE_BRANCH = "{branch}"  # from _config.yml', text)


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
    return jupytext.writes(notebook, fmt="ipynb")


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
        if "# from _config.yml" not in text:
            stale.append(f"{path.relative_to(root)} (no set-up cell with '# from _config.yml' lines)")
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
