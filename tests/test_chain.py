"""Is this model a plain chain of layers? One walk (coursekit.chain) for the four parts of the
course that need the answer: exact, verification, certified_radius and spectral."""

import pytest
import torch
from torch import nn

from coursekit.chain import chain_layers


class _Wrapper(nn.Module):
    """A container whose forward is not known to apply its children in order."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(16, 10)

    def forward(self, x):
        return self.inner(x.flatten(1) * 2)


class _Flattening(nn.Module):
    """AlexNet's shape: two containers and a torch.flatten between them, outside any module."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(8, 3))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def test_the_containers_give_the_layers_in_order_with_their_names():
    from coursekit.models import build

    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(16, 4), nn.ReLU()), nn.Linear(4, 2))
    assert [(layer.name, type(layer.module).__name__) for layer in chain_layers(model)] == [
        ("0", "Flatten"),
        ("1.0", "Linear"),
        ("1.1", "ReLU"),
        ("2", "Linear"),
    ]
    zoo = build("FC100-100-10")  # a ZooModel: body, then head
    assert [layer.name for layer in chain_layers(zoo)] == [
        name for name, m in zoo.named_modules() if not list(m.children())
    ]
    assert [layer.name for layer in chain_layers(nn.Linear(3, 2))] == [""]  # a model that is one layer


def test_a_container_with_its_own_forward_is_refused_by_name_unless_traced():
    model = nn.Sequential(nn.Identity(), _Wrapper())
    with pytest.raises(ValueError, match=r"'1' is a _Wrapper"):
        chain_layers(model)
    with pytest.raises(ValueError, match="previous layer's output"):  # traced: the ×2 breaks the chain
        chain_layers(model, (1, 4, 4))
    traced = chain_layers(_Flattening(), (1, 4, 4))  # reshaping between layers is allowed when traced
    assert [(layer.name, layer.input_shape, layer.output_shape) for layer in traced] == [
        ("features.0", (1, 4, 4), (2, 2, 2)),
        ("features.1", (2, 2, 2), (2, 2, 2)),
        ("classifier.0", (8,), (3,)),
    ]
    with pytest.raises(ValueError, match="is a _Flattening"):
        chain_layers(_Flattening())


def test_the_four_readers_refuse_what_is_not_a_chain_through_the_one_walk():
    from coursekit.exact import linear_weights
    from coursekit.modern_attacks import certified_radius
    from coursekit.spectral import layer_bounds
    from coursekit.verification import relu_network

    model = nn.Sequential(nn.Flatten(), _Wrapper())
    x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    for call in (
        lambda: linear_weights(model),
        lambda: relu_network(model),
        lambda: certified_radius(model, x, y),
    ):
        with pytest.raises(ValueError, match="'1' is a _Wrapper: only nn.Sequential containers"):
            call()
    with pytest.raises(ValueError, match="previous layer's output"):
        layer_bounds(model, (1, 4, 4))
