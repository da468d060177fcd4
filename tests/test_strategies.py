"""Every Nested Learning strategy trains through the CLI into MLflow and learns what it was just shown."""

import re
import textwrap

import mlflow
import pytest

from nlbench.cli import ExitCode, main
from nlbench.core.errors import UsageError
from nlbench.core.registry import STRATEGIES, get_method
from nlbench.run.suite import load_suite

NESTED = ["cms", "hope", "titans"]


def test_nested_strategies_are_registered_with_their_knobs():
    assert set(NESTED) <= set(STRATEGIES.names())
    for name in NESTED:
        assert get_method(name).FAMILY == "nested"
    assert {"frequencies", "cms_variant", "level_lrs", "partial_chunk"} <= set(get_method("cms").defaults())
    hope = get_method("hope").defaults()
    assert {"self_mod_depth", "chunk_size", "memory_chunk_size", "memory_decay", "memory_lr", "grad_mode",
            "frequencies"} <= set(hope)
    assert "frequencies" not in get_method("titans").defaults()  # titans = HOPE without CMS
    assert "hidden_sizes" not in hope  # the MLP's width knob does not apply


@pytest.mark.slow
def test_every_strategy_learns_on_both_digits_streams_through_the_cli(tracking_uri, tmp_path, capsys):
    suite = tmp_path / "nl.toml"
    suite.write_text(textwrap.dedent("""
        name = "nl-test"
        seeds = [0]
        scenarios = ["split-digits", "permuted-digits"]
        methods = ["cms", "hope", "titans"]
        [train]
        epochs = 3
        [scenario.permuted-digits]
        n_experiences = 2
        [method.hope]
        self_mod_depth = 1
    """))
    code = main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["nlbench-nl-test"], filter_string="tags.kind = 'run'")
    assert len(runs) == 6 and (runs["status"] == "FINISHED").all()
    client = mlflow.MlflowClient(tracking_uri)
    for _, row in runs.iterrows():
        assert row["tags.family"] == "nested"
        n = int(row["params.scenario.n_experiences"])
        diag = [{m.step: m.value for m in client.get_metric_history(row["run_id"], f"acc/exp{i}")}[i]
                for i in range(n)]  # R[i, i]: accuracy on experience i right after learning it
        where = (row["tags.method"], row["tags.scenario"], diag)
        # chance is 0.1 on both streams; every experience is learned well above it (HOPE's slow base level, which
        # holds its Titans memories, learns permuted-digits to about 0.55 in 3 epochs)
        assert min(diag) > 0.3 and sum(diag) / n > 0.5, where
    hope = runs[runs["tags.method"] == "hope"].iloc[0]
    assert hope["params.frequencies"] == '[1, 4, "experience"]' and hope["params.grad_mode"] == "meta"
    per = int(hope["params.schedule.steps_per_experience"])  # the slowest period, resolved for this stream
    assert hope["params.schedule.resolved_frequencies"] == f"[1, 4, {per}]"


@pytest.mark.parametrize(("table", "message"), [
    ('frequencies = [1, 4, 6]\ncms_variant = "nested"', "not a multiple of 4"),
    ("level_lrs = [0.1]", "one learning rate per CMS level (3)"),
    ('cms_variant = "stacked"', "'cms_variant' parameter of method 'cms' must be one of"),
    ("memory_decay = 0.7", "'memory_decay' parameter"),
    ("memory_hidden = 0", "a linear memory (memory_hidden = 0) has static k, v, eta, alpha projections: it needs "
                          "self_modify = false"),
    ('memory_loss = "dot"', "memory_loss = 'dot' needs a linear memory (memory_hidden = 0)"),
    ('memory_loss = "l1"', "'memory_loss' parameter of method 'hope' must be one of"),
])
def test_bad_nested_knobs_are_one_line_usage_errors(tmp_path, table, message):
    method = "hope" if "memory" in table else "cms"
    path = tmp_path / "bad.toml"
    path.write_text(f'scenarios = ["split-digits"]\nmethods = ["{method}"]\n[method.{method}]\n{table}\n')
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        load_suite(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
