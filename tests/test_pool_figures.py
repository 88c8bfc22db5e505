import matplotlib
import pytest
import torch

from coursekit.pool_figures import pool_diagram, pool_gallery

matplotlib.use("Agg")


def _gids(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def _texts(fig):
    return " | ".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title])


@pytest.mark.parametrize("layers", [(0,), (0, 1, 2), (2,)])
def test_pool_diagram_draws_one_pool_per_layer(layers):
    fig = pool_diagram(
        layers,
        pool_size=500,
        refresh_fraction=0.2,
        refresh_every=300,
        pool_batch=32,
        batch_size=128,
        train_size=60_000,
        epochs=12,
    )
    fig.canvas.draw()  # it renders
    assert len(_gids(fig, "pool")) == len(layers)
    assert len(_gids(fig, "network")) == 4 and len(_gids(fig, "attack")) == 1
    # network (3 arrows between 4 boxes), data → input, pool → network, attack → pool
    assert len(_gids(fig, "arrow")) == 3 + 1 + 2 * len(layers)
    text = _texts(fig)
    assert "every 300\nsteps: 100 new" in text  # 20% of 500
    assert f"128 images + 32 from each pool = {128 + 32 * len(layers)} examples" in text
    for k in layers:
        assert ("input pool" if k == 0 else f"pool at hidden layer {k}") in text
    (refreshes,) = _gids(fig, "refresh")
    # 469 steps per epoch; made at step 469, refreshed every 300 steps until 12 * 469 = 5628
    assert list(refreshes.get_xdata()) == list(range(769, 5628, 300))


def test_pool_diagram_plots_the_logged_steps():
    fig = pool_diagram((0,), refresh_steps=[469, 800, 1100], epochs=3)
    (refreshes,) = _gids(fig, "refresh")
    assert list(refreshes.get_xdata()) == [800, 1100]


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"layers": (3,)}, "layers must be ints in 0..2"),
        ({"layers": ()}, "layers"),
        ({"pool_size": 0}, "pool_size"),
        ({"refresh_fraction": 1.5}, "refresh_fraction"),
        ({"refresh_every": 2.5}, "refresh_every"),
    ],
)
def test_pool_diagram_names_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        pool_diagram(**bad)


def test_pool_gallery_titles_true_and_predicted_labels():
    x = torch.rand(10, 1, 28, 28)
    fig = pool_gallery(x, torch.arange(10), torch.arange(10).flip(0), columns=4)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["true 0\nsays 9", "true 1\nsays 8", "true 2\nsays 7", "true 3\nsays 6"]
    with pytest.raises(ValueError, match="same length"):
        pool_gallery(x, torch.arange(9), torch.arange(10))
