"""Figures carry a text description: written where they are made, shown as the image's alt text."""

import re

import matplotlib.pyplot as plt
import pytest

from coursekit.figures import describe, description, figure_html, install, is_described


def test_a_written_description_becomes_the_alt_text_escaped():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    describe(fig, 'Error rises   from 1% to "40%" <fast>.')
    html = figure_html(fig)
    plt.close(fig)
    assert re.fullmatch(r'<img class="coursekit-figure" src="data:image/png;base64,[A-Za-z0-9+/=]+" .*>', html)
    assert 'alt="Error rises from 1% to &quot;40%&quot; &lt;fast&gt;."' in html
    assert 'data-description="written"' in html and is_described(fig)


def test_an_undescribed_figure_gets_an_automatic_description_marked_as_such():
    fig, axes = plt.subplots(1, 2)
    fig.suptitle("Two panels")
    axes[0].set_title("left")
    axes[1].set_xlabel("ε")
    axes[1].set_ylabel("error")
    assert not is_described(fig)
    assert description(fig) == "A figure. Two panels; panel 1: left; panel 2: x: ε, y: error"
    assert 'data-description="automatic"' in figure_html(fig)
    plt.close(fig)


@pytest.mark.parametrize("text", ["", "   ", "a plot", None])
def test_a_description_must_say_something(text):
    fig = plt.figure()
    with pytest.raises(ValueError, match="describe the figure"):
        describe(fig, text)
    plt.close(fig)


def test_install_outside_ipython_does_nothing():
    assert install() is False


def test_inside_ipython_a_figure_shows_as_described_html_even_after_the_inline_backend_starts():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats

    shell = InteractiveShell.instance()
    try:
        assert install() is True
        select_figure_formats(shell, {"png"})  # what the inline backend does when it starts
        fig, ax = plt.subplots()
        describe(fig, "A straight line from (0, 0) to (1, 1).")
        bundle, _ = shell.display_formatter.format(fig)
        plt.close(fig)
        assert "image/png" in bundle and 'alt="A straight line from (0, 0) to (1, 1)."' in bundle["text/html"]
    finally:
        InteractiveShell.clear_instance()
