"""Suite files (TOML) and the fully resolved, serializable config of one run.

A suite is scenarios x methods x seeds. Entries in `scenarios` and `methods` are labels: a registered
name, or any label whose [scenario.LABEL] / [method.LABEL] table names the registered one with
`name = "..."` (so one suite can hold two variants of the same scenario or method).

Precedence of hyperparameters, lowest first: the method's defaults, [train] (shared knobs such as
epochs, applied to the methods that have them), [method.M], [scenario.S.method.M].
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nlbench.core.errors import UnknownNameError, UsageError, closest
from nlbench.core.params import validate_params
from nlbench.core.registry import SCENARIOS, get_method, method_names
from nlbench.methods.base import TRAIN_CONSTRAINTS

SUITE_KEYS = ("name", "description", "seeds", "device", "experiment", "scenarios", "methods",
              "train", "scenario", "method", "report")
REPORTS = ("model-table",)  # written after the suite by `nlbench run` (see nlbench.results.model_table)


@dataclass(frozen=True)
class RunConfig:
    """Everything one (scenario, method, seed) unit needs; JSON-serializable so runs can be fanned out."""

    suite: str
    scenario: str
    scenario_name: str
    scenario_options: dict[str, Any]
    method: str
    method_name: str
    hparams: dict[str, Any]
    seed: int
    device: str = "cpu"

    @property
    def run_name(self) -> str:
        return f"{self.scenario}/{self.method}/seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return cls(**d)


@dataclass
class Suite:
    name: str
    path: str
    description: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    experiment: str = ""
    scenarios: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    scenario_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    method_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: str = ""  # "" or one of REPORTS, written by `nlbench run` after the runs

    @property
    def experiment_name(self) -> str:
        """One MLflow experiment per suite."""
        return self.experiment or f"nlbench-{self.name}"

    def run_configs(self, seeds: list[int] | None = None, only: list[str] | None = None) -> list[RunConfig]:
        """Scenario-major, then method, then seed; `only` keeps the named scenarios and/or methods."""
        scenarios, methods = self._filter(only or [])
        device = resolve_device(self.device)
        configs = []
        for s_label in scenarios:
            s_name, _, pair_tables = self._scenario_parts(s_label)
            s_opts = self._resolved_scenario_options(s_label)
            for m_label in methods:
                m_name, m_over = self._method_parts(m_label)
                hp = get_method(m_name).resolve(
                    self._train_for(m_name), m_over, pair_tables.get(m_label, {}),
                    where=f"{self.path} [scenario.{s_label}.method.{m_label}]",
                )
                for seed in seeds if seeds is not None else self.seeds:
                    configs.append(RunConfig(self.name, s_label, s_name, s_opts, m_label, m_name, hp, seed, device))
        return configs

    def _filter(self, only: list[str]) -> tuple[list[str], list[str]]:
        for name in only:
            if name not in self.scenarios and name not in self.methods:
                raise UsageError(f"--only: '{name}' is neither a scenario nor a method of suite "
                                 f"'{self.name}'{closest(name, self.scenarios + self.methods)}; scenarios: "
                                 f"{', '.join(self.scenarios)}; methods: {', '.join(self.methods)}.")
        keep_s = [s for s in self.scenarios if s in only] or self.scenarios
        keep_m = [m for m in self.methods if m in only] or self.methods
        return keep_s, keep_m

    def _scenario_parts(self, label: str) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
        table = dict(self.scenario_tables.get(label, {}))
        name = table.pop("name", label)
        pairs = table.pop("method", {})
        return name, table, pairs

    def _resolved_scenario_options(self, label: str) -> dict[str, Any]:
        """Every option of the scenario, defaults included, so the run config is explicit."""
        name, options, _ = self._scenario_parts(label)
        return SCENARIOS.get(name)(where=f"{self.path} [scenario.{label}]", **options).options

    def _method_parts(self, label: str) -> tuple[str, dict[str, Any]]:
        table = dict(self.method_tables.get(label, {}))
        return table.pop("name", label), table

    def _train_for(self, method_name: str) -> dict[str, Any]:
        accepted = get_method(method_name).all_constraints()
        return {k: v for k, v in self.train.items() if k in accepted}


DEVICES = "'auto', 'cpu' or 'cuda[:N]'"


def is_valid_device(device: str) -> bool:
    return device in ("auto", "cpu") or device.startswith("cuda")


def resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def builtin_suites() -> dict[str, Path]:
    root = resources.files("nlbench.suites")
    return {p.name.removesuffix(".toml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a TOML file by path; fully validated before anything runs."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        if not path.is_file():
            raise UsageError(f"{name_or_path}: suite file not found.")
        return parse_suite(path.read_text(encoding="utf-8"), str(path), default_name=path.stem)
    suites = builtin_suites()
    if name_or_path not in suites:
        raise UnknownNameError("suite", name_or_path, suites)
    return parse_suite(suites[name_or_path].read_text(encoding="utf-8"), f"{name_or_path}.toml",
                       default_name=name_or_path)


def _expect(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise UsageError(f"{where}: {msg}")


def _str_list(doc: dict[str, Any], key: str, where: str) -> list[str]:
    value = doc.get(key)
    _expect(isinstance(value, list) and value and all(isinstance(v, str) for v in value), where,
            f"'{key}' must be a non-empty list of names. Got {value!r} instead.")
    _expect(len(set(value)) == len(value), where, f"'{key}' lists a name twice: {value!r}.")
    return value


def parse_suite(text: str, where: str, default_name: str = "suite") -> Suite:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: invalid TOML: {exc}") from exc
    for key in doc:
        _expect(key in SUITE_KEYS, where,
                f"unknown key '{key}'{closest(key, SUITE_KEYS)}; allowed: {', '.join(SUITE_KEYS)}.")
    for key in ("name", "description", "device", "experiment"):
        _expect(isinstance(doc.get(key, ""), str), where, f"'{key}' must be a string. Got {doc.get(key)!r} instead.")
    _expect(doc.get("report", "") in ("", *REPORTS), where,
            f"'report' must be one of {', '.join(REPORTS)}. Got {doc.get('report')!r} instead.")
    device = doc.get("device", "auto")
    _expect(is_valid_device(device), where, f"'device' must be {DEVICES}. Got {device!r} instead.")
    seeds = doc.get("seeds", [0])
    _expect(isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool)
                                                       and s >= 0 for s in seeds),
            where, f"'seeds' must be a non-empty list of non-negative ints. Got {seeds!r} instead.")
    scenarios = _str_list(doc, "scenarios", where)
    methods = _str_list(doc, "methods", where)
    suite = Suite(
        name=doc.get("name", default_name), path=where, description=doc.get("description", ""),
        seeds=seeds, device=device, experiment=doc.get("experiment", ""), scenarios=scenarios,
        methods=methods, train=doc.get("train", {}), scenario_tables=doc.get("scenario", {}),
        method_tables=doc.get("method", {}), report=doc.get("report", ""),
    )
    _validate_tables(suite, where)
    suite.run_configs()  # resolves every hyperparameter: all errors surface before the first run
    return suite


def _validate_tables(suite: Suite, where: str) -> None:
    for key, tables in (("scenario", suite.scenario_tables), ("method", suite.method_tables),
                        ("train", {"": suite.train})):
        _expect(isinstance(tables, dict) and all(isinstance(t, dict) for t in tables.values()), where,
                f"[{key}] must be a table of tables.")
    validate_params(suite.train, TRAIN_CONSTRAINTS, "[train]", where)
    for label in suite.scenario_tables:
        _expect(label in suite.scenarios, where, f"[scenario.{label}] is defined but '{label}' is not listed "
                f"in 'scenarios'{closest(label, suite.scenarios)}.")
    for label in suite.method_tables:
        _expect(label in suite.methods, where, f"[method.{label}] is defined but '{label}' is not listed "
                f"in 'methods'{closest(label, suite.methods)}.")
    for label in suite.scenarios:
        name, options, pairs = suite._scenario_parts(label)
        try:
            scenario_cls = SCENARIOS.get(name)
        except UnknownNameError as exc:
            raise UsageError(f"{where}: 'scenarios': {exc}") from exc
        scenario_cls(where=f"{where} [scenario.{label}]", **options)
        _expect(isinstance(pairs, dict), where, f"[scenario.{label}.method] must be a table of tables.")
        for m_label in pairs:
            _expect(m_label in suite.methods, where, f"[scenario.{label}.method.{m_label}] is defined but "
                    f"'{m_label}' is not listed in 'methods'{closest(m_label, suite.methods)}.")
    for label in suite.methods:
        name, _ = suite._method_parts(label)
        if name not in method_names():
            raise UsageError(f"{where}: 'methods': {UnknownNameError('method', name, method_names())}")
