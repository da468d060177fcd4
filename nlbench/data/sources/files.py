"""Where external data comes from: a user directory, the user cache, or a download, each checked by SHA-256.

Every resolution step is logged on the `nlbench.data` logger, so a reader of a run's output knows which
copy of the data it used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

from nlbench.core.errors import UsageError

log = logging.getLogger("nlbench.data")

DATA_ENV = "NLBENCH_DATA"
CACHE_ENV = "NLBENCH_CACHE"


class DataUnavailableError(UsageError):
    """No source holds the data, or a copy is corrupt: the message says how to provide it."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    actual = sha256(path)
    if actual != expected:
        raise DataUnavailableError(f"{path}: SHA-256 {actual} does not match the expected {expected}; the file "
                                   "is not the original (modified copies circulate). Replace it with the original.")


def user_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """`--data-dir`, else $NLBENCH_DATA, else None."""
    value = data_dir or os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def cache_dir(name: str) -> Path:
    """The user cache for one dataset: $NLBENCH_CACHE, else $XDG_CACHE_HOME/nlbench, else ~/.cache/nlbench."""
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nlbench"
    return Path(root).expanduser() / name


def find_files(folder: Path, files: dict[str, str]) -> dict[str, Path] | None:
    """`folder` (or its subfolder named like the dataset) holding every file, each with its SHA-256; None if
    a file is absent. A present file with the wrong hash is an error, never skipped silently."""
    for candidate in (folder, *(p for p in folder.iterdir() if p.is_dir())) if folder.is_dir() else ():
        paths = {name: candidate / name for name in files}
        if all(p.is_file() for p in paths.values()):
            for name, path in paths.items():
                check_sha256(path, files[name])
            return paths
    return None


def download(url: str, dest: Path, expected_sha256: str, timeout: float = 30.0) -> Path:
    """Fetch `url` into `dest` atomically, keeping it only if its SHA-256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https URLs from our tables
        payload = response.read()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected_sha256:
        raise DataUnavailableError(f"download {url}: SHA-256 {actual} does not match the expected "
                                   f"{expected_sha256}; refusing to use it.")
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        tmp.write(payload)
    os.replace(tmp.name, dest)
    return dest
