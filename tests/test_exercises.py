"""The exercise checks: a right answer passes, a blank one falls back, a wrong one says how."""

import numpy as np
import pytest
import torch

from coursekit.exercises import check_function, compare_values, is_blank


def reference(x, scale):
    return torch.clamp(x * scale, 0, 1)


CASES = [(torch.linspace(0, 1, 12).reshape(3, 4), 0.5), (torch.ones(2, 2), 2.0)]


def test_a_correct_function_passes_and_is_returned(capsys):
    def mine(x, scale):
        return (x * scale).clamp(0, 1)

    assert check_function(mine, reference, CASES) is mine
    assert capsys.readouterr().out.startswith("Correct: `mine` matches the reference on 2 cases.")


def test_a_blank_exercise_falls_back_and_says_so(capsys):
    def mine(x, scale): ...

    assert check_function(mine, reference, CASES) is reference
    out = capsys.readouterr().out
    assert out.startswith("Not done yet") and "reference version" in out


def test_not_implemented_counts_as_blank(capsys):
    def mine(x, scale):
        raise NotImplementedError

    assert check_function(mine, reference, CASES) is reference
    assert capsys.readouterr().out.startswith("Not done yet")


def test_a_wrong_value_names_the_case_and_the_difference(capsys):
    def mine(x, scale):
        return x * scale  # forgot the clamp: case 2 differs

    assert check_function(mine, reference, CASES) is reference
    out = " ".join(capsys.readouterr().out.split())
    assert "Not yet right: case 2 of 2" in out and "4 of 4 values differ" in out
    assert "largest difference is 1" in out


def test_a_wrong_shape_and_an_exception_are_reported(capsys):
    def flat(x, scale):
        return reference(x, scale).flatten()

    def broken(x, scale):
        return x @ x  # 3x4 @ 3x4 fails

    assert check_function(flat, reference, CASES) is reference
    assert "expected shape (3, 4), got shape (12,)" in " ".join(capsys.readouterr().out.split())
    assert check_function(broken, reference, CASES) is reference
    assert "raised RuntimeError" in capsys.readouterr().out


def test_printed_lines_fit_the_page(capsys):
    def mine(x, scale):
        return x * scale * 1000

    check_function(mine, reference, CASES)
    assert all(len(line) <= 75 for line in capsys.readouterr().out.splitlines())


def test_compare_values_tolerances_and_structures():
    assert compare_values(1.0, 1.0 + 1e-9) is None
    assert compare_values(1.0, 1.1) is not None
    assert compare_values(torch.tensor([1.0, float("nan")]), np.array([1.0, np.nan])) is None
    assert compare_values((torch.zeros(2), "a"), (torch.zeros(2), "a")) is None
    assert "item 1" in compare_values((torch.zeros(2), "a"), (torch.zeros(2), "b"))
    assert "expected a tensor" in compare_values(torch.zeros(2), "zeros")
    assert compare_values([1, 2, 3], torch.tensor([1.0, 2.0, 3.0])) is None
    assert compare_values(1.0, 1.05, rtol=0.1) is None


def test_is_blank():
    assert is_blank(...) and is_blank(None) and not is_blank(0)


@pytest.mark.parametrize(
    "bad, match",
    [({"cases": []}, "cases"), ({"cases": "ab"}, "cases"), ({"rtol": -1}, "rtol"), ({"atol": float("nan")}, "atol")],
)
def test_bad_arguments_are_named(bad, match):
    arguments = {"cases": CASES, **bad}
    with pytest.raises(ValueError, match=match):
        check_function(reference, reference, **arguments)
    with pytest.raises(TypeError, match="student"):
        check_function(3, reference, CASES)
