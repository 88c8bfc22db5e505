"""The shared helpers of coursekit._checks, against independent computations."""

import math

import numpy as np
import pytest
import torch

from coursekit import _checks as C


@pytest.mark.parametrize("value", ["3", 3.0, True, None, [1]])
def test_check_int_refuses_other_types_with_a_type_error(value):
    with pytest.raises(TypeError, match="steps must be an int"):
        C.check_int("steps", value)
    with pytest.raises(ValueError):  # older callers caught ValueError: still caught
        C.check_int("steps", value)


def test_check_int_ranges():
    assert C.check_int("k", 2, minimum=2) == 2
    assert C.check_int("k", np.int64(5)) == 5
    assert C.check_int("seed", -7, minimum=None) == -7
    with pytest.raises(ValueError, match=r"k must be an int >= 2, got 1") as caught:
        C.check_int("k", 1, minimum=2)
    assert not isinstance(caught.value, TypeError)  # a wrong value is not a wrong type
    with pytest.raises(ValueError, match=r"size must be an int in \[1, 4\], got 5"):
        C.check_int("size", 5, maximum=4)


def test_check_bounds_and_finite():
    assert C.check_bounds((0, 1)) == (0.0, 1.0)
    for bad in [(1, 0), (0, math.inf), (math.nan, 1), (0,), "ab", None]:
        with pytest.raises(ValueError, match="bounds"):
            C.check_bounds(bad)
    assert C.check_finite("tol", 1e-3) == 1e-3
    with pytest.raises(ValueError, match="tol must be finite"):
        C.check_finite("tol", math.inf)
    with pytest.raises(TypeError, match="tol must be a number"):
        C.check_finite("tol", "x")


def test_not_certified_error_is_caught_as_either_older_error():
    assert issubclass(C.NotCertifiedError, RuntimeError)
    assert issubclass(C.NotCertifiedError, ArithmeticError)
    from coursekit.spectral import NotCertifiedError

    assert NotCertifiedError is C.NotCertifiedError


def test_eval_mode_restores_the_mode_also_on_error():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
    model.train()
    with pytest.raises(KeyError), C.eval_mode(model):
        assert not model.training and not model[1].training
        raise KeyError
    assert model.training and model[1].training


def test_model_device_is_the_cpu_for_a_model_without_parameters():
    assert C.model_device(torch.nn.Flatten()) == torch.device("cpu")
    assert C.model_device(torch.nn.Linear(2, 2).to(torch.float64)) == torch.device("cpu")
    x = torch.rand(3, 2, dtype=torch.float64)
    assert C.to_model(torch.nn.Linear(2, 2), x).dtype == torch.float32
    assert C.to_model(torch.nn.Flatten(), x).dtype == torch.float64


def test_logit_margin_and_every_other_label_against_loops():
    generator = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(6, 5, generator=generator), torch.tensor([0, 4, 2, 2, 1, 3])
    expected = [logits[i, labels[i]] - max(logits[i, j] for j in range(5) if j != labels[i]) for i in range(6)]
    torch.testing.assert_close(C.logit_margin(logits, labels), torch.stack(expected))
    others = C.other_labels(labels, 5)
    assert others.tolist() == [[j for j in range(5) if j != int(l)] for l in labels]
    image, target = C.every_other_label(labels, 5)
    assert list(zip(image.tolist(), target.tolist())) == [(i, j) for i in range(6) for j in range(5) if j != labels[i]]
