"""The c and ε sliders: frames drawn once, shown by the live widget and the static page alike."""

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import coursekit.widgets as widgets_module
from conftest import attackable_model
from coursekit.widgets import (
    FRAME_DPI,
    FrameSlider,
    c_slider,
    epsilon_figure,
    epsilon_slider,
    nearest_index,
    penalty_figure,
    penalty_path,
    plot_epsilon_curves,
    plot_penalty_solution,
    render_frames,
)


@pytest.fixture(scope="module")
def path():
    model = attackable_model(5)
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    return penalty_path(model, x, 3, np.logspace(-2, 1, 4))


@pytest.fixture(scope="module")
def curves():
    index = pd.Index([0.05, 0.1, 0.2], name="epsilon")
    columns = pd.MultiIndex.from_tuples(
        [(kind, name) for kind in ("adversarial direction", "Gaussian noise") for name in ("A", "B")]
    )
    return pd.DataFrame(
        [[0.1, 0.2, 0.0, 0.1], [0.5, 0.3, 0.1, 0.1], [0.9, 0.6, 0.2, 0.3]], index=index, columns=columns
    )


def png(frame: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"))


def test_penalty_figure_update_draws_the_chosen_c(path):
    fig, update = penalty_figure(path)
    update(3)
    update(1)  # in place: nothing of c_3 may stay behind
    image_axes, solution_axes, bar_axes, path_axes = fig.axes[:4]
    np.testing.assert_array_equal(solution_axes.images[0].get_array(), path.solutions[1].squeeze().numpy())
    heights = [bar.get_height() for bar in bar_axes.patches]
    np.testing.assert_allclose(heights, path.probabilities[1].numpy())
    assert [line for line in path_axes.lines if line.get_linestyle() == ":"][0].get_xdata()[0] == path.c_values[1]
    assert f"c = {path.c_values[1]:.3g}" in path_axes.get_title()
    assert f"f = {int(path.probabilities[1].argmax())}" in solution_axes.get_title()
    with pytest.raises(ValueError, match="index"):
        plot_penalty_solution(path, 4)


def test_epsilon_figure_update_draws_the_chosen_epsilon(curves):
    fig, update = epsilon_figure(curves)
    update(2)
    update(1)
    heights = [bar.get_height() for bar in fig.axes[1].patches]
    assert heights == [0.5, 0.3, 0.1, 0.1]  # adversarial A, B, then Gaussian A, B at ε = 0.1
    assert fig.axes[1].get_title() == "ε = 0.1"
    # the function form picks the nearest grid value
    assert plot_epsilon_curves(curves, 0.17).axes[1].get_title() == "ε = 0.2"
    assert nearest_index([0.05, 0.1, 0.2], 0.07) == 0
    with pytest.raises(ValueError, match="values"):
        nearest_index([], 0.1)


def test_frames_are_the_plots(path):
    """Frame i, drawn in place after frames 0..i-1, is pixel for pixel the figure drawn afresh."""
    frames = render_frames(*penalty_figure(path), 4, colors=None)
    fresh = render_frames(plot_penalty_solution(path, 3), lambda i: None, 1, colors=None)[0]
    np.testing.assert_array_equal(png(frames[3]), png(fresh))
    assert not np.array_equal(png(frames[0]), png(frames[3]))
    width, height = Image.open(io.BytesIO(frames[0])).size
    assert (width, height) == (12 * FRAME_DPI, int(2.8 * FRAME_DPI))


def test_quantised_frames_are_small_and_close(path):
    full = render_frames(*penalty_figure(path), 2, colors=None)
    small = render_frames(*penalty_figure(path), 2)
    assert Image.open(io.BytesIO(small[0])).mode == "P"
    assert len(small[0]) < len(full[0]) / 2
    # a palette of 128 colours changes the picture little: mean absolute difference < 2 of 255
    assert np.abs(png(small[0]).astype(int) - png(full[0]).astype(int)).mean() < 2


def test_render_frames_refuses_bad_arguments():
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(1, 1))
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="count"):
            render_frames(figure, lambda i: None, bad)
    with pytest.raises(ValueError, match="colors"):
        render_frames(figure, lambda i: None, 1, colors=300)
    plt.close(figure)


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def tiny_frames(count: int) -> list[bytes]:
    frames = []
    for k in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (4 + k, 3), (10 * k, 0, 0)).save(buffer, format="png")
        frames.append(buffer.getvalue())
    return frames


def test_static_html_embeds_every_frame_and_shows_the_default():
    frames = tiny_frames(5)
    slider = FrameSlider("c", ["0.01", "0.1", "1", "10", "100"], frames, 3)
    html = slider.html()
    elements = parse(html)
    images = [attrs for tag, attrs in elements if tag == "img"]
    assert [base64.b64decode(a["src"].split(",", 1)[1]) for a in images] == frames
    assert [a["data-label"] for a in images] == slider.labels
    # with JavaScript off only the default frame shows, and the control (useless then) is hidden
    assert [("display:none" in a.get("style", "")) for a in images] == [True, True, True, False, True]
    control = [a for tag, a in elements if a.get("class") == "coursekit-slider-control"][0]
    assert "display:none" in control["style"]
    (range_input,) = [a for tag, a in elements if tag == "input"]
    assert (range_input["type"], range_input["min"], range_input["max"], range_input["value"]) == (
        "range",
        "0",
        "4",
        "3",
    )
    root_id = elements[0][1]["id"]
    assert f'document.getElementById("{root_id}")' in html
    assert parse(slider.html())[0][1]["id"] != root_id  # two displays, two ids
    assert "<script src" not in html and "http" not in html  # nothing fetched from anywhere


def test_live_widget_shows_the_same_frames():
    pytest.importorskip("ipywidgets")
    frames = tiny_frames(3)
    box = FrameSlider("ε", ["0.05", "0.1", "0.2"], frames, 1).widget()
    slider, image = box.children
    assert [label for label, _ in slider.options] == ["0.05", "0.1", "0.2"] or list(slider._options_labels) == [
        "0.05",
        "0.1",
        "0.2",
    ]
    assert slider.value == 1 and image.value == frames[1]
    slider.value = 2
    assert image.value == frames[2]
    slider.value = 0
    assert image.value == frames[0]


def test_mimebundle_has_the_widget_only_in_a_kernel(monkeypatch):
    pytest.importorskip("ipywidgets")
    slider = FrameSlider("c", ["1", "2"], tiny_frames(2), 0)
    bundle = slider._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    monkeypatch.setattr(widgets_module, "_in_kernel", lambda: True)
    bundle = slider._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["version_major"] == 2 and isinstance(view["model_id"], str) and view["model_id"]
    assert '<input type="range"' in bundle["text/html"]


def test_frame_slider_refuses_inconsistent_input():
    frames = tiny_frames(2)
    with pytest.raises(ValueError, match="one length"):
        FrameSlider("c", ["1"], frames, 0)
    with pytest.raises(ValueError, match="default|index"):
        FrameSlider("c", ["1", "2"], frames, 2)
    with pytest.raises(ValueError, match="PNG"):
        FrameSlider("c", ["1", "2"], [frames[0], b"GIF89a"], 0)


def stub_frames(figure, update, count):
    import matplotlib.pyplot as plt

    plt.close(figure)
    return tiny_frames(count)


def test_c_and_epsilon_sliders(path, curves, monkeypatch):
    slider = c_slider(path, 2)
    assert slider.labels == [f"{c:.3g}" for c in path.c_values] and slider.default == 2
    assert len(slider.frames) == 4 and len(set(slider.frames)) == 4
    with pytest.raises(ValueError, match="index"):
        c_slider(path, 4)
    # where the sliders start (frames stubbed: their drawing is tested above)
    monkeypatch.setattr(widgets_module, "render_frames", stub_frames)
    assert c_slider(path).default == 2  # the middle of 4
    slider = epsilon_slider(curves, 0.12)
    assert slider.name == "ε" and slider.labels == ["0.05", "0.1", "0.2"] and slider.default == 1
    assert epsilon_slider(curves).default == 1


def test_penalty_path_refuses_bad_input_by_name():
    from coursekit.widgets import penalty_path

    model = attackable_model()
    x = torch.full((1, 4, 4), 0.5)
    with pytest.raises(TypeError, match="target"):
        penalty_path(model, x, 3.7, [1.0])
    with pytest.raises(ValueError, match="one image"):
        penalty_path(model, torch.stack([x, x]), 3, [1.0])
    with pytest.raises(ValueError, match="c_values"):
        penalty_path(model, x, 3, [1.0, -2.0])
    with pytest.raises(ValueError, match="c_values"):
        penalty_path(model, x, 3, [])


def test_frame_slider_takes_numbers_as_labels():
    """Issue 24 item 10: float labels raised AttributeError in html()."""
    frames = tiny_frames(3)
    slider = FrameSlider("c", [0.31622776601683794, 10, np.float64(1e-4)], frames, 0)
    assert slider.labels == ["0.316", "10", "0.0001"]
    images = [attrs for tag, attrs in parse(slider.html()) if tag == "img"]
    assert [a["data-label"] for a in images] == ["0.316", "10", "0.0001"]
    with pytest.raises(ValueError, match="labels"):
        FrameSlider("c", [None, "1", "2"], frames, 0)
