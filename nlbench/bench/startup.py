"""`nlbench bench startup`: how long each command takes to answer, each in a fresh process, against a bare
Python interpreter started the same way in the same run.

A command that only reads the registry (`list`) or prints help should not pay for torch, Avalanche or MLflow;
`list` reads the cached listing (nlbench.core.listing), so the cold row (an empty cache, as after editing a
source file) is timed too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from nlbench.bench.timing import interleaved_medians, machine_line

RUNNER = "import sys; from nlbench.cli import main; sys.exit(main(sys.argv[1:]))"


def _command(argv: list[str], env: dict[str, str]) -> Callable[[], None]:
    def run() -> None:
        subprocess.run([sys.executable, "-c", RUNNER, *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return run


def startup(repeats: int = 5) -> str:
    """Markdown table: median wall time of each command, and its ratio to `python -c pass`."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NLBENCH_CACHE": str(Path(tmp) / "cache")}
        env.pop("NLBENCH_PLUGINS", None)
        empty_store = f"sqlite:///{Path(tmp) / 'empty.db'}"
        cold_cache = str(Path(tmp) / "cold")

        list_cold = _command(["list"], {**env, "NLBENCH_CACHE": cold_cache})

        def cold_list() -> None:
            shutil.rmtree(cold_cache, ignore_errors=True)
            list_cold()

        rows = [
            ("python -c pass (reference)", lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)),
            ("nlbench --help", _command(["--help"], env)),
            ("nlbench run --help", _command(["run", "--help"], env)),
            ("nlbench list", _command(["list"], env)),
            ("nlbench list --params", _command(["list", "--params"], env)),
            ("nlbench list, empty cache (after a source edit)", cold_list),
            ("nlbench runs (empty SQLite store: imports MLflow)", _command(["runs", "--tracking-uri", empty_store],
                                                                          env)),
        ]
        times = interleaved_medians([fn for _, fn in rows], repeats, warmup=1)
    ref = times[0]
    lines = [
        f"Start-up: wall time of each command in a fresh process, median of {repeats} after 1 warm-up, timed in "
        "turn with a bare interpreter.",
        machine_line(),
        "Regenerate: `nlbench bench startup --out results/startup.md`",
        "",
        "| command | median s | ratio vs bare Python |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {t:.2f} | {t / ref:.1f}x |" for (name, _), t in zip(rows, times, strict=True)]
    return "\n".join(lines)
