"""Digits scenarios: metadata, splits, permutations, determinism."""

import numpy as np
import pytest
import torch

from nlbench.core.registry import SCENARIOS
from nlbench.methods.avalanche import to_avalanche_benchmark


def build(name, seed=0, **options):
    return SCENARIOS.get(name)(**options).build(seed)


def test_split_digits_metadata_and_disjoint_classes():
    data = build("split-digits")
    info = data.info
    assert (info.setting, info.n_experiences, info.input_shape, info.n_classes) == \
        ("class-incremental", 5, (8, 8), 10)
    assert info.chance_acc == pytest.approx(0.1)
    assert info.classes_per_experience == ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
    total = 0
    for e in data.experiences:
        assert set(e.y_train.tolist()) == set(e.classes) == set(e.y_test.tolist())
        assert e.x_train.dtype == torch.float32
        assert float(e.x_train.min()) >= 0.0 and float(e.x_train.max()) <= 1.0
        assert e.task_label == 0
        total += len(e.y_train) + len(e.y_test)
    assert total == 1797


def test_split_is_stratified_per_experience():
    e = build("split-digits", test_size=0.2).experiences[0]
    for c in e.classes:
        n_test, n_all = int((e.y_test == c).sum()), int((e.y_test == c).sum() + (e.y_train == c).sum())
        assert abs(n_test - 0.2 * n_all) <= 1


def test_task_incremental_option():
    data = build("split-digits", task_incremental=True)
    assert data.info.setting == "task-incremental"
    assert [e.task_label for e in data.experiences] == [0, 1, 2, 3, 4]
    assert data.info.chance_acc == pytest.approx(0.5)


def test_class_order_option():
    data = build("split-digits", class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0], n_experiences=2)
    assert data.info.classes_per_experience == ((9, 8, 7, 6, 5), (4, 3, 2, 1, 0))


def test_permuted_digits_experience_zero_is_unpermuted():
    data = build("permuted-digits", n_experiences=3)
    assert data.info.setting == "domain-incremental"
    e0, e1, e2 = data.experiences
    assert torch.equal(e0.y_test, e1.y_test)
    # Same images, pixels permuted: every image of e1 is a pixel permutation of the same image of e0.
    assert torch.equal(e0.x_train.flatten(1).sort(dim=1).values, e1.x_train.flatten(1).sort(dim=1).values)
    assert not torch.equal(e0.x_train, e1.x_train) and not torch.equal(e1.x_train, e2.x_train)


@pytest.mark.parametrize("name", ["split-digits", "permuted-digits"])
def test_same_seed_same_data_other_seed_other_split(name):
    a, b, c = build(name, seed=3), build(name, seed=3), build(name, seed=4)
    for ea, eb in zip(a.experiences, b.experiences, strict=True):
        assert torch.equal(ea.x_train, eb.x_train) and torch.equal(ea.y_test, eb.y_test)
    assert not torch.equal(a.experiences[1].x_train, c.experiences[1].x_train)


def test_avalanche_benchmark_matches_tensors():
    data = build("split-digits", task_incremental=True, n_experiences=2)
    bm = to_avalanche_benchmark(data.experiences)
    assert len(bm.train_stream) == len(bm.test_stream) == 2
    x, y, t = bm.train_stream[1].dataset[0]
    e = data.experiences[1]
    assert torch.equal(x, e.x_train[0]) and int(y) == int(e.y_train[0]) and int(t) == 1
    assert np.array_equal(sorted(bm.train_stream[1].classes_in_this_experience), sorted(e.classes))
    # the classes given to Avalanche up front are the ones it finds in the targets
    targets = bm.train_stream[1].dataset.targets
    assert targets.uniques == set(targets.data[:]) == set(e.y_train.tolist())
