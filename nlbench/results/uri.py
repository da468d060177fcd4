"""The tracking URI, resolved and checked before anything runs: a bad one is a usage error, and checking it
creates nothing (a fresh store is created by the first write, after every input was accepted).

Checked: the scheme is one MLflow stores runs in; a local store's folder can be created and written; an existing
SQLite file is a SQLite database; a tracking server answers within a few seconds.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from nlbench.core.errors import UsageError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
ENV = "MLFLOW_TRACKING_URI"
SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql")
SERVER_TIMEOUT_S = 5.0
_SQLITE_MAGIC = b"SQLite format 3\x00"


def resolve_tracking_uri(cli_uri: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the embedded SQLite store in the working directory."""
    return cli_uri or os.environ.get(ENV) or DEFAULT_TRACKING_URI


def _source(cli_uri: str | None) -> str:
    return "--tracking-uri" if cli_uri is not None else f"${ENV}" if os.environ.get(ENV) else "the default store"


def writable_folder(folder: Path) -> bool:
    """The folder, or the nearest existing ancestor it would be created in, takes a new file (probed with a
    temporary file that is removed at once: permissions alone say yes to root on a read-only mount)."""
    for candidate in (folder.absolute(), *folder.absolute().parents):
        if candidate.exists():
            if not candidate.is_dir():
                return False
            try:
                fd, probe = tempfile.mkstemp(dir=candidate, prefix=".nlbench-probe-")
            except OSError:
                return False
            os.close(fd)
            os.unlink(probe)
            return True
    return False


def _check_local(path: Path, sqlite: bool, what: str) -> None:
    if path.exists() and sqlite:
        if not path.is_file():
            raise UsageError(f"{what}: {path} is not a file.")
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise UsageError(f"{what}: {path} is not a SQLite database; point it at a new file or an MLflow store.")
    elif path.exists() and not path.is_dir():
        raise UsageError(f"{what}: {path} is not a folder; a file store is a folder.")
    folder = path.parent if sqlite else path
    if not writable_folder(folder):
        raise UsageError(f"{what}: {folder} cannot be created or written.")


def _check_server(uri: str, what: str) -> None:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT_S) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"{what}: no MLflow tracking server answers at {uri} within {SERVER_TIMEOUT_S:g} s "
                         f"({reason}); start it, or pass another --tracking-uri.") from exc
    if not ok:
        raise UsageError(f"{what}: {uri}/health did not answer OK; is it an MLflow tracking server?")


def local_store(uri: str) -> tuple[Path, bool] | None:
    """(path, is SQLite) of a store on this machine's disk; None for a server or database URI."""
    scheme, sep, rest = uri.partition("://")
    if not sep:  # a plain path: MLflow's file store
        return Path(uri).expanduser(), False
    if scheme == "sqlite" and rest.startswith("/") and rest != "/":
        return Path(rest[1:]), True  # sqlite:///relative.db, sqlite:////absolute.db
    if scheme == "file":
        return Path(rest or "/"), False
    return None


def check_tracking_uri(cli_uri: str | None = None, server: bool = True) -> str:
    """The resolved URI, after checking it can hold runs; raises UsageError naming where it came from."""
    if cli_uri is not None and not cli_uri.strip():
        raise UsageError("--tracking-uri must not be empty; omit it for the default store sqlite:///mlflow.db.")
    uri = resolve_tracking_uri(cli_uri)
    what = f"{_source(cli_uri)} {uri}"
    scheme, sep, _ = uri.partition("://")
    if sep and scheme not in SCHEMES and not scheme.startswith(("postgresql+", "mysql+", "mssql+")):
        raise UsageError(f"{what}: unknown scheme '{scheme}'; a tracking URI is one of "
                         f"{', '.join(s + '://' for s in SCHEMES)} or a folder.")
    local = local_store(uri)
    if scheme == "sqlite" and local is None:
        raise UsageError(f"{what}: a SQLite URI is sqlite:///RELATIVE.db or sqlite:////ABSOLUTE.db.")
    if local is not None:
        _check_local(*local, what)
        if local[1] and not writable_folder(Path.cwd()):
            raise UsageError(f"{what}: run artifacts go to ./mlruns, and {Path.cwd()} cannot be written.")
    elif scheme in ("http", "https") and server:
        _check_server(uri, what)
    return uri


def store_exists(uri: str) -> bool:
    """False for a local store that was never created (reading it would create it)."""
    local = local_store(uri)
    return local is None or local[0].exists()
