"""Published numbers stay put: the same seeds give the same accuracy matrices as the code that made results/.

`tests/golden/matrices.json` holds R, b, the binary-score matrices, the parameter count, the grid search's choice
and the final metrics of 43 small runs: every registered method on 2-experience split-digits, plus the CMS
variants (nested, carry, per-level rates), HOPE on the delta-rule kernel and stacked with stopgrad,
task-incremental, online, optimizer reset, Adam, online EWC, cumulative sklearn, grid searches, and the heart
scenarios. They were written by the code that produced the published tables, before the package was reorganised
(issue 14, at commit 6f94a6c). A change that is meant to move
numbers regenerates them (`python tests/golden/regenerate.py`) and the published tables with them.

Issue 15 changed the CMS defaults (the slowest level spans an experience, inverse-period rates, a base level at
0.1 lr). The CMS and HOPE cases pin the schedule they were made with (`OLD_SCHEDULE`), so they still hold that
path bit-identical through the time-scale machinery; the schedule each run resolved is checked, not compared.
"""

import json
import math
from pathlib import Path

import pytest

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run

GOLDEN = json.loads((Path(__file__).parent / "golden" / "matrices.json").read_text())
OLD_SCHEDULE = {"frequencies": [1, 4, 16], "level_lr_rule": "equal", "base_lr_scale": 1.0}


def case_id(case: dict) -> str:
    extra = ",".join(f"{k}={v}" for k, v in {**case["options"], **case["overrides"]}.items())
    return f"{case['scenario']}/{case['method']}/seed{case['seed']}[{extra}]"


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("case", GOLDEN, ids=case_id)
def test_same_seed_same_numbers_as_the_published_code(case):
    data_dir = ""
    if case["scenario"].startswith("heart"):
        from conftest import SHARED, require_shared

        require_shared()
        data_dir = str(SHARED / "data" / "heart")
    method = get_method(case["method"])
    scheduled = "level_lr_rule" in method.params()
    hp = method.resolve({**OLD_SCHEDULE, **case["overrides"]} if scheduled else case["overrides"])
    options = SCENARIOS.get(case["scenario"])(**case["options"]).options
    result = execute_run(RunConfig("golden", case["scenario"], case["scenario"], options, case["method"],
                                   case["method"], hp, case["seed"], "cpu", data_dir=data_dir))
    assert result.ok, result.traceback
    expected = {k: case[k] for k in ("R", "b", "extra", "n_params", "learned_params")}
    schedule = result.learned_params.pop("schedule", None)
    assert (schedule is not None) == scheduled
    if scheduled:
        assert schedule["resolved_frequencies"] == hp["frequencies"] and schedule["resolved_base_period"] == 1
    assert {k: getattr(result, k) for k in expected} == expected
    assert set(result.summary) == set(case["summary"])
    assert all(same(result.summary[k], v) for k, v in case["summary"].items()), result.summary
