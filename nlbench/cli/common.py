"""What the command modules share: the parser class, common flags, exit codes, and run-setting resolution."""

from __future__ import annotations

import argparse
import logging
import sys
from enum import IntEnum
from pathlib import Path
from typing import Any

from nlbench.core.errors import UsageError


class ExitCode(IntEnum):
    OK = 0
    RUNS_FAILED = 1
    USAGE_ERROR = 2
    INTERNAL_ERROR = 3
    TRACKING_ERROR = 4
    INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 as well; keep one message format
        raise UsageError(f"{self.prog}: {message}")


def add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow store or server. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here")


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="Folder with external datasets (heart: the UCI processed.*.data files; MNIST: the IDX "
                        "files). Default: $NLBENCH_DATA, then the user cache, then installed packages")


def add_filters(p: argparse.ArgumentParser, what: str) -> None:
    """The run filters `leaderboard`, `model-table` and `runs` share."""
    p.add_argument("--scenario", help=f"Only {what} on this scenario")
    p.add_argument("--method", help=f"Only {what} of this method")
    p.add_argument("--family", choices=["nested", "avalanche", "sklearn"], help=f"Only {what} of this method family")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help=f"Only {what} with this tag (repeatable)")


def data_dir(args: argparse.Namespace) -> str:
    """--data-dir, else $NLBENCH_DATA, else "" (the user cache, packages, download)."""
    from nlbench.data.sources.files import user_data_dir

    return str(user_data_dir(args.data_dir) or "")


class _StderrHandler(logging.StreamHandler):
    """Writes to the current sys.stderr, even after it was replaced (pytest's capture, a redirect)."""

    stream = property(lambda self: sys.stderr, lambda self, value: None)


def show_data_resolution() -> None:
    """Print each step of finding external data (`nlbench.data` logger) to stderr."""
    logger = logging.getLogger("nlbench.data")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("nlbench: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def store_uri(args: argparse.Namespace, must_exist: bool = True) -> str:
    """The checked tracking URI of a command that reads runs; reading a store that was never created would
    create it, so that is refused (`must_exist`) before MLflow opens it."""
    from nlbench.results.uri import check_tracking_uri, store_exists

    uri = check_tracking_uri(args.tracking_uri)
    if must_exist and not store_exists(uri):
        raise UsageError(f"no MLflow store at {uri} yet: run a suite first (nlbench run SUITE), or pass "
                         "--tracking-uri.")
    return uri


def out_dir(path: str, flag: str = "--out") -> Path:
    """A folder the command may write into (created if missing), checked before anything is read or written."""
    from nlbench.results.uri import writable_folder

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {path} is a file; give a folder.")
    if not writable_folder(folder):
        raise UsageError(f"{flag} {path} cannot be created or written.")
    return folder


def tracking_client(args: argparse.Namespace) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(store_uri(args))
