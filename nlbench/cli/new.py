"""`nlbench new scenario NAME`: a working scenario module and its test, written from templates."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template

from nlbench.core.errors import UsageError

NAME_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def new_scenario(name: str, root: Path) -> list[Path]:
    """Write `scenarios/<name>.py` and `tests/test_scenario_<name>.py` under `root`; never overwrite."""
    from nlbench.core.registry import SCENARIOS

    if not NAME_RE.fullmatch(name):
        raise UsageError(f"scenario name must be kebab-case (lower-case letters, digits and single dashes, "
                         f"e.g. my-stream). Got {name!r} instead.")
    if name in SCENARIOS.names():
        raise UsageError(f"scenario '{name}' already exists; choose another name.")
    if not (root / "scenarios").is_dir() or not (root / "tests").is_dir():
        raise UsageError(f"{root.resolve()} has no scenarios/ and tests/ folders: run this at the root of an "
                         "nlbench checkout (or pass --dir). A scenario in another package is exposed through the "
                         "'nlbench.scenarios' entry point instead, see docs/adding_a_scenario.md.")
    ident = name.replace("-", "_")
    fields = {"name": name, "ident": ident, "cls": "".join(p.capitalize() for p in name.split("-")),
              "title": " ".join(p.capitalize() for p in name.split("-"))}
    targets = {root / "scenarios" / f"{ident}.py": "scenario.py.tmpl",
               root / "tests" / f"test_scenario_{ident}.py": "test_scenario.py.tmpl"}
    for path in targets:
        if path.exists():
            raise UsageError(f"{path} already exists; not overwriting it.")
    templates = resources.files("nlbench") / "templates"
    for path, template in targets.items():
        path.write_text(Template((templates / template).read_text(encoding="utf-8")).substitute(fields),
                        encoding="utf-8")
    return list(targets)
