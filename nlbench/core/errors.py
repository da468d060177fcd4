"""Exceptions that the CLI turns into one-line messages and exit codes."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NlbenchError(Exception):
    """Base class for errors a user can fix; the CLI prints them without a traceback."""


class UsageError(NlbenchError):
    """Bad input: an unknown name, a malformed suite file, an invalid parameter (exit code 2)."""


class UnknownNameError(UsageError, KeyError):
    """A name that is not registered; the message lists the known names and the closest match."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        super().__init__(f"Unknown {kind} '{name}'.{hint} Known {kind}s: {', '.join(known) or '(none)'}.")
        self.kind, self.name, self.known = kind, name, known

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class TrackingError(NlbenchError):
    """The tracking store failed (unreachable, read-only, corrupt): a tracking failure, never a training one."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run is recorded as FAILED."""


def closest(name: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    match = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""
