import pytest
import torch

from coursekit.models import MODEL_NAMES, SPECS, build, build_decoder, parameter_count, weight_decay, weight_layers


def test_parameter_counts():
    assert parameter_count(build("FC100-100-10")) == 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10 == 89_610
    assert parameter_count(build("FC10(1)")) == 7_850
    assert parameter_count(build("FC200-200-10")) == 199_210
    assert parameter_count(build("FC123-456-10")) == 784 * 123 + 123 + 123 * 456 + 456 + 456 * 10 + 10


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        build("FC100-10")
    assert "FC100-10" in str(info.value) and all(name in str(info.value) for name in MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_and_features(name):
    model = build(name)
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    phi = model.features(x)
    assert phi.dim() == 2 and phi.shape[0] == 5
    assert torch.allclose(model.head(phi), model(x), atol=1e-6)  # logits are computed from φ(x)


def test_feature_sizes():
    assert build("FC200-200-10").features(torch.rand(2, 1, 28, 28)).shape == (2, 200)
    assert build("AE400-10").features(torch.rand(2, 1, 28, 28)).shape == (2, 400)
    assert build("FC10(1e-4)").features(torch.rand(2, 1, 28, 28)).shape == (2, 784)


def test_decay_matches_a_hand_computation():
    model = build("FC100-100-10")
    first, second, third = weight_layers(model)
    expected = (
        1e-5 * first.weight.pow(2).sum() / 100
        + 1e-5 * second.weight.pow(2).sum() / 100
        + 1e-6 * third.weight.pow(2).sum() / 10
    )
    assert torch.allclose(weight_decay(model), expected)
    with torch.no_grad():
        for layer in weight_layers(model):
            layer.weight.fill_(2.0)
            layer.bias.fill_(100.0)  # biases are not decayed
    hand = 1e-5 * 4 * 784 * 100 / 100 + 1e-5 * 4 * 100 * 100 / 100 + 1e-6 * 4 * 100 * 10 / 10
    assert weight_decay(model).item() == pytest.approx(hand, rel=1e-6)


def test_per_layer_lambdas_are_the_papers():
    assert SPECS["FC100-100-10"].decay == (1e-5, 1e-5, 1e-6)
    assert SPECS["FC10(1e-2)"].decay == (1e-2,)
    assert SPECS["AE400-10"].decay == (1e-6, 1e-6)


def test_dropout_option_and_validation():
    model = build("FC100-100-10", dropout=0.3)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 2
    with pytest.raises(ValueError, match="dropout"):
        build("FC10(1)", dropout=0.5)
    with pytest.raises(ValueError, match="dropout"):
        build("FC100-100-10", dropout=1.5)


def test_autoencoder_decoder():
    model = build("AE400-10")
    assert build_decoder(model)(model.features(torch.rand(3, 1, 28, 28))).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="AE"):
        build_decoder(build("CNN"))


def test_template_roughness_against_a_loop_and_its_extremes():
    from coursekit.models import template_roughness

    generator = torch.Generator().manual_seed(0)
    w = torch.randn(3, 784, generator=generator, dtype=torch.float64)
    image = w[1].reshape(28, 28)
    pairs = sum((image[i, j] - image[i, j + 1]) ** 2 for i in range(28) for j in range(27))
    pairs += sum((image[i, j] - image[i + 1, j]) ** 2 for i in range(27) for j in range(28))
    assert template_roughness(w)[1].item() == pytest.approx((pairs / image.pow(2).sum()).item())
    noise = torch.randn(2000, 784, generator=generator, dtype=torch.float64)
    assert template_roughness(noise).mean().item() == pytest.approx(2 * 1512 / 784, rel=0.02)
    assert template_roughness(torch.ones(1, 784)).item() == 0.0
    ramp = torch.arange(28.0).repeat(28, 1).reshape(1, 784) + 1.0  # smooth: small
    assert template_roughness(ramp).item() < 0.01
    with pytest.raises(ValueError, match="784"):
        template_roughness(torch.ones(2, 100))
    with pytest.raises(ValueError, match="all zeros"):
        template_roughness(torch.zeros(1, 784))
