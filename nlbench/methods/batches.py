"""Training minibatches cut straight from an experience's tensors, in exactly the order Avalanche draws them.

Why: Avalanche's loader fetches every sample through three dataset layers and collates them one by one; on
small models that was the largest cost of a run (0.85 of 2.07 s for naive on split-digits). `TensorBatches`
keeps Avalanche's sampler (same random draws, same batch indices, same number of batches) and replaces the
fetch: `x[indices]` instead of `[dataset[i] for i in indices]`. Where that sampler is torch's shuffled or
sequential `BatchSampler` (every plain experience), its indices come from one `randperm` drawn exactly as
torch draws it, instead of index by index through three generators. It also draws the seed torch's DataLoader
draws when an epoch starts, so the global RNG stream, and every number after it, stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor


class TensorBatches:
    """Iterates like `loader` (an Avalanche `TaskBalancedDataLoader` over one dataset holding `x, y`)."""

    def __init__(self, loader: Any, x: Tensor, y: Tensor, task_label: int):
        self.loader = loader
        self.x, self.y = x, y
        self.t = torch.full((len(y),), task_label, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[list[Tensor]]:
        from avalanche.benchmarks.utils.data_loader import MultiDatasetSampler

        loader = self.loader
        torch.empty((), dtype=torch.int64).random_()  # torch's DataLoader iterator draws its base seed here
        samplers = loader._create_samplers(loader.datasets, loader.batch_sizes, loader.distributed_sampling,
                                           loader.loader_kwargs)
        batches = None if loader.never_ending else batch_indices(samplers[0])
        if batches is None:  # a sampler not reproduced in one draw: Avalanche's, index by index
            sampler = MultiDatasetSampler(loader.datasets, samplers, termination_dataset_idx=loader.termination_dataset,
                                          oversample_small_datasets=loader.oversample_small_datasets,
                                          never_ending=loader.never_ending)
            batches = (torch.as_tensor(indices, dtype=torch.long) for indices in sampler)
        for index in batches:
            yield [t.index_select(0, index) for t in (self.x, self.y, self.t)]


def batch_indices(batch_sampler: Any) -> tuple[Tensor, ...] | None:
    """The index batches a single dataset's `BatchSampler` yields, from one permutation drawn as torch's
    `RandomSampler` draws it (its generator seeded from the global RNG at the first batch), or in order for a
    `SequentialSampler`; None for any other sampler."""
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    if type(batch_sampler) is not BatchSampler:
        return None
    if len(batch_sampler) == 0:
        return ()  # Avalanche's sampler stops before drawing anything
    sampler, size = batch_sampler.sampler, batch_sampler.batch_size
    if type(sampler) is SequentialSampler:
        order = torch.arange(len(sampler.data_source))
    elif (type(sampler) is RandomSampler and not sampler.replacement and sampler.generator is None
          and sampler.num_samples == len(sampler.data_source)):
        generator = torch.Generator()
        generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        order = torch.randperm(len(sampler.data_source), generator=generator)
    else:
        return None
    batches = order.split(size)
    return batches[:-1] if batch_sampler.drop_last and len(order) % size else batches


def tensor_batches(strategy: Any, experiences: list[Any], datasets: list[Any]) -> TensorBatches | None:
    """The fast loader for the strategy's current experience, or None where Avalanche's own must stay: an
    experience that is not one of the stream's own (an online part), a dataset a plugin or the template adapts
    (replay swaps the loader itself, after this), several tasks in one dataset, or worker processes."""
    from avalanche.core import BaseSGDPlugin
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.templates import SupervisedTemplate

    loader = strategy.dataloader
    index = getattr(strategy.experience, "current_experience", None)
    if index is None or index >= len(datasets) or strategy.experience.dataset is not datasets[index]:
        return None
    if type(strategy).train_dataset_adaptation is not SupervisedTemplate.train_dataset_adaptation:
        return None
    hooks = ("before_train_dataset_adaptation", "after_train_dataset_adaptation")
    if any(getattr(type(p), hook, None) not in (None, getattr(BaseSGDPlugin, hook))
           for p in strategy.plugins if not isinstance(p, EvaluationPlugin) for hook in hooks):
        return None
    e = experiences[index]
    if (not hasattr(loader, "_create_samplers") or len(loader.datasets) != 1
            or len(loader.datasets[0]) != len(e.y_train) or loader.loader_kwargs.get("num_workers", 0)):
        return None
    return TensorBatches(loader, e.x_train, e.y_train, e.task_label)
