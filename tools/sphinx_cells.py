"""A Sphinx extension for the book: a folded code cell is titled by what it does.

myst-nb folds a cell tagged ``hide-input`` or ``hide-cell`` behind a generic "Show code cell
source/content". The course's folded cells start with a ``# <what it does>`` line (the same
line Colab shows as the form's title, ``tools/notebooks.py``), so that a reader sees which fold
holds the solution, Table 2 beside the paper's, or a plot's code. This post-transform runs just
before myst-nb's own (which reads the prompts) and writes that line into them:

- a cell folded whole (``hide-cell``: solutions, reproduction notes): "<title>" to open it;
- a cell whose input only is folded (``hide-input``: plotting and sentence code): "Code: <title>".

myst-nb's fold is a ``<summary aria-label="Toggle hidden content">`` around that visible title;
an accessible name that leaves out the visible text fails WCAG 2.5.3 (label in name, axe-core's
``label-content-name-mismatch``), so :func:`name_folds_by_their_title` drops the aria-label and
the summary is named by the title it shows.

Loaded by ``_config.yml`` (``sphinx: local_extensions``).
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform


def folded_title(cell: nodes.Element) -> str | None:
    """The ``# …`` first line of a code cell's source, without the ``# ``, or None."""
    for block in cell.findall(nodes.literal_block):
        first = block.astext().split("\n", 1)[0]
        return first[2:].strip() if first.startswith("# ") and first[2:].strip() else None
    return None


class TitleFoldedCells(SphinxPostTransform):
    """Set myst-nb's show/hide prompts of each folded cell from its title line."""

    default_priority = 198  # myst-nb's HideInputCells (199) reads the prompts
    formats = ("html",)

    def run(self, **kwargs) -> None:
        for cell in self.document.findall(nodes.container):
            mode = cell.get("hide_mode")
            if cell.get("nb_element") != "cell_code" or not mode:
                continue
            title = folded_title(cell)
            if title is None:
                continue
            if mode == "all":
                cell["prompt_show"], cell["prompt_hide"] = f"{title} (show)", f"{title} (hide)"
            else:
                cell["prompt_show"], cell["prompt_hide"] = f"Code: {title} (show)", f"Code: {title} (hide)"


GENERIC_SUMMARY = '<summary aria-label="Toggle hidden content">'


def name_folds_by_their_title(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """In the page's HTML, let each fold's ``<summary>`` be named by its visible title."""
    if isinstance(context.get("body"), str):
        context["body"] = context["body"].replace(GENERIC_SUMMARY, "<summary>")


def setup(app):
    app.add_post_transform(TitleFoldedCells)
    app.connect("html-page-context", name_folds_by_their_title)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
