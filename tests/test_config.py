"""Suite files: resolution of hyperparameters and one-line errors that name the file, key and what is allowed."""

import textwrap

import pytest

from nlbench.core.errors import UsageError
from nlbench.run.config import RunConfig
from nlbench.run.overrides import parse_assignment, setting
from nlbench.run.suite import load_suite, parse_suite

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
                                       "class_order": [], "domain_incremental": False, "shuffle_classes": False}


def test_run_config_round_trips_through_a_dict():
    c = parse_suite(GOOD, "t.toml").run_configs()[0]
    assert RunConfig.from_dict(c.to_dict()) == c


def test_seeds_and_only_filters():
    suite = parse_suite(GOOD, "t.toml", overrides=[setting("seeds", [5], "--seeds 5")])
    configs = suite.run_configs(only=["til", "naive"])
    assert [(c.scenario, c.method, c.seed) for c in configs] == [("til", "naive", 5)]
    with pytest.raises(UsageError, match="'ewx' is neither a scenario nor a method.*did you mean 'ewc'"):
        suite.run_configs(only=["ewx"])


def test_set_overrides_any_key_before_validation():
    edits = [parse_assignment("train.lr=0.05"), parse_assignment("method.strong-ewc.ewc_lambda=9"),
             parse_assignment("scenario.til.class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]"),
             parse_assignment("kernel_backend=reference"), parse_assignment("threads=1")]
    suite = parse_suite(GOOD, "t.toml", overrides=edits)
    by = {(c.scenario, c.method): c for c in suite.run_configs()}
    assert by[("split-digits", "naive")].hparams["lr"] == 0.05
    assert by[("split-digits", "strong-ewc")].hparams["ewc_lambda"] == 9
    assert by[("til", "ewc")].scenario_options["class_order"][0] == 9
    assert {(c.kernel_backend, c.threads) for c in suite.run_configs()} == {("reference", 1)}
    with pytest.raises(UsageError, match=r"^t.toml \(with --set train.lr=-1\): The 'lr' parameter of \[train\]"):
        parse_suite(GOOD, "t.toml", overrides=[parse_assignment("train.lr=-1")])
    with pytest.raises(UsageError, match="--set seeds.x=1: 'seeds' is not a table"):
        parse_suite(GOOD, "t.toml", overrides=[parse_assignment("seeds.x=1")])
    with pytest.raises(UsageError, match="--set must look like KEY=VALUE"):
        parse_assignment("train.lr")


def test_every_setting_is_in_the_run_config_and_nothing_else_changes_it():
    suite = parse_suite('data_dir = "/data"\n' + GOOD, "t.toml")
    config = suite.run_configs()[0]
    assert config.settings == {"device": "cpu", "kernel_backend": "auto", "threads": config.threads,
                               "data_dir": "/data"}
    assert config.threads >= 1  # 0 is resolved to the process's thread count, so the log says what ran
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(AttributeError):
        suite.seeds = (9,)  # a validated suite is never edited


def test_an_error_names_the_table_that_holds_the_key():
    text = 'scenarios = ["split-digits"]\nmethods = ["naive"]\n[method.naive]\nlr_x = 1.0\n'
    with pytest.raises(UsageError, match=r"^my.toml \[method.naive\]: unknown parameter 'lr_x'"):
        parse_suite(text, "my.toml")


def test_a_method_that_does_not_support_a_setting_is_a_usage_error_before_any_run(monkeypatch):
    from nlbench.core.registry import get_method

    monkeypatch.setattr(get_method("lwf"), "COMPATIBILITY", ("class-incremental",))
    text = 'scenarios = ["permuted-digits"]\nmethods = ["naive", "lwf"]\n'
    with pytest.raises(UsageError, match="method 'lwf' does not support the domain-incremental setting of "
                                         "scenario 'permuted-digits'"):
        parse_suite(text, "my.toml")


def test_builtin_suites_load():
    assert load_suite("smoke").name == "smoke"
    default = load_suite("default")
    assert default.seeds == (0, 1, 2)
    assert len(default.run_configs()) == 2 * 11 * 3
    nested = load_suite("nested")
    assert set(nested.methods) == {"cms", "cms-flat", "hope", "hope-flat", "hope-linear", "titans", "naive", "ewc",
                                   "replay"}
    assert len(nested.run_configs()) == 2 * 9 * 3
    linear = [c for c in nested.run_configs() if c.method == "hope-linear"][0]
    assert linear.hparams["memory_hidden"] == 0 and linear.hparams["self_modify"] is False


@pytest.mark.parametrize("edit, message", [
    ('seeds = [0, 1]', None),
    ('seeds = []', "'seeds' must be a non-empty list of ints in [0, 4294967295]. Got [] instead."),
    ('seeds = [-1]', "'seeds' must be a non-empty list"),
    ('seeds = [4294967296]', "'seeds' must be a non-empty list of ints in [0, 4294967295]"),
    ('seeds = [0, 0]', "'seeds' lists a seed twice: [0, 0]."),
    ('kernel_backend = "cuda"', "'kernel_backend' must be one of auto, reference, numba, triton. Got 'cuda'"),
    ('threads = -1', "'threads' must be an int >= 0"),
    ('name = ""', "'name' must not be empty."),
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
     "my.toml [method.ewc]: The 'ewc_lambda' parameter of method 'ewc' must be a float "
     "in the range [0, inf). Got -1.0 instead."),
    ("[method.ewc]\newc_lamda = 1.0", "unknown parameter 'ewc_lamda' for method 'ewc' (did you mean 'ewc_lambda'?)"),
    ("[train]\nepochs = 0", "The 'epochs' parameter of [train] must be an int in the range [1, inf). Got 0"),
    ("[train]\noptimizer = 'lbfgs'", "must be one of 'sgd', 'adam', 'context-steered', 'deep-momentum', "),
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
