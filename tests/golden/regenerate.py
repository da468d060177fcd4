"""Rewrite matrices.json from the current code, for a change that is meant to move published numbers.

    python tests/golden/regenerate.py [--data-dir ../shared/data/heart]

Keeps the cases (scenario, options, method, overrides, seed) and replaces what each produced. Regenerate the
published tables in results/ in the same change.
"""

import argparse
import json
from pathlib import Path

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run

FILE = Path(__file__).with_name("matrices.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "heart"))
    args = parser.parse_args()
    cases = json.loads(FILE.read_text())
    for case in cases:
        options = SCENARIOS.get(case["scenario"])(**case["options"]).options
        config = RunConfig("golden", case["scenario"], case["scenario"], options, case["method"], case["method"],
                           get_method(case["method"]).resolve(case["overrides"]), case["seed"],
                           data_dir=args.data_dir if case["scenario"].startswith("heart") else "")
        result = execute_run(config)
        assert result.ok, result.traceback
        case.update(R=result.R, b=result.b, extra=result.extra, n_params=result.n_params, summary=result.summary,
                    learned_params=result.learned_params)
        print(config.run_name, result.summary["acc"], flush=True)
    FILE.write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
