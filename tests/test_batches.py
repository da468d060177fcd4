"""The training batches cut from the tensors (nlbench.methods.batches) are Avalanche's, draw for draw."""

import torch

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.methods.batches import TensorBatches


def avalanche_and_fast_loaders():
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    hp = get_method("naive").resolve({"batch_size": 7})
    learner = get_method("naive")().make_learner(hp, data, "cpu")
    strategy = learner.strategy
    strategy.experience = learner.benchmark.train_stream[1]
    strategy.train_dataset_adaptation()
    strategy.make_train_dataloader()
    fast = strategy.dataloader
    assert isinstance(fast, TensorBatches)  # the stream's own experience: the fast path is taken
    return fast.loader, fast


def test_same_batches_and_same_random_stream_as_avalanches_loader():
    slow, fast = avalanche_and_fast_loaders()
    for _ in range(2):  # two epochs: each draws a new order
        torch.manual_seed(3)
        expected = [[t.clone() for t in batch] for batch in slow]
        after_slow = torch.rand(3)
        torch.manual_seed(3)
        got = list(fast)
        after_fast = torch.rand(3)
        assert len(got) == len(expected) == len(fast) and len(got) > 1
        for (x, y, t), (ex, ey, et) in zip(got, expected, strict=True):
            assert torch.equal(x, ex) and torch.equal(y, ey) and torch.equal(t, et)
        assert torch.equal(after_fast, after_slow)  # the global RNG is where Avalanche's loader leaves it


def test_an_experience_that_is_not_the_streams_own_keeps_avalanches_loader():
    from nlbench.methods.online import online_parts

    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    hp = get_method("naive").resolve()
    learner = get_method("naive")().make_learner(hp, data, "cpu")
    strategy = learner.strategy
    strategy.experience = next(iter(online_parts(learner.benchmark.train_stream[0], 50)))
    strategy.train_dataset_adaptation()
    strategy.make_train_dataloader()
    assert not isinstance(strategy.dataloader, TensorBatches)


def test_one_draw_batches_equal_torchs_batch_sampler():
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    from nlbench.methods.batches import batch_indices

    data = range(23)
    for make in (lambda: RandomSampler(data), lambda: SequentialSampler(data)):
        for size, drop_last in [(5, False), (5, True), (23, False), (30, False), (30, True), (1, False)]:
            sampler = BatchSampler(make(), size, drop_last)
            torch.manual_seed(1)
            # Avalanche's sampler stops before asking an empty BatchSampler for anything
            expected, after_torch = list(sampler) if len(sampler) else [], torch.rand(2)
            torch.manual_seed(1)
            got, after_ours = batch_indices(sampler), torch.rand(2)
            assert [b.tolist() for b in got] == expected and torch.equal(after_ours, after_torch)


def test_samplers_not_reproduced_in_one_draw_are_left_to_avalanche():
    from torch.utils.data import BatchSampler, RandomSampler, WeightedRandomSampler

    from nlbench.methods.batches import batch_indices

    data = range(10)
    assert batch_indices(BatchSampler(RandomSampler(data, replacement=True), 3, False)) is None
    assert batch_indices(BatchSampler(RandomSampler(data, num_samples=15), 3, False)) is None
    assert batch_indices(BatchSampler(RandomSampler(data, generator=torch.Generator()), 3, False)) is None
    assert batch_indices(BatchSampler(WeightedRandomSampler([1.0] * 10, 10), 3, False)) is None
    assert batch_indices(list(range(3))) is None
