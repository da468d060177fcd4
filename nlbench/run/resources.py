"""Peak memory of one run inside a long-lived process.

On Linux the kernel's high-water mark of resident memory (VmHWM) can be reset by writing "5" to
/proc/self/clear_refs, so each run gets its own peak. Elsewhere the process-lifetime peak
(ru_maxrss) is the best available and is marked as such.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class PeakMemory:
    """Context manager: `peak_mb` = peak resident memory of the process while inside (MiB);
    `per_run` says whether the peak was reset at entry; `increase_mb` = that peak minus the resident memory
    at entry (NaN where /proc is missing); `cuda_peak_mb` when CUDA is in use."""

    def __enter__(self) -> PeakMemory:
        self.per_run = False
        self.start_mb = _status_mb("VmRSS")
        try:
            _CLEAR_REFS.write_text("5")
            self.per_run = _status_mb("VmHWM") is not None
        except OSError:
            pass
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_mb("VmHWM") if self.per_run else None
        if peak is None:
            scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
        self.peak_mb = float(peak)
        self.increase_mb = max(self.peak_mb - self.start_mb, 0.0) if self.per_run and self.start_mb else float("nan")
        self.cuda_peak_mb = (torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None


def machine_description() -> str:
    """CPU model, core count and GPU model, for benchmark tables (no host names or paths)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}"


def _start_ticks(pid: int) -> str:
    """When the process started (clock ticks since boot, /proc/PID/stat field 22), so a reused pid is not
    mistaken for the process that wrote a run; "" where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def process_identity() -> str:
    """host:pid:start of this process, tagged on the runs it writes, so a later `nlbench run` can tell whether
    a RUNNING run still has a writer."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def process_alive(identity: str) -> bool | None:
    """Whether the process `identity` names still runs; None when it ran on another machine (cannot tell)."""
    import socket

    parts = identity.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or parts[0] != socket.gethostname():
        return None
    pid, ticks = int(parts[1]), parts[2]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return _start_ticks(pid) == ticks
