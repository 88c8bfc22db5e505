"""Every figure says what it shows: a text description, written where the figure is made.

A screen reader reads an image's ``alt`` text; on the course's site a figure without one is
announced as a file name. So each figure carries a description — what it shows and, where the
figure carries them, the key numbers — set where it is drawn::

    fig, ax = plt.subplots()
    ...
    describe(fig, f"Test error against ε for FGSM and PGD: PGD's error is {err:.0%} at ε = 0.1.")

(the course's plot helpers do it themselves). :func:`install`, called by every chapter's option
cell (``config.use_options``), makes IPython show a matplotlib figure as HTML — the same PNG as
the inline backend's, in an ``<img>`` whose ``alt`` is the description — besides its usual PNG,
so the site (myst-nb prefers HTML), Jupyter and Colab all carry it. A figure nobody described
gets an automatic description from its titles and axis labels, marked
``data-description="automatic"``; the browser test accepts only written ones.
"""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["describe", "description", "figure_html", "install", "is_described"]

_ATTRIBUTE = "_coursekit_description"


def describe(figure: Figure, text: str) -> Figure:
    """Attach ``text`` (what the figure shows, in one to three sentences) to ``figure``; returns it.

    Used in chapters 3b (book/03b_minimum_distortion.md), 7a (book/07a_attacks_and_linearity.md)
    and 7b (book/07b_certificates_and_defences.md).
    """
    if not isinstance(text, str) or len(text.strip()) < 10:
        raise ValueError(f"text must describe the figure in words (at least 10 characters), got {text!r}")
    setattr(figure, _ATTRIBUTE, " ".join(text.split()))
    return figure


def is_described(figure: Figure) -> bool:
    """True when someone wrote the figure's description (:func:`describe`)."""
    return bool(getattr(figure, _ATTRIBUTE, ""))


def _automatic(figure: Figure) -> str:
    """A description read off the figure: its title, then each panel's title and axis labels."""
    parts = []
    title = figure._suptitle.get_text() if figure._suptitle is not None else ""  # type: ignore[attr-defined]
    if title:
        parts.append(title)
    for number, ax in enumerate(figure.get_axes(), start=1):
        bits = [t for t in (ax.get_title(), ax.get_xlabel() and f"x: {ax.get_xlabel()}") if t]
        bits += [f"y: {ax.get_ylabel()}"] if ax.get_ylabel() else []
        if bits:
            parts.append(f"panel {number}: " + ", ".join(bits))
    return "A figure. " + "; ".join(parts) if parts else "A figure without titles or labels."


def description(figure: Figure) -> str:
    """The figure's written description, else an automatic one (:func:`_automatic`)."""
    return getattr(figure, _ATTRIBUTE, "") or _automatic(figure)


def figure_html(figure: Figure) -> str:
    """``figure`` as an HTML ``<img>`` (the inline backend's PNG, embedded) with its description as
    ``alt`` text."""
    from IPython.core.pylabtools import print_figure

    png = print_figure(figure, "png", bbox_inches="tight")
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    origin = "written" if is_described(figure) else "automatic"
    text = html.escape(description(figure), quote=True)
    return f'<img class="coursekit-figure" src="{source}" alt="{text}" data-description="{origin}">'


def install() -> bool:
    """Show matplotlib figures as described HTML in the running IPython (idempotent); False
    outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    from matplotlib.figure import FigureBase

    # On FigureBase, not Figure: IPython's inline backend, when it starts, removes every
    # formatter registered for Figure itself (select_figure_formats); a Figure finds this one
    # through its base class.
    shell.display_formatter.formatters["text/html"].for_type(FigureBase, figure_html)
    return True
