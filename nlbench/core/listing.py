"""What `nlbench list` shows, built by importing every registered module and cached until a source changes.

Why: importing the strategies pulls in torch and Avalanche (several seconds) to print a table of names. The
listing is kept in the user cache (`$NLBENCH_CACHE`, else `$XDG_CACHE_HOME/nlbench`, else ~/.cache/nlbench)
under a key made of nlbench's version and the path, size and modification time of every source and suite file
of nlbench and of the `scenarios`, `strategies` and `baselines` packages, plus the registries' entry points:
editing or adding a file rebuilds it on the next call. With $NLBENCH_PLUGINS set, the listing is always built
afresh (plugin modules can live anywhere). An unreadable or unwritable cache only costs the rebuild.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

REGISTRIES = (("Scenarios", "scenarios", "nlbench.scenarios"), ("Strategies", "strategies", "nlbench.strategies"),
              ("Baselines", "baselines", "nlbench.baselines"))
CACHE_VERSION = 1


def _source_stamp() -> str | None:
    """Hash of everything the listing depends on; None when it cannot be known without importing."""
    from nlbench import __version__
    from nlbench.core.registry import PLUGINS_ENV

    if os.environ.get(PLUGINS_ENV):
        return None
    stamp: list[Any] = [CACHE_VERSION, __version__, sys.version]
    for package in ("nlbench", *(p for _, p, _ in REGISTRIES)):
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).rglob("*")):
                if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
                    st = path.stat()
                    stamp.append((str(path), st.st_size, st.st_mtime_ns))
    for _, _, group in REGISTRIES:
        stamp.extend(sorted(f"{ep.name}={ep.value}" for ep in entry_points(group=group)))
    return hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]


def _cache_file(stamp: str) -> Path:
    from nlbench.data.sources.files import cache_dir

    return cache_dir("listing") / f"list-{stamp}.json"


def build_listing() -> dict[str, Any]:
    """Every registered name with its one-line description, tag and resolved parameters; the built-in suites."""
    from nlbench.cli.reference import toml_value
    from nlbench.core.errors import NlbenchError
    from nlbench.core.registry import BASELINES, SCENARIOS, STRATEGIES
    from nlbench.run.suite import builtin_suites, load_suite

    listing: dict[str, Any] = {}
    for (title, _, _), registry in zip(REGISTRIES, (SCENARIOS, STRATEGIES, BASELINES), strict=True):
        entries = []
        for name in registry.names():
            try:
                cls = registry.get(name)
            except NlbenchError as exc:
                entries.append({"name": name, "broken": str(exc)})
                continue
            tag = cls.FAMILY if hasattr(cls, "FAMILY") else cls.SETTING
            values = cls.resolve() if hasattr(cls, "resolve") else cls.defaults()  # resolved, as runs log them
            params = cls.params()
            entries.append({"name": name, "description": cls.description(), "tag": tag, "params": [
                [f"{k} = {toml_value(v)}", params[k].doc, None if params[k].space is None else str(params[k].space)]
                for k, v in values.items()]})
        listing[title] = entries
    listing["Suites"] = {name: load_suite(name).description for name in sorted(builtin_suites())}
    return listing


def listing() -> dict[str, Any]:
    """The cached listing when the sources are unchanged, else a fresh one (stored for next time). A process
    whose registries are already loaded lists them directly: it may hold classes registered at run time."""
    from nlbench.core.registry import BASELINES, SCENARIOS, STRATEGIES

    if any(r.discovered for r in (SCENARIOS, STRATEGIES, BASELINES)):
        return build_listing()
    stamp = _source_stamp()
    if stamp is None:
        return build_listing()
    path = _cache_file(stamp)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    fresh = build_listing()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("list-*.json"):  # one listing per checkout state is enough
            old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(fresh))
        tmp.replace(path)
    except OSError:
        pass
    return fresh
