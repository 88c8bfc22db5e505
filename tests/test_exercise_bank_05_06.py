"""Chapters 5 and 6's exercise references do what their chapters say (the bank's generic tests
check that the likely mistakes are recognised)."""

import numpy as np
import torch

from coursekit.exercises.ch05_spectral import conv_norm_2d_reference, strided_norm_1d_explicit
from coursekit.exercises.ch06_adversarial_training import refresh_cases, refresh_stale, stale_first


def test_the_1d_strided_norm_is_the_folded_spectrum():
    taps = np.array([0.5, -1.0, 2.0])
    padded = np.r_[taps, np.zeros(13)]
    power = np.abs(np.fft.fft(padded)) ** 2
    for stride in (1, 2, 4):
        folded = np.sqrt(power.reshape(stride, -1).sum(0).max() / stride)
        assert np.isclose(strided_norm_1d_explicit(taps, 16, stride), folded)


def test_the_2d_reference_is_the_explicit_matrix_norm():
    from coursekit.spectral import circular_conv, explicit_operator_matrix

    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    matrix = explicit_operator_matrix(lambda v: circular_conv(v, w, 2), (2, 8, 8))
    assert torch.isclose(conv_norm_2d_reference(w, 2, 8), torch.linalg.matrix_norm(matrix, 2))


def test_stale_entries_go_first_oldest_first_ties_by_slot():
    made_at = torch.tensor([0, 0, 3, 3, 5, 5, 5, 7])
    fooled = torch.tensor([1, 0, 1, 0, 0, 1, 0, 1], dtype=torch.bool)
    assert stale_first(made_at, fooled, 6).tolist() == [1, 3, 4, 6, 0, 2]
    few = torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool)
    assert stale_first(torch.tensor([2, 1, 1, 0, 4, 4]), few, 3).tolist() == [2, 3, 1]


def test_refresh_stale_writes_copies_with_true_labels_and_the_step():
    pool_x, pool_y, made_at, fooled, images, labels, step, attack = refresh_cases()[0]
    before = [t.clone() for t in (pool_x, pool_y, made_at)]
    new_x, new_y, new_made = refresh_stale(pool_x, pool_y, made_at, fooled, images, labels, step, attack)
    for old, kept in zip(before, (pool_x, pool_y, made_at)):
        assert torch.equal(old, kept)  # the arguments are unchanged
    slots = [1, 3, 4]
    assert torch.equal(new_x[slots], 1 - images) and torch.equal(new_y[slots], labels)
    assert new_made[slots].tolist() == [step] * 3 and torch.equal(new_made[[0, 2]], made_at[[0, 2]])
