"""The fully resolved config of one run: what runs (scenario, method, hyperparameters, seed) and how (device,
kernel backend, threads, data directory). Nothing outside it changes what a run computes, and all of it is
logged, so two runs with equal configs are the same experiment.

It is frozen and JSON-serializable, so a run can be sent to another process or machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from nlbench.kernels.dispatch import BACKENDS as KERNEL_BACKENDS

DEVICES = "'auto', 'cpu' or 'cuda[:N]'"
SETTINGS = ("device", "kernel_backend", "threads", "data_dir")  # how a run runs, logged as settings.*


@dataclass(frozen=True)
class RunConfig:
    """One (scenario, method, seed) unit."""

    suite: str
    scenario: str  # the suite's label
    scenario_name: str  # the registered scenario
    scenario_options: dict[str, Any]
    method: str  # the suite's label
    method_name: str  # the registered method
    hparams: dict[str, Any]
    seed: int
    device: str = "cpu"
    kernel_backend: str = "auto"  # the delta-rule kernel: auto, reference, numba, triton
    threads: int = 0  # torch (and numba) threads of the run; 0 leaves the process's setting (numbers depend on it)
    data_dir: str = ""  # where external data is looked for first ("": the user cache, packages, download)
    tuning: dict[str, Any] = field(default_factory=dict)  # a tuning trial's protocol (nlbench.tune); {}: a run

    @property
    def run_name(self) -> str:
        return f"{self.scenario}/{self.method}/seed{self.seed}"

    @property
    def settings(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in SETTINGS}

    @property
    def key(self) -> str:
        """What makes two runs the same experiment: everything that changes what the run computes (scenario and
        options, method and hyperparameters, seed, device, kernel backend, thread count, data folder, nlbench
        version), a tuning trial's protocol, and the labels a table shows it under; not the suite's name or how it
        is executed."""
        import nlbench

        identity = {k: v for k, v in self.to_dict().items() if k != "suite" and (k != "tuning" or v)}
        text = json.dumps({**identity, "nlbench": nlbench.__version__}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return cls(**d)


_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_problem(device: Any) -> str | None:
    """Why `device` cannot run here (None when it can): a misspelling, or a GPU this machine does not have."""
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        return f"must be {DEVICES}"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return "needs a CUDA GPU and this machine has none; use 'cpu' or 'auto'"
        index, count = int(device.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            return f"names GPU {index} and this machine has {count} (cuda:0..cuda:{count - 1})"
    return None


def resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container or `taskset` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(threads: int, workers: int = 1) -> int:
    """0 means a fair share of this machine's cores for each of `workers` concurrent runs, written down so the
    run config says what ran."""
    return threads or max(1, available_cores() // max(1, workers))


__all__ = ["DEVICES", "KERNEL_BACKENDS", "SETTINGS", "RunConfig", "available_cores", "device_problem",
           "resolve_device", "resolve_threads"]
