"""Text descriptions (alt text) of the course's own figures and sliders, and colour that never
carries meaning alone (the site-wide check with axe-core is in tests/test_site.py)."""

import re

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from coursekit.figures import description, figure_html, is_described  # noqa: E402
from coursekit.plots import digit_grid, heatmap  # noqa: E402
from coursekit.widgets import FrameSlider, epsilon_description, plot_epsilon_curves  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 20


def test_a_slider_frame_carries_its_written_description():
    slider = FrameSlider("c", ["0.1", "1"], [PNG, PNG], 0, ["At c = 0.1 the model says 3.", "At c = 1 it says 7."])
    page = slider.html()
    assert 'alt="At c = 0.1 the model says 3." data-description="written"' in page
    assert 'alt="At c = 1 it says 7." data-description="written"' in page
    assert 'aria-valuetext="c = 0.1"' in page


def test_a_slider_without_descriptions_is_marked_automatic():
    page = FrameSlider("c", ["0.1", "1"], [PNG, PNG], 0).html()
    assert page.count('data-description="automatic"') == 2


def test_plot_helpers_describe_their_figures_with_numbers():
    grid = digit_grid(torch.zeros(3, 1, 28, 28), [4, 1, 9], title="Three digits")
    assert is_described(grid) and "4 1 9" in description(grid)
    table = pd.DataFrame([[0.25, 0.5]], index=["FC10"], columns=["a", "b"])
    figure = heatmap(table, title="Errors")
    assert is_described(figure) and "FC10: a 25%, b 50%" in description(figure)
    html = figure_html(figure)
    assert 'data-description="written"' in html and re.search(r'alt="Errors: a heat map', html)


def test_the_epsilon_figure_tells_its_bars_apart_by_pattern_and_words():
    index = pd.Index([0.0, 0.1], name="epsilon")
    columns = pd.MultiIndex.from_product([["adversarial direction", "Gaussian noise"], ["FC10", "CNN"]])
    curves = pd.DataFrame([[0.1, 0.2, 0.1, 0.1], [0.6, 0.7, 0.15, 0.2]], index=index, columns=columns)
    figure = plot_epsilon_curves(curves, 0.1)
    hatches = {patch.get_hatch() for patch in figure.axes[1].patches}
    assert hatches == {None, "//"} or hatches == {"", "//"}
    assert "FC10: 60% adversarial, 15% noise" in description(figure) == epsilon_description(curves, 1)
