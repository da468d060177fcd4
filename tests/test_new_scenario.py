"""Adding a scenario: the generated skeleton works as written, and a scenario from another installed package
(entry point `nlbench.scenarios`) runs in a suite."""

import importlib.util
import subprocess
import sys
import textwrap

import mlflow
import pytest

from nlbench.cli import ExitCode, main


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_new_scenario_writes_a_working_module_and_a_passing_test(tmp_path, capsys):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "tests").mkdir()
    assert main(["new", "scenario", "gen-wine-drift", "--dir", str(tmp_path)]) == ExitCode.OK
    module, test = tmp_path / "scenarios" / "gen_wine_drift.py", tmp_path / "tests" / "test_scenario_gen_wine_drift.py"
    assert module.is_file() and test.is_file()
    _load(module, "generated_gen_wine_drift")  # registers 'gen-wine-drift'
    tests = _load(test, "generated_test_gen_wine_drift")
    tests.test_gen_wine_drift_is_a_pure_function_of_the_seed()
    tests.test_gen_wine_drift_trains_with_naive_fine_tuning()
    assert main(["new", "scenario", "gen-wine-drift", "--dir", str(tmp_path)]) == ExitCode.USAGE_ERROR  # exists
    assert main(["new", "scenario", "Not_Kebab", "--dir", str(tmp_path)]) == ExitCode.USAGE_ERROR
    assert main(["new", "scenario", "elsewhere", "--dir", str(tmp_path / "nope")]) == ExitCode.USAGE_ERROR
    assert "has no scenarios/ and tests/ folders" in capsys.readouterr().err


@pytest.mark.slow
def test_a_scenario_from_an_installed_package_runs_in_a_suite(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "toy_streams").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "nlbench-toy-streams"
        version = "0.1.0"

        [project.entry-points."nlbench.scenarios"]
        toy-blobs = "toy_streams.blobs:ToyBlobs"

        [tool.setuptools]
        packages = ["toy_streams"]
    """))
    (pkg / "toy_streams" / "__init__.py").write_text("")
    (pkg / "toy_streams" / "blobs.py").write_text(textwrap.dedent('''
        """Two Gaussian blobs per experience, the blobs moving from one experience to the next."""

        import numpy as np
        import torch

        from nlbench.core.params import Interval, Param
        from nlbench.data.scenario import Experience, Scenario
        from nlbench.data.splits import derived_seed


        class ToyBlobs(Scenario):
            """Two moving Gaussian blobs; domain-incremental."""

            NAME = "toy-blobs"
            SETTING = "domain-incremental"
            PARAMS = {"n_experiences": Param(2, Interval(int, 1, 10), "moves of the blobs")}

            def make_experiences(self, seed):
                out = []
                for i in range(self.options["n_experiences"]):
                    rng = np.random.default_rng(derived_seed(seed, i))
                    y = rng.integers(0, 2, 200)
                    x = (rng.normal(size=(200, 2)) + 3 * y[:, None] + i).astype(np.float32)
                    t = torch.from_numpy
                    out.append(Experience(t(x[:150]), t(y[:150]), t(x[150:]), t(y[150:]), 0, (0, 1)))
                return out
    '''))
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--no-index", "--target", str(site), str(pkg)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    suite = tmp_path / "toy.toml"
    suite.write_text('name = "toy"\nseeds = [0]\nscenarios = ["toy-blobs"]\nmethods = ["naive", "replay"]\n'
                     '[train]\nepochs = 2\n')
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from nlbench.cli import main; "
            "sys.exit(main(['run', sys.argv[2], '--tracking-uri', sys.argv[3], '--no-progress']))")
    run = subprocess.run([sys.executable, "-c", code, str(site), str(suite), uri], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["nlbench-toy"], filter_string="tags.kind = 'run'")
    assert set(runs["tags.scenario"]) == {"toy-blobs"} and (runs["status"] == "FINISHED").all() and len(runs) == 2
    assert (runs["metrics.final/acc"] > 0.6).all()  # the blobs are separable
