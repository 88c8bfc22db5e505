import numpy as np
import pandas as pd
import torch

from conftest import attackable_model
from coursekit.report import difference_phrase, side_by_side
from coursekit.widgets import penalty_path, plot_penalty_solution


def test_penalty_path_distortion_shrinks_as_c_grows():
    """For a softmax on pixels the penalised problem is convex: its solution's distortion is
    non-increasing in c, and the target's probability with it."""
    model = attackable_model(4).double()
    x = torch.rand(1, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 0.8 + 0.1
    with torch.no_grad():
        target = int((model(x).argmax(1) + 1) % 10)
    c_values = np.logspace(-3, 2, 12)
    path = penalty_path(model, x, target, c_values)
    assert path.solutions.shape == (12, 1, 4, 4)
    assert (np.diff(path.distortion) <= 1e-6).all()
    assert path.probabilities[0, target] > 0.5 > path.probabilities[-1, target]
    plot_penalty_solution(path, 3)


def test_side_by_side_keeps_ours_and_the_papers_apart():
    ours = pd.DataFrame({"test error": [0.02, 0.5]}, index=["A", "B"])
    table = side_by_side(ours, {"A": (0.03,)}, ["test error"])
    assert list(table.columns) == [("test error", "ours"), ("test error", "paper")]
    assert table.loc["A", ("test error", "paper")] == 0.03 and np.isnan(table.loc["B", ("test error", "paper")])
    assert difference_phrase(0.025, 0.02) == "0.5 points above the paper's"
    assert difference_phrase(0.02, 0.02) == "the same as the paper's"
