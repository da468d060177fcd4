"""Suite files: resolution of hyperparameters and one-line errors that name the file, key and what is allowed."""

import textwrap

import pytest

from nlbench.core.errors import UsageError
from nlbench.run.config import RunConfig, load_suite, parse_suite

GOOD = textwrap.dedent("""
    name = "t"
    seeds = [0, 1]
    scenarios = ["split-digits", "til"]
    methods = ["naive", "ewc", "strong-ewc"]

    [train]
    epochs = 2

    [scenario.til]
    name = "split-digits"
    task_incremental = true

    [method.ewc]
    ewc_lambda = 5.0

    [method.strong-ewc]
    name = "ewc"
    ewc_lambda = 500.0

    [scenario.til.method.ewc]
    ewc_lambda = 7.0
""")


def test_precedence_defaults_train_method_pair():
    configs = parse_suite(GOOD, "t.toml").run_configs()
    assert len(configs) == 2 * 3 * 2
    by = {(c.scenario, c.method, c.seed): c for c in configs}
    naive = by[("split-digits", "naive", 0)]
    assert naive.hparams["epochs"] == 2 and naive.hparams["batch_size"] == 32
    assert by[("split-digits", "ewc", 0)].hparams["ewc_lambda"] == 5.0
    assert by[("til", "ewc", 1)].hparams["ewc_lambda"] == 7.0
    strong = by[("til", "strong-ewc", 0)]
    assert strong.method_name == "ewc" and strong.hparams["ewc_lambda"] == 500.0
    assert strong.scenario_name == "split-digits"
    assert strong.scenario_options == {"n_experiences": 5, "task_incremental": True, "test_size": 0.2,
                                       "class_order": []}


def test_run_config_round_trips_through_a_dict():
    c = parse_suite(GOOD, "t.toml").run_configs()[0]
    assert RunConfig.from_dict(c.to_dict()) == c


def test_seeds_and_only_filters():
    suite = parse_suite(GOOD, "t.toml")
    configs = suite.run_configs(seeds=[5], only=["til", "naive"])
    assert [(c.scenario, c.method, c.seed) for c in configs] == [("til", "naive", 5)]
    with pytest.raises(UsageError, match="'ewx' is neither a scenario nor a method.*did you mean 'ewc'"):
        suite.run_configs(only=["ewx"])


def test_builtin_suites_load():
    assert load_suite("smoke").name == "smoke"
    default = load_suite("default")
    assert default.seeds == [0, 1, 2]
    assert len(default.run_configs()) == 2 * 11 * 3
    nested = load_suite("nested")
    assert set(nested.methods) == {"cms", "hope", "hope-linear", "titans", "naive", "ewc", "replay"}
    assert len(nested.run_configs()) == 2 * 7 * 3
    linear = [c for c in nested.run_configs() if c.method == "hope-linear"][0]
    assert linear.hparams["memory_hidden"] == 0 and linear.hparams["self_modify"] is False


@pytest.mark.parametrize("edit, message", [
    ('seeds = [0, 1]', None),
    ('seeds = []', "'seeds' must be a non-empty list of non-negative ints. Got [] instead."),
    ('seeds = [-1]', "'seeds' must be a non-empty list"),
    ('seedz = [0]', "unknown key 'seedz' (did you mean 'seeds'?)"),
    ('methods = ["naive", "ewk"]', "Unknown method 'ewk'. Did you mean 'ewc'?"),
    ('scenarios = ["split-digit"]', "Unknown scenario 'split-digit'. Did you mean 'split-digits'?"),
    ('scenarios = "split-digits"', "'scenarios' must be a non-empty list of names"),
    ('methods = ["naive", "naive"]', "'methods' lists a name twice"),
    ('device = "tpu"', "'device' must be 'auto', 'cpu' or 'cuda[:N]'. Got 'tpu' instead."),
])
def test_top_level_errors(edit, message):
    base = {"seeds": "seeds = [0]", "scenarios": 'scenarios = ["split-digits"]', "methods": 'methods = ["naive"]'}
    key = edit.split("=")[0].strip()
    base[key if key in base else "extra"] = edit
    text = "\n".join(base.values())
    if message is None:
        parse_suite(text, "my.toml")
        return
    with pytest.raises(UsageError) as info:
        parse_suite(text, "my.toml")
    msg = str(info.value)
    assert msg.startswith("my.toml")
    assert message in msg
    assert "\n" not in msg


@pytest.mark.parametrize("table, message", [
    ("[method.ewc]\newc_lambda = -1.0",
     "my.toml [scenario.split-digits.method.ewc]: The 'ewc_lambda' parameter of method 'ewc' must be a float "
     "in the range [0, inf). Got -1.0 instead."),
    ("[method.ewc]\newc_lamda = 1.0", "unknown parameter 'ewc_lamda' for method 'ewc' (did you mean 'ewc_lambda'?)"),
    ("[train]\nepochs = 0", "The 'epochs' parameter of [train] must be an int in the range [1, inf). Got 0"),
    ("[train]\noptimizer = 'lbfgs'", "must be one of 'sgd', 'adam', 'delta-momentum', "),
    ("[scenario.split-digits]\nn_experiences = 3",
     "'n_experiences' of scenario 'split-digits' must divide the 10 classes"),
    ("[scenario.split-digits]\ntask_incremental = 1", "must be a bool (true or false). Got 1 instead."),
    ("[scenario.permuted-digits]\nn_experiences = 3", "[scenario.permuted-digits] is defined but "
     "'permuted-digits' is not listed in 'scenarios'"),
    ("[method.gem]\nmemory_strength = 1.0", "[method.gem] is defined but 'gem' is not listed in 'methods'"),
])
def test_table_errors(table, message):
    text = f'scenarios = ["split-digits"]\nmethods = ["naive", "ewc"]\n{table}\n'
    with pytest.raises(UsageError) as info:
        parse_suite(text, "my.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("my.toml")


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match=r"^bad.toml: invalid TOML"):
        parse_suite("scenarios = [", "bad.toml")
    with pytest.raises(UsageError, match="suite file not found"):
        load_suite(str(tmp_path / "nope.toml"))
    with pytest.raises(UsageError, match="Unknown suite 'smok'. Did you mean 'smoke'"):
        load_suite("smok")
