"""Command-line edits of a suite document: `--set train.lr=0.05`, `--set method.ewc.ewc_lambda=10`.

A KEY is a dotted path into the suite's TOML (`seeds`, `train.lr`, `scenario.LABEL.OPTION`,
`method.LABEL.PARAM`, `scenario.LABEL.method.LABEL.PARAM`); a VALUE is a TOML value (`0.05`, `[0, 1]`,
`{period = 4}`, `"text"`), and a bare word is a string. The edited document is validated like the file.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nlbench.core.errors import UsageError


@dataclass(frozen=True)
class Override:
    path: tuple[str, ...]
    value: Any
    text: str  # as the user wrote it, for messages: "--set train.lr=0.05"


def parse_value(text: str) -> Any:
    """A TOML value; a bare word (`cpu`, `reference`) is taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(pair: str, flag: str = "--set") -> Override:
    """`KEY=VALUE` as an override, with a usage error naming a malformed one."""
    key, sep, value = pair.partition("=")
    parts = tuple(part.strip() for part in key.split("."))
    if not sep or not all(parts):
        raise UsageError(f"{flag} must look like KEY=VALUE with a dotted KEY (e.g. {flag} train.lr=0.05). "
                         f"Got {pair!r} instead.")
    return Override(parts, parse_value(value.strip()), f"{flag} {pair}")


def setting(key: str, value: Any, text: str) -> Override:
    """A flag or environment variable that sets one top-level key (`--device cuda` is `device = "cuda"`)."""
    return Override((key,), value, text)


def apply_overrides(doc: Mapping[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """A copy of `doc` with each override applied in order; tables on the way are created as needed."""
    out = copy.deepcopy(dict(doc))
    for override in overrides:
        table = out
        for depth, part in enumerate(override.path[:-1]):
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                where = ".".join(override.path[:depth + 1])
                raise UsageError(f"{override.text}: '{where}' is not a table (it holds {nxt!r}).")
            table = nxt
        table[override.path[-1]] = override.value
    return out
