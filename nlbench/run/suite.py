"""Suite files (TOML): scenarios x methods x seeds, built once from the file and its overrides, then validated.

Entries in `scenarios` and `methods` are labels: a registered name, or any label whose [scenario.LABEL] /
[method.LABEL] table names the registered one with `name = "..."` (so one suite can hold two variants of the
same scenario or method).

Precedence of hyperparameters, lowest first: the method's defaults, [train] (shared knobs such as epochs, applied
to the methods that have them), [scenario.S.train] (the same, for one scenario's runs), [method.M],
[scenario.S.method.M]. Command-line overrides (`--set KEY=VALUE`,
`--seeds`, `--device`, ...) are edits of the document before validation: a validated suite is never changed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nlbench.core.errors import UnknownNameError, UsageError, closest
from nlbench.core.params import Interval, validate_params
from nlbench.core.registry import SCENARIOS, get_method, method_names
from nlbench.core.spaces import Space, check_space, parse_space
from nlbench.methods.training import TRAIN_KEYS, train_table
from nlbench.run.backends import BACKENDS
from nlbench.run.config import KERNEL_BACKENDS, RunConfig, device_problem, resolve_device, resolve_threads
from nlbench.run.overrides import Override, apply_overrides

SUITE_KEYS = ("name", "description", "seeds", "device", "kernel_backend", "threads", "data_dir", "experiment",
              "backend", "jobs", "scenarios", "methods", "train", "scenario", "method", "report", "tune", "tuned")
REPORTS = ("model-table", "reproduce")  # written by `nlbench run` after the runs (see nlbench.results.model_table)
MAX_SEED = 2**32 - 1  # numpy's and Avalanche's RNGs take 32-bit seeds
MAX_BYTES = 1 << 20  # a suite file is a page of TOML; anything near this is not one
MAX_DEPTH = 16  # tables and arrays nested deeper than this are not a suite (the deepest built-in one has 4)


@dataclass(frozen=True)
class Suite:
    name: str
    path: str  # the file (and overrides) the suite came from, for messages
    scenarios: tuple[str, ...]
    methods: tuple[str, ...]
    description: str = ""
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    kernel_backend: str = "auto"
    threads: int = 1  # per run; 0: this machine's cores shared among the jobs
    data_dir: str = ""
    experiment: str = ""
    backend: str = "auto"  # see nlbench.run.backends
    jobs: int = 0  # runs at once; 0: one per core (process), the cluster's choice (ray)
    train: dict[str, Any] = field(default_factory=dict)
    scenario_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    method_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: str = ""  # "" or one of REPORTS
    tune_spaces: dict[str, dict[str, Any]] = field(default_factory=dict)  # [tune.space.METHOD]: search spaces
    tuned: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # [tuned.SCENARIO.METHOD]: provenance

    def spaces(self, method_label: str) -> dict[str, Space]:
        """Where `nlbench tune` searches a method label's hyperparameters: the declared spaces, with the suite's
        [tune.space.LABEL] entries replacing them (an empty list there: not tuned)."""
        name, _ = self.method_parts(method_label)
        params = get_method(name).params()
        spaces = {key: p.space for key, p in params.items() if p.space is not None}
        where = f"{self.path} [tune.space.{method_label}]"
        for key, value in self.tune_spaces.get(method_label, {}).items():
            if key not in params:
                raise UsageError(f"{where}: a search space for '{key}', which method '{name}' does not have"
                                 f"{closest(key, params)}; its parameters: {', '.join(sorted(params))}.")
            if value == []:
                spaces.pop(key, None)
                continue
            rule = params[key].rule
            space = parse_space(value, f"{where} '{key}'", rule.kind is int if isinstance(rule, Interval) else None)
            check_space(space, rule, f"{where} '{key}'")
            spaces[key] = space
        return spaces

    def tuned_note(self, scenario: str, method: str) -> str:
        """How the (scenario, method) pair's hyperparameters were chosen, for the leaderboard ('' : defaults)."""
        info = self.tuned.get(scenario, {}).get(method)
        return str(info.get("summary", "tuned")) if info else ""

    @property
    def execution(self) -> tuple[str, int]:
        """(backend, jobs) as resolved on this machine."""
        from nlbench.run.backends import resolve_backend

        return resolve_backend(self.backend, self.jobs)

    @property
    def experiment_name(self) -> str:
        """One MLflow experiment per suite."""
        return self.experiment or f"nlbench-{self.name}"

    def run_configs(self, only: Sequence[str] = ()) -> list[RunConfig]:
        """Scenario-major, then method, then seed; `only` keeps the named scenarios and/or methods."""
        scenarios, methods = self._filter(only)
        settings = {"device": resolve_device(self.device), "kernel_backend": self.kernel_backend,
                    "threads": resolve_threads(self.threads, self.execution[1]), "data_dir": self.data_dir}
        configs = []
        for s_label in scenarios:
            s_name, s_options, pairs = self.scenario_parts(s_label)
            scenario = SCENARIOS.get(s_name)(where=f"{self.path} [scenario.{s_label}]", **s_options)
            for m_label in methods:
                m_name, method, hp = self._resolve_method(s_label, m_label, pairs.get(m_label, {}))
                if scenario.setting not in method.COMPATIBILITY:
                    raise UsageError(f"{self.path}: method '{m_label}' does not support the {scenario.setting} "
                                     f"setting of scenario '{s_label}' (it supports: "
                                     f"{', '.join(method.COMPATIBILITY)}); drop one of them from the suite.")
                configs += [RunConfig(self.name, s_label, s_name, dict(scenario.options), m_label, m_name, dict(hp),
                                      seed, **settings) for seed in self.seeds]
        return configs

    def _filter(self, only: Sequence[str]) -> tuple[list[str], list[str]]:
        for name in only:
            if name not in self.scenarios and name not in self.methods:
                known = [*self.scenarios, *self.methods]
                raise UsageError(f"--only: '{name}' is neither a scenario nor a method of suite "
                                 f"'{self.name}'{closest(name, known)}; scenarios: {', '.join(self.scenarios)}; "
                                 f"methods: {', '.join(self.methods)}.")
        keep_s = [s for s in self.scenarios if s in only] or list(self.scenarios)
        keep_m = [m for m in self.methods if m in only] or list(self.methods)
        return keep_s, keep_m

    def scenario_parts(self, label: str) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
        """(registered name, options, [scenario.LABEL.method.*] tables) of a scenario label."""
        table = dict(self.scenario_tables.get(label, {}))
        name = table.pop("name", label)
        pairs = table.pop("method", {})
        table.pop("train", None)
        return name, table, pairs

    def scenario_train(self, label: str) -> dict[str, Any]:
        """The [scenario.LABEL.train] table: shared training knobs for this scenario's runs."""
        return self.scenario_tables.get(label, {}).get("train", {})

    def method_parts(self, label: str) -> tuple[str, dict[str, Any]]:
        """(registered name, hyperparameters) of a method label's [method.LABEL] table."""
        table = dict(self.method_tables.get(label, {}))
        return table.pop("name", label), table

    def _resolve_method(self, s_label: str, m_label: str,
                        pair: Mapping[str, Any]) -> tuple[str, Any, dict[str, Any]]:
        """The registered name, the class and the hyperparameters of a method label. Each table is checked under
        its own name, so an error points at the table that holds the key."""
        name, table = self.method_parts(m_label)
        method = get_method(name)
        params, owner = method.params(), f"method '{name}'"
        method_where = f"{self.path} [method.{m_label}]"
        pair_where = f"{self.path} [scenario.{s_label}.method.{m_label}]"
        validate_params(table, params, owner, method_where)
        validate_params(pair, params, owner, pair_where)
        return name, method, method.resolve(train_table(self.train, params),
                                            train_table(self.scenario_train(s_label), params), table, pair,
                                            where=pair_where if pair else method_where)


def builtin_suites() -> dict[str, Path]:
    root = resources.files("nlbench.suites")
    return {p.name.removesuffix(".toml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def suite_source(name_or_path: str) -> tuple[str, str, str]:
    """(text, where, default name) of a built-in suite by name or a TOML file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        if not path.is_file():
            raise UsageError(f"{name_or_path}: suite file not found.")
        return read_suite_text(path), str(path), path.stem
    suites = builtin_suites()
    if name_or_path not in suites:
        raise UnknownNameError("suite", name_or_path, suites)
    return suites[name_or_path].read_text(encoding="utf-8"), f"{name_or_path}.toml", name_or_path


def suite_document(name_or_path: str, overrides: Sequence[Override] = ()) -> dict[str, Any]:
    """A (valid) suite's TOML document with `overrides` applied: what `nlbench tune` copies into a tuned suite."""
    doc = tomllib.loads(suite_source(name_or_path)[0])
    return apply_overrides(doc, overrides) if overrides else doc


def load_suite(name_or_path: str, overrides: Sequence[Override] = ()) -> Suite:
    """A built-in suite by name, or a TOML file by path, with `overrides` applied; fully validated."""
    text, where, name = suite_source(name_or_path)
    return parse_suite(text, where, name, overrides)


def read_suite_text(path: Path) -> str:
    """The file as text, refusing what cannot be a suite (too large, not UTF-8) with one line."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UsageError(f"{path}: {size} bytes; a suite file is TOML text of at most {MAX_BYTES} bytes.")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); a suite file "
                         "is TOML text.") from exc


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _expect(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise UsageError(f"{where}: {msg}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _str_list(doc: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key)
    _expect(isinstance(value, list) and value and all(isinstance(v, str) and v for v in value), where,
            f"'{key}' must be a non-empty list of names. Got {value!r} instead.")
    _expect(len(set(value)) == len(value), where, f"'{key}' lists a name twice: {value!r}.")
    return tuple(value)


def parse_suite(text: str, where: str, default_name: str = "suite", overrides: Sequence[Override] = ()) -> Suite:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: invalid TOML: {exc}") from exc
    except RecursionError as exc:  # tomllib recurses once per nested array or inline table
        raise UsageError(f"{where}: nested deeper than the TOML reader can follow; a suite nests at most "
                         f"{MAX_DEPTH} levels.") from exc
    _expect(_depth(doc) <= MAX_DEPTH, where, f"nested {_depth(doc)} levels deep; a suite nests at most {MAX_DEPTH}.")
    if overrides:
        doc = apply_overrides(doc, overrides)
        where = f"{where} (with {', '.join(o.text for o in overrides)})"
    suite = _suite_from(doc, where, default_name)
    suite.run_configs()  # resolves every hyperparameter: all errors surface before the first run
    return suite


def _suite_from(doc: Mapping[str, Any], where: str, default_name: str) -> Suite:
    for key in doc:
        _expect(key in SUITE_KEYS, where,
                f"unknown key '{key}'{closest(key, SUITE_KEYS)}; allowed: {', '.join(SUITE_KEYS)}.")
    for key in ("name", "description", "device", "kernel_backend", "experiment", "data_dir", "report", "backend"):
        _expect(isinstance(doc.get(key, ""), str), where, f"'{key}' must be a string. Got {doc.get(key)!r} instead.")
    for key in ("name", "experiment"):
        _expect(doc.get(key) != "", where, f"'{key}' must not be empty.")
    _expect(doc.get("report", "") in ("", *REPORTS), where,
            f"'report' must be one of {', '.join(REPORTS)}. Got {doc.get('report')!r} instead.")
    problem = device_problem(doc.get("device", "auto"))
    _expect(problem is None, where, f"'device' {problem}. Got {doc.get('device')!r} instead.")
    _expect(doc.get("kernel_backend", "auto") in KERNEL_BACKENDS, where, f"'kernel_backend' must be one of "
            f"{', '.join(KERNEL_BACKENDS)}. Got {doc.get('kernel_backend')!r} instead.")
    threads, jobs = doc.get("threads", 1), doc.get("jobs", 0)
    _expect(_count(threads), where, f"'threads' must be an int >= 0 (threads per run; 0: the machine's cores shared "
            f"among the jobs). Got {threads!r} instead.")
    _expect(_count(jobs), where, f"'jobs' must be an int >= 0 (runs at once; 0: one per core). Got {jobs!r} instead.")
    _expect(doc.get("backend", "auto") in BACKENDS, where, f"'backend' must be one of {', '.join(BACKENDS)}. "
            f"Got {doc.get('backend')!r} instead.")
    seeds = doc.get("seeds", [0])
    _expect(isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool)
                                                       and 0 <= s <= MAX_SEED for s in seeds), where,
            f"'seeds' must be a non-empty list of ints in [0, {MAX_SEED}]. Got {seeds!r} instead.")
    _expect(len(set(seeds)) == len(seeds), where, f"'seeds' lists a seed twice: {seeds!r}.")
    tables = {key: doc.get(key, {}) for key in ("train", "scenario", "method", "tuned")}
    for key, table in tables.items():
        nested = key != "train"
        _expect(isinstance(table, dict) and (not nested or all(isinstance(t, dict) for t in table.values())), where,
                f"[{key}] must be a table{' of tables' if nested else ''}.")
    suite = Suite(name=doc.get("name", default_name), path=where, scenarios=_str_list(doc, "scenarios", where),
                  methods=_str_list(doc, "methods", where), description=doc.get("description", ""),
                  seeds=tuple(seeds), device=doc.get("device", "auto"),
                  kernel_backend=doc.get("kernel_backend", "auto"), threads=threads,
                  backend=doc.get("backend", "auto"), jobs=jobs,
                  data_dir=doc.get("data_dir", ""), experiment=doc.get("experiment", ""), train=tables["train"],
                  scenario_tables=tables["scenario"], method_tables=tables["method"], report=doc.get("report", ""),
                  tune_spaces=_tune_spaces(doc.get("tune", {}), where), tuned=tables["tuned"])
    _validate_tables(suite, where)
    for label in suite.tune_spaces:
        _expect(label in suite.methods, where, f"[tune.space.{label}] is defined but '{label}' is not listed in "
                f"'methods'{closest(label, suite.methods)}.")
        suite.spaces(label)
    for s_label, methods in suite.tuned.items():
        _expect(s_label in suite.scenarios and all(isinstance(t, dict) and m in suite.methods
                                                    for m, t in methods.items()), where,
                f"[tuned.{s_label}] must name a listed scenario and hold a table per listed method.")
    return suite


def _tune_spaces(tune: Any, where: str) -> dict[str, dict[str, Any]]:
    """The [tune] table: only `space`, a table of per-method-label tables."""
    _expect(isinstance(tune, dict) and set(tune) <= {"space"}, where,
            f"[tune] holds only [tune.space.METHOD] tables. Got {tune!r} instead.")
    spaces = tune.get("space", {})
    _expect(isinstance(spaces, dict) and all(isinstance(t, dict) for t in spaces.values()), where,
            "[tune.space] must be a table of per-method tables such as [tune.space.ewc].")
    return spaces


def _validate_tables(suite: Suite, where: str) -> None:
    validate_params(suite.train, TRAIN_KEYS, "[train]", where)
    for label in suite.scenario_tables:
        _expect(label in suite.scenarios, where, f"[scenario.{label}] is defined but '{label}' is not listed "
                f"in 'scenarios'{closest(label, suite.scenarios)}.")
    for label in suite.method_tables:
        _expect(label in suite.methods, where, f"[method.{label}] is defined but '{label}' is not listed "
                f"in 'methods'{closest(label, suite.methods)}.")
    for label in suite.scenarios:
        name, _, pairs = suite.scenario_parts(label)
        _expect(isinstance(name, str), where, f"[scenario.{label}] name must be a string. Got {name!r} instead.")
        if name not in SCENARIOS.names():  # its options are checked when run_configs() builds it
            raise UsageError(f"{where}: 'scenarios': {UnknownNameError('scenario', name, SCENARIOS.names())}")
        _expect(isinstance(pairs, dict) and all(isinstance(t, dict) for t in pairs.values()), where,
                f"[scenario.{label}.method] must be a table of tables.")
        train = suite.scenario_train(label)
        _expect(isinstance(train, dict), where, f"[scenario.{label}.train] must be a table.")
        validate_params(train, TRAIN_KEYS, f"[scenario.{label}.train]", where)
        for m_label in pairs:
            _expect(m_label in suite.methods, where, f"[scenario.{label}.method.{m_label}] is defined but "
                    f"'{m_label}' is not listed in 'methods'{closest(m_label, suite.methods)}.")
    for label in suite.methods:
        name, _ = suite.method_parts(label)
        _expect(isinstance(name, str), where, f"[method.{label}] name must be a string. Got {name!r} instead.")
        if name not in method_names():
            raise UsageError(f"{where}: 'methods': {UnknownNameError('method', name, method_names())}")
