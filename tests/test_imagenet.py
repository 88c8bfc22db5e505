"""Figure 5's code path (chapter 3, part 2) on random weights and one small photo."""

import matplotlib
import numpy as np
import pytest
import torch
import torchvision

from coursekit import imagenet
from coursekit.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    OSTRICH,
    Normalised,
    category_names,
    figure5,
    figure5_examples,
    photo_tensor,
    pretrained_alexnet,
    sample_photos,
)

matplotlib.use("Agg")


def test_the_normalisation_is_inside_the_model():
    inner = torch.nn.Conv2d(3, 2, 3)
    x = torch.rand(2, 3, 8, 8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(Normalised(inner)(x), inner((x - mean) / std))


def test_photo_tensor_takes_the_centred_square():
    array = np.zeros((40, 60, 3), dtype=np.uint8)
    array[:, :10] = 255  # a white band on the left, cropped away by the centred square
    array[:, 25:35] = 100
    photo = photo_tensor(array, size=20)
    assert photo.shape == (3, 20, 20) and photo.dtype == torch.float32
    assert float(photo.max()) <= 1 and float(photo.min()) >= 0
    assert float(photo[:, :, :3].max()) < 0.05  # left edge of the square is black, not white
    assert abs(float(photo[0, 10, 10]) - 100 / 255) < 0.02
    with pytest.raises(ValueError, match="image must be an array"):
        photo_tensor(np.zeros((4, 4)), size=20)
    with pytest.raises(ValueError, match="size"):
        photo_tensor(array, size=8)


def test_grace_hopper_ships_with_matplotlib():
    photos = sample_photos(size=32, limit=1)
    assert list(photos) == ["grace_hopper"] and photos["grace_hopper"].shape == (3, 32, 32)
    assert 0.1 < float(photos["grace_hopper"].mean()) < 0.9
    with pytest.raises(ValueError, match="limit"):
        sample_photos(limit=0)


def test_the_target_is_the_papers_ostrich():
    names = category_names()
    assert len(names) == 1000 and names[OSTRICH] == "ostrich"


def test_offline_the_pretrained_model_is_none_with_the_reason(monkeypatch):
    def offline(**kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models, "alexnet", offline)
    model, why = pretrained_alexnet()
    assert model is None and why == "OSError"


def test_figure5_runs_on_random_weights_and_one_small_photo():
    torch.manual_seed(0)
    model = Normalised(torchvision.models.alexnet(weights=None)).eval()
    photos = sample_photos(size=64, limit=1)
    with torch.no_grad():
        logits = model(photos["grace_hopper"][None])
    target = int(logits.topk(2).indices[0, 1])  # the runner-up: reachable in a few steps
    data = figure5_examples(model, photos, target=target, polish=0, refine=False, search_steps=2, max_iter=10)
    assert data.names == ["grace_hopper"] and data.target == target
    assert data.x_adv.shape == (1, 3, 64, 64)
    assert float(data.x_adv.min()) >= 0 and float(data.x_adv.max()) <= 1  # the box is the pixels'
    assert int(data.after[0]) == target and int(data.before[0]) == int(logits.argmax())
    rms = (data.x_adv - data.x).pow(2).mean().sqrt()
    torch.testing.assert_close(data.distortion[0], rms)
    assert 0 < float(rms) < 0.05
    fig = figure5(data, category_names())
    assert len(fig.axes) == 3 and fig.axes[2].get_title().startswith(category_names()[target][:10])
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="one shape"):
        figure5_examples(model, {"a": torch.rand(3, 64, 64), "b": torch.rand(3, 32, 32)})


def test_skimage_photos_are_used_only_when_present(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "skimage", None)  # import fails: matplotlib's photo alone
    assert list(sample_photos(size=32)) == ["grace_hopper"]
    assert imagenet.SKIMAGE_PHOTOS == ("chelsea", "coffee", "astronaut", "rocket")
