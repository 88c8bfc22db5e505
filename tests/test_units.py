import pytest
import torch

from coursekit.units import (
    activations,
    compare_bases,
    difference_interval,
    feature_similarity,
    label_purity,
    natural_directions,
    random_directions,
    top_images,
)


def test_top_images_against_a_brute_force_sort():
    torch.manual_seed(0)
    phi = torch.randn(200, 7)
    v = torch.randn(7)
    scores = [(float(phi[i] @ v), i) for i in range(200)]
    expected = [i for _, i in sorted(scores, reverse=True)[:9]]
    assert top_images(phi, v, 9).tolist() == expected
    several = top_images(phi, torch.stack([v, -v]), 9)
    assert several.shape == (2, 9) and several[0].tolist() == expected


def test_natural_direction_picks_the_units_largest_activations():
    phi = torch.randn(50, 4)
    assert top_images(phi, natural_directions(4)[2], 5).tolist() == phi[:, 2].topk(5).indices.tolist()


def test_random_directions_unit_norm_and_seeded():
    a = random_directions(30, 12, seed=5)
    assert a.shape == (12, 30)
    assert torch.allclose(a.norm(dim=1), torch.ones(12), atol=1e-6)
    assert torch.equal(a, random_directions(30, 12, seed=5))
    assert not torch.equal(a, random_directions(30, 12, seed=6))


def test_purity_constructed_and_random():
    assert label_purity(torch.tensor([3, 3, 3, 3])).item() == 1.0
    assert label_purity(torch.tensor([[1, 2, 1, 1], [0, 1, 2, 3]])).tolist() == [0.75, 0.25]
    # k = 2 labels drawn uniformly from 2 classes: purity 1 with probability 1/2, else 1/2 → 0.75.
    labels = torch.randint(0, 2, (20_000, 2), generator=torch.Generator().manual_seed(0))
    assert label_purity(labels).mean().item() == pytest.approx(0.75, abs=0.01)


def test_feature_similarity():
    features = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    assert feature_similarity(features, torch.tensor([0, 1])).item() == pytest.approx(1.0)
    assert feature_similarity(features, torch.tensor([0, 2])).item() == pytest.approx(0.0)
    assert feature_similarity(features, torch.tensor([0, 1, 2])).item() == pytest.approx(1 / 3)


def test_compare_bases_controls_bracket_the_scale():
    """Features that encode the label: class-mean directions are pure, random image sets are not."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (2000,), generator=generator)
    centres = torch.randn(5, 12, generator=generator) * 3
    phi = centres[labels] + torch.randn(2000, 12, generator=generator)
    report = compare_bases(phi, labels, phi, k=8, random_count=50, bootstrap_resamples=200)
    means = report.summary()["purity mean"]
    assert means["class mean"] > 0.95 and means["random images"] < 0.5
    assert set(report.test_table().index) == {"purity", "similarity"}
    assert 0 <= report.tests["purity"]["p value"] <= 1
    assert report.tests["purity"]["ci low"] <= report.tests["purity"]["difference"] <= report.tests["purity"]["ci high"]


def test_difference_interval_is_the_percentile_bootstrap_of_the_difference_of_means():
    import numpy as np

    generator = np.random.default_rng(1)
    a, b = generator.normal(0.3, 1.0, 400), generator.normal(0.0, 2.0, 900)
    low, high = difference_interval(a, b, resamples=20_000, seed=3)
    # the normal approximation: mean difference ± 1.96 standard errors
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert low == pytest.approx(a.mean() - b.mean() - 1.96 * se, abs=0.01)
    assert high == pytest.approx(a.mean() - b.mean() + 1.96 * se, abs=0.01)
    assert difference_interval(a, b, resamples=500, seed=3) == difference_interval(torch.tensor(a), list(b), 500, 3)
    assert difference_interval(a, b, resamples=500, seed=4) != difference_interval(a, b, resamples=500, seed=3)
    narrow = difference_interval(a, b, resamples=20_000, seed=3, level=0.5)
    assert low < narrow[0] < narrow[1] < high
    with pytest.raises(ValueError, match="level"):
        difference_interval(a, b, level=1.0)
    with pytest.raises(ValueError, match="b must be 1-D"):
        difference_interval(a, [1.0])
    with pytest.raises(ValueError, match="resamples"):
        difference_interval(a, b, resamples=1)


def test_dead_units_are_counted_and_left_out():
    phi = torch.randn(100, 6)
    phi[:, 2] = 0.0
    labels = torch.randint(0, 3, (100,))
    report = compare_bases(phi, labels, phi, k=4, random_count=10, bootstrap_resamples=100)
    assert report.dead_units == 1 and len(report.scores["natural"]["purity"]) == 5


def test_activations_batched_and_other_layers():
    from coursekit.models import build

    model = build("FC100-100-10").eval()
    x = torch.rand(10, 1, 28, 28)
    phi = activations(model, x, batch_size=3)
    assert torch.allclose(phi, model.features(x), atol=1e-6)
    first = activations(model, x, batch_size=4, layer=model.body[2])
    assert first.shape == (10, 100)
    with pytest.raises(ValueError, match="layer"):
        activations(model, x, layer=torch.nn.ReLU())


def test_bad_arguments():
    with pytest.raises(ValueError, match="k"):
        top_images(torch.randn(5, 3), torch.randn(3), 6)
    with pytest.raises(ValueError, match="direction"):
        top_images(torch.randn(5, 3), torch.randn(4), 2)
    with pytest.raises(ValueError, match="count"):
        random_directions(5, 0)
    with pytest.raises(ValueError, match="units"):
        natural_directions(3, [5])
