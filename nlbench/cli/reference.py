"""docs/reference.md, generated from the declarations: every option, hyperparameter, optimizer knob, metric and
record key, each from the one place it is declared (`nlbench list --markdown`; a test keeps the file current)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Param


def toml_value(value: Any) -> str:
    """A value as it is written in a suite file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _table(params: Mapping[str, Param]) -> list[str]:
    rows = ["| key | default | allowed | `nlbench tune` searches | what it does |", "| --- | --- | --- | --- | --- |"]
    return rows + [f"| `{key}` | `{toml_value(p.default)}` | {p.rule} | {_space(p)} | {p.doc} |"
                   for key, p in params.items()]


def _space(p: Param) -> str:
    return "" if p.space is None else f"`{p.space}`"


def _same(a: Param | None, b: Param) -> bool:
    """The same declaration (a default may differ: a method's tuned setting)."""
    return a is not None and a.rule is b.rule and a.doc == b.doc


def _shared_tables() -> dict[str, Mapping[str, Param]]:
    from nlbench.methods.nested import CMS_PARAMS, NESTED_PARAMS, TITANS_PARAMS
    from nlbench.methods.sklearn import SKLEARN_PARAMS
    from nlbench.methods.training import BACKBONE_PARAMS, TRAIN_PARAMS

    return {"training (`[train]`)": TRAIN_PARAMS, "MLP backbone": BACKBONE_PARAMS, "Nested Learning models":
            NESTED_PARAMS, "Continuum Memory System": CMS_PARAMS, "self-modifying Titans": TITANS_PARAMS,
            "sklearn baselines": SKLEARN_PARAMS}


def _methods() -> list[str]:
    from nlbench.core.registry import get_method, method_names

    shared = _shared_tables()
    lines = ["## Methods", "", "Shared hyperparameters are declared once per family; each method lists the tables it "
             "takes, its own hyperparameters, and the defaults it changes.", ""]
    for title, params in shared.items():
        lines += [f"### Shared: {title}", "", *_table(params), ""]
    for name in method_names():
        cls = get_method(name)
        params = cls.params()
        takes = [title for title, table in shared.items() if all(_same(params.get(k), p) for k, p in table.items())]
        own = {k: p for k, p in params.items() if not any(_same(table.get(k), p) for table in shared.values())}
        changed = {k: v for k, v in cls.DEFAULTS.items() if k not in own}
        lines += [f"### `{name}` ({cls.FAMILY})", "", cls.description(), "",
                  f"Takes: {', '.join(takes) or 'no shared table'}."]
        if changed:
            lines.append("Changed defaults: " + ", ".join(f"`{k} = {toml_value(v)}`" for k, v in changed.items()) + ".")
        spaces = cls.spaces()
        lines.append("`nlbench tune` searches: " + (", ".join(f"`{k}` in `{s}`" for k, s in spaces.items())
                                                     or "nothing (no search space)") + ".")
        lines += ["", *(_table(own) if own else []), ""]
    return lines


def _scenarios() -> list[str]:
    from nlbench.core.registry import SCENARIOS

    lines = ["## Scenarios", ""]
    for name, cls in SCENARIOS.items():
        lines += [f"### `{name}`", "", f"{cls.description()} Setting: {cls.SETTING}.", "", *_table(cls.params()), ""]
    return lines


def _optimizers() -> list[str]:
    from nlbench.optim.catalog import OPTIMIZERS

    lines = ["## Optimizers", "", "`optimizer = NAME` on any gradient-trained method; its knobs go in "
             "`optimizer_options`. An optimizer with a strategy is also a method of the same name.", ""]
    for name, spec in OPTIMIZERS.items():
        strategy = "" if spec.strategy is None else " Strategy defaults: " + ", ".join(
            f"`{k} = {toml_value(v)}`" for k, v in spec.strategy.items()) + "."
        lines += [f"### `{name}`", "", f"{spec.summary}.{strategy}", ""]
        lines += [*_table(spec.params), ""] if spec.params else []
    return lines


def _metrics_and_record() -> list[str]:
    from nlbench.results.schema import RECORD
    from nlbench.run.metrics import METRICS

    lines = ["## Final metrics", "", "| metric | better | definition |", "| --- | --- | --- |"]
    lines += [f"| `final/{m.name}` | {'higher' if m.higher_is_better else 'lower'} | {m.definition} |"
              for m in METRICS]
    lines += ["", "## The run record (MLflow)", "", "| kind | key | what it holds |", "| --- | --- | --- |"]
    lines += [f"| {kind} | `{key}` | {text} |" for kind, key, text in RECORD]
    return lines


def reference_markdown() -> str:
    from nlbench.run.backends import BACKENDS
    from nlbench.run.config import SETTINGS

    head = ["# nlbench reference", "",
            "Generated by `nlbench list --markdown > docs/reference.md` from the declarations in the code; a test "
            "fails when this file is out of date.", "",
            f"Run settings (suite keys, logged as `settings.*`): {', '.join(f'`{s}`' for s in SETTINGS)}. "
            f"Execution (suite keys, logged on the suite's parent run; they change where runs execute, never what "
            f"they compute): `backend` ({', '.join(BACKENDS)}), `jobs`.", ""]
    return "\n".join([*head, *_scenarios(), *_methods(), *_optimizers(), *_metrics_and_record()]) + "\n"
