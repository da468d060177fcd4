"""Finished results the tracking store could not take, kept on local disk until it can.

One folder per (tracking URI, experiment) under `.nlbench/spool/` in the working directory ($NLBENCH_SPOOL
moves it), one file per result, written atomically and removed once the result is recorded. The next
`nlbench run` of the suite uploads them before anything runs, so hours of training are never lost to a tracking
server that went away. The files are pickles written by nlbench itself; do not put files from elsewhere there.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path

from nlbench.run.execute import RunResult

ENV = "NLBENCH_SPOOL"
DEFAULT_ROOT = Path(".nlbench") / "spool"


class Spool:
    def __init__(self, tracking_uri: str, experiment: str, root: str | Path | None = None):
        root = Path(root or os.environ.get(ENV) or DEFAULT_ROOT)
        digest = hashlib.sha256(f"{tracking_uri}\n{experiment}".encode()).hexdigest()[:12]
        self.folder = root / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', experiment)}-{digest}"

    def save(self, result: RunResult) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{result.ended_ms:015d}-{result.config.key}.pkl"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(result))
        os.replace(tmp, path)
        return path

    def pending(self) -> list[Path]:
        """Saved results, oldest first."""
        return sorted(self.folder.glob("*.pkl")) if self.folder.is_dir() else []

    @staticmethod
    def load(path: Path) -> RunResult:
        return pickle.loads(path.read_bytes())

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()

    def __len__(self) -> int:
        return len(self.pending())
