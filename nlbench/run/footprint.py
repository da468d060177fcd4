"""A method's own memory: the bytes of the arrays it keeps, by part (parameters, optimizer state, method state).

Why: the process's peak RSS (`mem/peak_mb`) is dominated by ~1 GB of imports and says nothing about a method.
Here the objects a learner names (`Learner.state_parts`) are walked for torch tensors and numpy arrays; each
buffer is counted once (the first part that reaches it), and a buffer inside the stream's own data (a replay
buffer's or a k-NN's view of the training set) is not the method's. An Avalanche dataset met on the way (a
replay buffer) counts as its samples: length x the bytes of one sample, since it stores indices into the data.
Python scalars and lists (a few KB of bookkeeping) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

MAX_DEPTH = 64  # nested modules sit ~3 levels per block deep; cycles are cut by the visited set
SKIPPED_MODULES = ("builtins", "typing", "abc", "functools", "logging", "threading", "collections", "inspect",
                   "types", "re", "enum")


def _buffer(obj: Any) -> tuple[int, int] | None:
    """(address, bytes) of a tensor's storage or an array's data."""
    if isinstance(obj, torch.Tensor):
        if obj.is_meta or obj.layout != torch.strided:
            return None
        storage = obj.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        return base.__array_interface__["data"][0], base.nbytes
    return None


def _is_avalanche_dataset(obj: Any) -> bool:
    return (type(obj).__module__.startswith("avalanche.benchmarks.utils") and hasattr(type(obj), "__len__")
            and hasattr(type(obj), "__getitem__"))


def _sample_bytes(dataset: Any) -> int:
    if len(dataset) == 0:
        return 0
    sample = dataset[0]
    parts = sample if isinstance(sample, (tuple, list)) else (sample,)
    return sum(int(p.numel() * p.element_size()) for p in parts if isinstance(p, torch.Tensor))


class Footprint:
    """Walks objects and sums the buffers it has not seen yet, outside the excluded (data) ranges."""

    def __init__(self, exclude: Iterable[Any] = ()):
        self.seen: set[int] = set()  # buffer addresses already counted
        self.visited: set[int] = set()  # object ids already walked
        self.excluded = sorted(b for b in map(_buffer, exclude) if b is not None and b[1] > 0)

    def _in_data(self, address: int) -> bool:
        return any(start <= address < start + size for start, size in self.excluded)

    def measure(self, root: Any) -> int:
        """Bytes newly reached from `root`."""
        total, stack = 0, [(root, 0)]
        while stack:
            obj, depth = stack.pop()
            if id(obj) in self.visited or depth > MAX_DEPTH or obj is None:
                continue
            self.visited.add(id(obj))
            buffer = _buffer(obj)
            if buffer is not None:
                address, size = buffer
                if address not in self.seen and not self._in_data(address):
                    self.seen.add(address)
                    total += size
                if isinstance(obj, torch.Tensor) and obj.grad is not None:
                    stack.append((obj.grad, depth + 1))
                continue
            if _is_avalanche_dataset(obj):
                total += len(obj) * _sample_bytes(obj)
                continue
            if isinstance(obj, (str, bytes, int, float, bool, type)) or callable(obj) and not hasattr(obj, "__dict__"):
                continue
            if isinstance(obj, Mapping):
                stack.extend((v, depth + 1) for pair in obj.items() for v in pair)
            elif isinstance(obj, (list, tuple, set, frozenset)):
                stack.extend((v, depth + 1) for v in obj)
            elif hasattr(obj, "__dict__") and not type(obj).__module__.startswith(SKIPPED_MODULES):
                stack.extend((v, depth + 1) for v in vars(obj).values())
        return total


def footprint_mb(parts: Mapping[str, Any], data: Iterable[Any]) -> dict[str, float]:
    """MiB per part, in the order given (a buffer shared by two parts counts in the first), and the total."""
    walker = Footprint(data)
    sizes = {name: walker.measure(root) / 2**20 for name, root in parts.items()}
    return {**sizes, "total": sum(sizes.values())}
