"""Each helper a chapter imports names that chapter in its docstring, and no docstring names a
chapter that does not import it (issue 32 item 6): checked against the chapters' code as it is
now, so that a chapter which stops or starts importing a helper fails here until
``python tools/chapter_uses.py --write`` rewrites the sentences."""

import ast
import inspect
import textwrap
from pathlib import Path

from tools.chapter_uses import (
    ROOT,
    _imports_of_cell,
    chapter_imports,
    chapter_number,
    claimed,
    helper_chapters,
    public_helpers,
    sentence,
    wrong_sentences,
)

FIX = "run `python tools/chapter_uses.py --write` to rewrite the sentences from the chapters' imports"


def test_a_cells_imports_are_read_past_its_options_magics_and_aliases():
    cell = (
        ":tags: [hide-input]\n\n%matplotlib inline\n!nvidia-smi\n"
        "from coursekit.train import evaluate as error_rate, train\n"
        "from coursekit.report import (units_paragraph,\n    units_verdict)\nimport coursekit.plots\n"
        "from torch import nn\n"
    )
    assert _imports_of_cell(cell) == [
        ("coursekit.train", "evaluate"),
        ("coursekit.train", "train"),
        ("coursekit.report", "units_paragraph"),
        ("coursekit.report", "units_verdict"),
    ]
    assert _imports_of_cell("---\ntags: [remove-cell]\n---\nfrom coursekit.quiz import ask\n") == [
        ("coursekit.quiz", "ask")
    ]


def test_the_sentence_names_each_chapter_by_number_and_file_and_reads_back():
    one = {Path("book/03b_minimum_distortion.md")}
    assert sentence(one) == "Used in chapter 3b (book/03b_minimum_distortion.md)."
    several = {Path("book/04_transfer.md"), Path("book/01_data_and_models.md"), Path("book/07a_x.md")}
    text = sentence(several)
    assert text == ("Used in chapters 1 (book/01_data_and_models.md), 4 (book/04_transfer.md) and 7a (book/07a_x.md).")
    wrapped = "Does a thing.\n\n" + textwrap.fill(text, 40, initial_indent="    ", subsequent_indent="    ") + "\n    "
    assert claimed(wrapped) == several and claimed("Does a thing.") == set()
    assert chapter_number(Path("book/03b_minimum_distortion.md")) == "3b"


def test_the_chapters_import_helpers_from_coursekit():
    imports = chapter_imports(ROOT)
    assert ("coursekit.attack", "lbfgs_attack") in imports
    assert {Path("book/03b_minimum_distortion.md")} <= imports["coursekit.config", "experiment_size"]
    assert len(helper_chapters(ROOT)) > 50


def test_every_helper_a_chapter_imports_names_exactly_those_chapters():
    wrong = [
        f"{obj.__module__}.{obj.__qualname__}: imported by {sorted(map(str, chapters))}, "
        f"docstring says {sorted(map(str, claims))}"
        for obj, chapters, claims in wrong_sentences(ROOT)
    ]
    assert not wrong, f"{FIX}:\n" + "\n".join(wrong)


def test_no_docstring_names_a_chapter_that_does_not_import_it():
    used = {}
    for obj, chapters in helper_chapters(ROOT).values():
        source = inspect.unwrap(obj)
        used[Path(inspect.getsourcefile(source)).resolve(), source.__name__] = chapters
    stale = []
    for path, node in public_helpers(ROOT / "src" / "coursekit"):
        claims = claimed(ast.get_docstring(node, clean=False))
        if claims and used.get((path.resolve(), node.name)) != claims:
            stale.append(f"{path.relative_to(ROOT)}:{node.name} claims {sorted(map(str, claims))}")
    assert not stale, f"{FIX}:\n" + "\n".join(stale)
