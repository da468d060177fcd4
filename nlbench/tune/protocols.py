"""Tuning protocols: the data a trial trains and is scored on, never the test data a leaderboard reports.

Both protocols build the scenario's stream with the tuning seed under `nlbench.data.splits.holdout`: every test
set is replaced by validation rows carved from training data, and on data that a scenario re-splits per seed
(digits, heart) only rows that no reported seed tests on are used (Lee et al. 2024; Cha & Cho 2024):

- `first-experiences`: the first k experiences of that stream (k = 1 by default; the GEM / A-GEM protocol uses 3).
  With k = 1 a regulariser's strength has nothing to protect, so only plasticity knobs are identifiable.
- `tuning-stream`: the whole stream, built with a seed the report never uses (other permutations, subsample and
  train/validation split).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nlbench.core.errors import UsageError
from nlbench.data.scenario import Scenario, ScenarioData
from nlbench.data.splits import Holdout, holdout
from nlbench.tune.choices import PROTOCOLS


def first_experiences(data: ScenarioData, k: int, scenario: Scenario) -> ScenarioData:
    """The stream cut after its first k experiences (the classifier keeps the full stream's classes)."""
    k = min(k, len(data.experiences))
    experiences = data.experiences[:k]
    info = replace(data.info, n_experiences=k, classes_per_experience=data.info.classes_per_experience[:k],
                   chance_acc=scenario.chance_acc(experiences, data.info.n_classes))
    views = None if data.eval_views is None else [view[:k] for view in data.eval_views[: k + 1]]
    raw = None if data.raw is None else data.raw[:k]
    return ScenarioData(experiences, eval_views=views, raw=raw, source=data.source, info=info)


def tuning_data(scenario: Scenario, seed: int, spec: dict[str, Any]) -> ScenarioData:
    """The stream a trial with tuning `spec` (protocol, experiences, val_share, reported_seeds) sees."""
    if spec["protocol"] not in PROTOCOLS:
        raise UsageError(f"unknown tuning protocol {spec['protocol']!r}; allowed: {', '.join(PROTOCOLS)}.")
    rule = Holdout(tuple(spec["reported_seeds"]), spec["val_share"])
    with holdout(rule) as uses:
        data = scenario.build(seed)
    if not uses:
        raise UsageError(f"scenario '{scenario.NAME}' does not split its data through nlbench.data.splits "
                         "(split_rows / validation_rows), so its test sets cannot be held out: it cannot be tuned.")
    if spec["protocol"] == "first-experiences":
        data = first_experiences(data, spec["experiences"], scenario)
    return data
