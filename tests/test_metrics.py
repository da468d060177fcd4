"""Metrics against matrices computed by hand."""

import math

import numpy as np
import pytest

from nlbench.run import metrics as M

# T = 3. Row i = after training on experience i.
R3 = np.array([
    [0.90, 0.10, 0.20],
    [0.60, 0.80, 0.30],
    [0.50, 0.70, 0.95],
])
b3 = np.array([0.10, 0.15, 0.05])


def test_average_accuracy():
    assert M.average_accuracy(R3) == pytest.approx((0.50 + 0.70 + 0.95) / 3)


def test_learning_accuracy():
    assert M.learning_accuracy(R3) == pytest.approx((0.90 + 0.80 + 0.95) / 3)


def test_bwt_divides_by_T_minus_1():
    # (0.50 - 0.90) + (0.70 - 0.80) = -0.5, over T-1 = 2
    assert M.backward_transfer(R3) == pytest.approx(-0.25)


def test_forgetting_uses_max_over_earlier_rows():
    # exp0: max(0.90, 0.60) - 0.50 = 0.40; exp1: max(0.10, 0.80) - 0.70 = 0.10
    assert M.forgetting_per_experience(R3) == pytest.approx([0.40, 0.10])
    assert M.forgetting(R3) == pytest.approx(0.25)


def test_forgetting_differs_from_diagonal_definition_when_accuracy_peaks_later():
    R = np.array([
        [0.5, 0.0],
        [0.9, 0.9],
    ])
    # Peak of exp0 is in row 1 (the last row), which Chaudhry's max excludes: f = 0.5 - 0.9 = -0.4.
    assert M.forgetting(R) == pytest.approx(-0.4)
    R = np.array([[0.5, 0.0, 0.0], [0.9, 0.8, 0.0], [0.6, 0.8, 0.7]])
    # exp0: max(0.5, 0.9) - 0.6 = 0.3 (the diagonal definition would give -0.1); exp1: 0.8 - 0.8 = 0
    assert M.forgetting(R) == pytest.approx(0.15)
    assert -M.backward_transfer(R) == pytest.approx((-0.1 + 0.0) / 2)


def test_fwt_uses_initial_accuracy():
    # (R[0,1] - b1) + (R[1,2] - b2) = (0.10 - 0.15) + (0.30 - 0.05) = 0.20, over 2
    assert M.forward_transfer(R3, b3) == pytest.approx(0.10)


def test_average_incremental_accuracy():
    a = [0.90, (0.60 + 0.80) / 2, (0.50 + 0.70 + 0.95) / 3]
    assert M.average_incremental_accuracy(R3) == pytest.approx(sum(a) / 3)


def test_identity_acc_equals_la_plus_scaled_bwt():
    rng = np.random.default_rng(0)
    for T in (2, 3, 7):
        R = rng.random((T, T))
        assert M.average_accuracy(R) == pytest.approx(
            M.learning_accuracy(R) + (T - 1) / T * M.backward_transfer(R))


def test_single_experience_has_no_transfer_or_forgetting():
    R = np.array([[0.8]])
    s = M.summarize({"acc": R}, np.array([0.1]))
    assert s["acc"] == pytest.approx(0.8)
    assert s["la"] == pytest.approx(0.8)
    assert s["avg_inc_acc"] == pytest.approx(0.8)
    for key in ("bwt", "forgetting", "fwt"):
        assert math.isnan(s[key]), key


def test_task_never_learned():
    # Experience 1 is never learned (accuracy 0 throughout): no forgetting for it, and LA shows it.
    R = np.array([
        [0.9, 0.0, 0.0],
        [0.7, 0.0, 0.0],
        [0.6, 0.0, 0.8],
    ])
    assert M.forgetting_per_experience(R) == pytest.approx([0.3, 0.0])
    assert M.learning_accuracy(R) == pytest.approx((0.9 + 0.0 + 0.8) / 3)
    assert M.backward_transfer(R) == pytest.approx((-0.3 + 0.0) / 2)


def test_rejects_non_square_matrix():
    with pytest.raises(ValueError, match="T x T"):
        M.average_accuracy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one entry per experience"):
        M.forward_transfer(R3, np.zeros(2))
