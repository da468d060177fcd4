"""Bad input never reaches the store: every case is exit 2, exactly one `ERROR:` line naming what is wrong and what is
allowed, no traceback, and the store untouched (a fresh store stays uncreated, a used one keeps its bytes).

Each case is (id, argv, files to write, environment, a fragment the one line must hold). `{store}` in argv is a
fresh SQLite store in the test's folder; `{runs}` is a store that already holds runs.
"""

import hashlib
import os
import shutil

import pytest
import torch
from conftest import fabricated_result

from nlbench.cli import ExitCode, main

OK = 'scenarios = ["split-digits"]\nmethods = ["naive"]\n'
RUN = ["--tracking-uri", "{store}", "--no-progress"]


def suite(text):
    return {"s.toml": text}


SUITE_FILES = [
    ("binary", suite(None), "not UTF-8 text"),
    ("nested-5000", suite("a = " + "[" * 5000 + "]" * 5000 + "\n" + OK), "nested deeper than the TOML reader"),
    ("nested-20", suite(OK + "train = {a = " + "[" * 19 + "1" + "]" * 19 + "}\n"), "a suite nests at most 16"),
    ("too-large", suite(OK + "#" * (1 << 20) + "\n"), "a suite file is TOML text of at most"),
    ("toml-syntax", suite("scenarios = [\n"), "invalid TOML: "),
    ("unknown-key", suite(OK + "seedz = [0]\n"), "unknown key 'seedz' (did you mean 'seeds'?)"),
    ("seeds-empty", suite(OK + "seeds = []\n"), "'seeds' must be a non-empty list of ints in [0, 4294967295]"),
    ("seeds-negative", suite(OK + "seeds = [-1]\n"), "Got [-1] instead"),
    ("seeds-2**32", suite(OK + "seeds = [4294967296]\n"), "Got [4294967296] instead"),
    ("seeds-twice", suite(OK + "seeds = [0, 0]\n"), "'seeds' lists a seed twice: [0, 0]"),
    ("seeds-string", suite(OK + 'seeds = "0"\n'), "'seeds' must be a non-empty list"),
    ("seeds-bool", suite(OK + "seeds = [true]\n"), "Got [True] instead"),
    ("no-scenarios", suite('methods = ["naive"]\n'), "'scenarios' must be a non-empty list of names. Got None"),
    ("scenarios-string", suite('scenarios = "split-digits"\nmethods = ["naive"]\n'), "'scenarios' must be a non-empty"),
    ("scenarios-int", suite('scenarios = [1]\nmethods = ["naive"]\n'), "Got [1] instead"),
    ("scenarios-twice", suite('scenarios = ["split-digits", "split-digits"]\nmethods = ["naive"]\n'),
     "'scenarios' lists a name twice"),
    ("unknown-method", suite('scenarios = ["split-digits"]\nmethods = ["ewk"]\n'),
     "Unknown method 'ewk'. Did you mean"),
    ("unknown-scenario", suite('scenarios = ["split-digit"]\nmethods = ["naive"]\n'),
     "Unknown scenario 'split-digit'. Did you mean 'split-digits'?"),
    ("name-int", suite(OK + "name = 5\n"), "'name' must be a string. Got 5 instead"),
    ("name-empty", suite(OK + 'name = ""\n'), "'name' must not be empty"),
    ("experiment-empty", suite(OK + 'experiment = ""\n'), "'experiment' must not be empty"),
    ("description-int", suite(OK + "description = 5\n"), "'description' must be a string"),
    ("device-typo", suite(OK + 'device = "cudafoo"\n'), "'device' must be 'auto', 'cpu' or 'cuda[:N]'. Got 'cudafoo'"),
    ("device-index", suite(OK + 'device = "cuda:abc"\n'), "Got 'cuda:abc' instead"),
    ("backend", suite(OK + 'kernel_backend = "cuda"\n'), "'kernel_backend' must be one of auto, reference, numba"),
    ("threads-negative", suite(OK + "threads = -1\n"), "'threads' must be an int >= 0"),
    ("threads-float", suite(OK + "threads = 1.5\n"), "Got 1.5 instead"),
    ("data-dir-int", suite(OK + "data_dir = 5\n"), "'data_dir' must be a string"),
    ("run-backend", suite(OK + 'backend = "mpi"\n'), "'backend' must be one of auto, serial, process, ray. Got 'mpi'"),
    ("run-backend-int", suite(OK + "backend = 2\n"), "'backend' must be a string. Got 2 instead"),
    ("jobs-negative", suite(OK + "jobs = -1\n"), "'jobs' must be an int >= 0 (runs at once; 0: one per core)"),
    ("jobs-bool", suite(OK + "jobs = true\n"), "Got True instead"),
    ("report", suite(OK + 'report = "poster"\n'), "'report' must be one of model-table, reproduce. Got 'poster'"),
    ("tune-not-table", suite(OK + "tune = 5\n"), "[tune] holds only [tune.space.METHOD] tables. Got 5"),
    ("tune-space-value", suite(OK + "[tune.space.naive]\nlr = {low = 0.5, high = 0.1}\n"),
     "s.toml [tune.space.naive] 'lr': the search space [0.5, 0.1] is empty or inverted"),
    ("tuned-not-tables", suite(OK + "[tuned.split-digits]\nnaive = 5\n"),
     "[tuned.split-digits] must name a listed scenario and hold a table per listed method"),
    ("train-not-table", suite(OK + "train = 5\n"), "[train] must be a table"),
    ("train-epochs", suite(OK + "[train]\nepochs = 0\n"), "The 'epochs' parameter of [train] must be an int"),
    ("train-unknown", suite(OK + "[train]\nepoch = 2\n"), "unknown parameter 'epoch' for [train] (did you mean"),
    ("train-optimizer", suite(OK + "[train]\noptimizer = 'lbfgs'\n"), "The 'optimizer' parameter of [train] must be"),
    ("train-lr-negative", suite(OK + "[train]\nlr = -1.0\n"), "must be a float in the range (0, inf). Got -1.0"),
    ("train-lr-string", suite(OK + "[train]\nlr = 'fast'\n"), "Got 'fast' instead"),
    ("method-value", suite('scenarios = ["split-digits"]\nmethods = ["ewc"]\n[method.ewc]\newc_lambda = -1.0\n'),
     "s.toml [method.ewc]: The 'ewc_lambda' parameter of method 'ewc' must be a float in the range [0, inf)"),
    ("method-typo", suite('scenarios = ["split-digits"]\nmethods = ["ewc"]\n[method.ewc]\newc_lamda = 1.0\n'),
     "unknown parameter 'ewc_lamda' for method 'ewc' (did you mean 'ewc_lambda'?)"),
    ("method-own-table", suite(OK + "[method.naive]\nlr_x = 1.0\n"), "s.toml [method.naive]: unknown parameter 'lr_x'"),
    ("method-name-int", suite('scenarios = ["split-digits"]\nmethods = ["m"]\n[method.m]\nname = 5\n'),
     "[method.m] name must be a string. Got 5"),
    ("method-name-unknown", suite('scenarios = ["split-digits"]\nmethods = ["m"]\n[method.m]\nname = "ewk"\n'),
     "Unknown method 'ewk'"),
    ("method-not-listed", suite(OK + "[method.gem]\nmemory_strength = 1.0\n"),
     "[method.gem] is defined but 'gem' is not listed in 'methods'"),
    ("scenario-name-list", suite('scenarios = ["s"]\nmethods = ["naive"]\n[scenario.s]\nname = ["split-digits"]\n'),
     "[scenario.s] name must be a string"),
    ("scenario-option", suite(OK + "[scenario.split-digits]\nn_experiences = 3\n"), "must divide the 10 classes"),
    ("scenario-bool", suite(OK + "[scenario.split-digits]\ntask_incremental = 1\n"), "must be a bool (true or false)"),
    ("scenario-order", suite(OK + "[scenario.split-digits]\nclass_order = [0, 1]\n"), "must be a permutation of 0..9"),
    ("scenario-not-listed", suite(OK + "[scenario.permuted-digits]\nn_experiences = 3\n"),
     "[scenario.permuted-digits] is defined but 'permuted-digits' is not listed"),
    ("pair-not-table", suite(OK + "[scenario.split-digits.method]\nnaive = 3\n"),
     "[scenario.split-digits.method] must be a table of tables"),
    ("pair-not-listed", suite(OK + "[scenario.split-digits.method.ewc]\newc_lambda = 1.0\n"),
     "[scenario.split-digits.method.ewc] is defined but 'ewc' is not listed"),
    ("pair-own-table", suite(OK + "[scenario.split-digits.method.naive]\nlrr = 1.0\n"),
     "s.toml [scenario.split-digits.method.naive]: unknown parameter 'lrr'"),
    ("cms-level-lrs", suite('scenarios = ["split-digits"]\nmethods = ["cms"]\n[method.cms]\nlevel_lrs = [0.1]\n'),
     "method 'cms': 'level_lrs' needs one learning rate per CMS level (3)"),
    ("cms-period-unit", suite('scenarios = ["split-digits"]\nmethods = ["cms"]\n[method.cms]\n'
                              'frequencies = [1, "fortnight"]\n'),
     "The 'frequencies' parameter of method 'cms' must be a non-empty list, each int of optimizer steps (>= 1)"),
    ("cms-negative-period", suite('scenarios = ["split-digits"]\nmethods = ["cms"]\n[method.cms]\n'
                                  "frequencies = [1, -4]\n"), "Got [1, -4] instead"),
    ("cms-base-period", suite('scenarios = ["split-digits"]\nmethods = ["cms"]\n[method.cms]\nbase_period = 0\n'),
     "The 'base_period' parameter of method 'cms' must be an int of optimizer steps (>= 1)"),
    ("cms-long-period-flush", suite('scenarios = ["split-digits"]\nmethods = ["cms"]\n[method.cms]\n'
                                    'frequencies = [1, "2 experiences"]\n'),
     "'frequencies' value '2 experiences' spans more than one experience, but partial_chunk = 'flush'"),
    ("cms-nested-experiences", suite('scenarios = ["split-digits"]\nmethods = ["cms"]\n[method.cms]\n'
                                     'cms_variant = "nested"\nfrequencies = [1, "experience"]\n'),
     "nested CMS needs 'frequencies' in optimizer steps"),
    ("flat-control-base-period", suite('scenarios = ["split-digits"]\nmethods = ["cms-flat"]\n[method.cms-flat]\n'
                                       "base_period = 4\n"), "unknown parameter 'base_period' for method 'cms-flat'"),
    ("memory-reset-without-stream", suite('scenarios = ["split-digits"]\nmethods = ["titans"]\n[method.titans]\n'
                                          'memory_reset = "experience"\n'), "it needs memory_scope = 'stream'"),
    ("hope-linear-memory", suite('scenarios = ["split-digits"]\nmethods = ["hope"]\n[method.hope]\n'
                                 "memory_hidden = 0\n"), "it needs self_modify = false"),
    ("meta-opt-bounds", suite('scenarios = ["split-digits"]\nmethods = ["meta-opt"]\n[method.meta-opt]\nlr = 0.9\n'),
     "'lr' of method 'meta-opt' must lie within optimizer_options.lr_bounds"),
    ("optimizer-knob", suite('scenarios = ["split-digits"]\nmethods = ["m3"]\n[method.m3]\n'
                             "optimizer_options = {period = 0}\n"),
     "The 'period' parameter of optimizer 'm3' (optimizer_options) must be an int in the range [1, inf)"),
    ("optimizer-options-int", suite(OK + "[method.naive]\noptimizer_options = 5\n"),
     "The 'optimizer_options' parameter of method 'naive' must be a table"),
    ("no-grid", suite('scenarios = ["split-digits"]\nmethods = ["ensemble"]\n[method.ensemble]\ngrid = true\n'),
     "method 'ensemble' has no parameter grid"),
    ("heart-site", suite('scenarios = ["heart-sites"]\nmethods = ["naive"]\n[scenario.heart-sites]\n'
                         'sites = ["mars"]\n'),
     "The 'sites' parameter of scenario 'heart-sites' must be a non-empty list of distinct values"),
    ("report-dir-file", {"s.toml": OK + 'report = "model-table"\n', "rd": ""}, "--report-dir rd is a file"),
    ("report-unknown", suite(OK + 'report = "reproduction"\n'), "'report' must be one of model-table, reproduce"),
    # The knobs of published protocols (issue 17).
    ("iterations-negative", suite(OK + "[train]\niterations = -5\n"),
     "The 'iterations' parameter of [train] must be an int in the range [0, inf). Got -5"),
    ("iterations-online", suite(OK + "[method.naive]\niterations = 100\nonline = true\n"),
     "an online stream is seen once"),
    ("activation", suite(OK + '[train]\nactivation = "swish"\n'),
     "The 'activation' parameter of [train] must be one of 'relu', 'tanh', 'sigmoid', 'gelu'. Got 'swish'"),
    ("dropout-one", suite(OK + "[train]\ndropout = 1.0\n"), "must be a float in the range [0, 1). Got 1.0"),
    ("lwf-alpha-negative", suite('scenarios = ["split-digits"]\nmethods = ["lwf"]\n[method.lwf]\n'
                                 "lwf_alpha = [0.0, -1.0]\n"),
     "'lwf_alpha' parameter of method 'lwf' must be a float in the range [0, inf) or a list of one or more numbers"),
    ("lwf-ce-scale", suite('scenarios = ["split-digits"]\nmethods = ["lwf"]\n[method.lwf]\nlwf_ce_scale = "t"\n'),
     "must be one of '1', '1/t'. Got 't'"),
    ("ewc-fisher", suite('scenarios = ["split-digits"]\nmethods = ["ewc"]\n[method.ewc]\nfisher = "exact"\n'),
     "The 'fisher' parameter of method 'ewc' must be one of 'batch', 'sample'"),
    ("si-clip", suite('scenarios = ["split-digits"]\nmethods = ["si"]\n[method.si]\nsi_clip = -1.0\n'),
     "The 'si_clip' parameter of method 'si' must be a float in the range [0, inf)"),
    ("shuffle-and-order", suite(OK + "[scenario.split-digits]\nshuffle_classes = true\n"
                                     "class_order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"),
     "takes 'class_order' or 'shuffle_classes', not both"),
    ("task-and-domain", suite(OK + "[scenario.split-digits]\ntask_incremental = true\ndomain_incremental = true\n"),
     "is task- or domain-incremental, not both"),
    ("permuted-setting", suite('scenarios = ["permuted-digits"]\nmethods = ["naive"]\n[scenario.permuted-digits]\n'
                               'setting = "class"\n'),
     "The 'setting' parameter of scenario 'permuted-digits' must be one of 'class-incremental'"),
    ("mnist-pad", suite('scenarios = ["permuted-mnist"]\nmethods = ["naive"]\n[scenario.permuted-mnist]\npad = 17\n'),
     "The 'pad' parameter of scenario 'permuted-mnist' must be an int in the range [0, 16]. Got 17"),
    ("mnist-normalize", suite('scenarios = ["split-mnist"]\nmethods = ["naive"]\n[scenario.split-mnist]\n'
                              'normalize = "yes"\n'),
     "The 'normalize' parameter of scenario 'split-mnist' must be a bool"),
    ("scenario-train-key", suite(OK + "[scenario.split-digits.train]\newc_lambda = 1.0\n"),
     "unknown parameter 'ewc_lambda' for [scenario.split-digits.train]"),
    ("scenario-train-int", suite(OK + "[scenario.split-digits]\ntrain = 5\n"),
     "[scenario.split-digits.train] must be a table"),
]

FLAGS = [
    ("missing-file", ["run", "nope.toml", *RUN], {}, "nope.toml: suite file not found"),
    ("unknown-suite", ["run", "smok", *RUN], {}, "Unknown suite 'smok'. Did you mean 'smoke'?"),
    ("seeds-negative", ["run", "smoke", "--seeds", "-1", *RUN], {}, "(with --seeds -1): 'seeds' must be"),
    ("seeds-twice", ["run", "smoke", "--seeds", "0", "0", *RUN], {}, "'seeds' lists a seed twice"),
    ("seeds-huge", ["run", "smoke", "--seeds", "99999999999999999999", *RUN], {}, "Got [99999999999999999999]"),
    ("seeds-word", ["run", "smoke", "--seeds", "zero", *RUN], {}, "argument --seeds: invalid int value: 'zero'"),
    ("only-unknown", ["run", "smoke", "--only", "nope", *RUN], {}, "'nope' is neither a scenario nor a method"),
    ("only-empty", ["run", "smoke", "--only", ",,,", *RUN], {}, "--only ',,,' names no scenario or method"),
    ("device", ["run", "smoke", "--device", "tpu", *RUN], {}, "(with --device tpu): 'device' must be"),
    ("device-index", ["run", "smoke", "--device", "cuda:abc", *RUN], {}, "Got 'cuda:abc' instead"),
    ("backend", ["run", "smoke", "--kernel-backend", "fast", *RUN], {}, "'kernel_backend' must be one of"),
    ("threads", ["run", "smoke", "--threads", "-2", *RUN], {}, "'threads' must be an int >= 0"),
    ("run-backend", ["run", "smoke", "--backend", "mpi", *RUN], {}, "(with --backend mpi): 'backend' must be one of"),
    ("jobs", ["run", "smoke", "--jobs", "-3", *RUN], {}, "(with --jobs -3): 'jobs' must be an int >= 0"),
    ("run-backend-env", ["run", "smoke", *RUN], {"NLBENCH_BACKEND": "warp"},
     "$NLBENCH_BACKEND must be one of auto, serial, process, ray. Got 'warp'"),
    ("ray-address-alone", ["run", "smoke", "--backend", "serial", "--ray-address", "auto", *RUN], {},
     "--ray-address applies to --backend ray"),
    ("ray-address-dead", ["run", "smoke", "--backend", "ray", "--ray-address", "127.0.0.1:1", *RUN], {},
     "--ray-address 127.0.0.1:1: no Ray cluster answers there"),
    ("experiment-empty", ["run", "smoke", "--experiment", "", *RUN], {}, "'experiment' must not be empty"),
    ("set-malformed", ["run", "smoke", "--set", "foo", *RUN], {}, "--set must look like KEY=VALUE"),
    ("set-value", ["run", "smoke", "--set", "train.lr=-1", *RUN], {}, "(with --set train.lr=-1): The 'lr' parameter"),
    ("set-not-table", ["run", "smoke", "--set", "seeds.x=1", *RUN], {}, "--set seeds.x=1: 'seeds' is not a table"),
    ("set-unknown", ["run", "smoke", "--set", "train.nope=1", *RUN], {}, "unknown parameter 'nope' for [train]"),
    ("set-method", ["run", "smoke", "--set", "method.ewc.ewc_lambda=oops", *RUN], {}, "Got 'oops' instead"),
    ("subsample-zero", ["run", "smoke", "--subsample", "0", *RUN], {}, "--subsample must be an int >= 1"),
    ("subsample-none", ["run", "smoke", "--subsample", "5", *RUN], {}, "none of this suite's scenarios has one"),
    ("bogus-flag", ["run", "smoke", "--bogus", *RUN], {}, "unrecognized arguments: --bogus"),
    ("uri-scheme", ["run", "smoke", "--tracking-uri", "foo://bar"], {}, "unknown scheme 'foo'"),
    ("uri-proc-sqlite", ["run", "smoke", "--tracking-uri", "sqlite:////proc/x/m.db"], {},
     "/proc/x cannot be created or written"),
    ("uri-proc-folder", ["run", "smoke", "--tracking-uri", "/proc/x"], {}, "/proc/x cannot be created or written"),
    ("uri-file-scheme", ["run", "smoke", "--tracking-uri", "file:///proc/y"], {}, "/proc/y cannot be created"),
    ("uri-garbage-db", ["run", "smoke", "--tracking-uri", "sqlite:///garbage.db"], {}, "is not a SQLite database"),
    ("uri-sqlite-form", ["run", "smoke", "--tracking-uri", "sqlite://nope.db"], {}, "a SQLite URI is sqlite:///"),
    ("uri-no-server", ["run", "smoke", "--tracking-uri", "http://127.0.0.1:1"], {},
     "no MLflow tracking server answers at http://127.0.0.1:1"),
    ("uri-empty", ["run", "smoke", "--tracking-uri", ""], {}, "--tracking-uri must not be empty"),
    ("uri-env", ["run", "smoke"], {"MLFLOW_TRACKING_URI": "foo://x"}, "$MLFLOW_TRACKING_URI foo://x: unknown scheme"),
    ("backend-env", ["run", "smoke", *RUN], {"NLBENCH_KERNEL_BACKEND": "warp"},
     "(with $NLBENCH_KERNEL_BACKEND=warp): 'kernel_backend' must be one of"),
    ("list-unknown", ["list", "nope"], {}, "Unknown name 'nope'"),
    ("check-unknown", ["scenarios", "check", "split-digit"], {}, "Unknown scenario 'split-digit'"),
    ("check-seed", ["scenarios", "check", "split-digits", "--seed", "-1"], {}, "--seed must be a non-negative int"),
    ("check-option", ["scenarios", "check", "split-digits", "--set", "n_experiences=3"], {}, "must divide the 10"),
    ("check-unknown-option", ["scenarios", "check", "split-digits", "--set", "n_exp=3"], {},
     "unknown parameter 'n_exp' for scenario 'split-digits'"),
    ("new-name", ["new", "scenario", "Bad_Name"], {}, "scenario name must be kebab-case"),
    ("new-exists", ["new", "scenario", "split-digits"], {}, "scenario 'split-digits' already exists"),
    ("bench-repeats", ["bench", "overhead", "--repeats", "0"], {}, "--repeats must be >= 1"),
    ("bench-unknown", ["bench", "speed"], {}, "argument what: invalid choice: 'speed'"),
    ("bench-suite-other", ["bench", "overhead", "--suite", "smoke"], {}, "--suite applies to 'nlbench bench scale'"),
    ("bench-suite-unknown", ["bench", "scale", "--suite", "smok"], {}, "Unknown suite 'smok'"),
    ("bench-device-other", ["bench", "overhead", "--device", "cpu"], {}, "--device applies to 'nlbench bench step'"),
    ("bench-device-form", ["bench", "step", "--device", "gpu"], {}, "--device 'gpu' must be 'auto', 'cpu' or"),
    ("bench-device-gpu", ["bench", "step", "--device", "cuda"], {}, "--device 'cuda' needs a CUDA GPU"),
    ("ui-port", ["ui", "--port", "99999", "--tracking-uri", "{store}"], {}, "--port must be an int in [1, 65535]"),
    ("ui-server", ["ui", "--tracking-uri", "http://127.0.0.1:1"], {}, "is already a tracking server"),
    ("no-command", ["frobnicate"], {}, "argument COMMAND: invalid choice: 'frobnicate'"),
    ("tune-budget", ["tune", "smoke", "--budget", "0", *RUN], {}, "--budget must be an int >= 1"),
    ("tune-protocol", ["tune", "smoke", "--protocol", "last-task", *RUN], {},
     "--protocol must be one of first-experiences, tuning-stream. Got 'last-task'"),
    ("tune-experiences", ["tune", "smoke", "--experiences", "0", *RUN], {}, "--experiences must be an int >= 1"),
    ("tune-val-share", ["tune", "smoke", "--val-share", "1.5", *RUN], {}, "--val-share must be a float in (0, 1)"),
    ("tune-seed-reported", ["tune", "smoke", "--seed", "0", *RUN], {},
     "--seed 0 is one of the seeds suite 'smoke' reports (0); tune on a seed the report never uses"),
    ("tune-objective", ["tune", "smoke", "--objective", "speed", *RUN], {}, "--objective must be one of acc,"),
    ("tune-objective-one", ["tune", "smoke", "--objective", "forgetting", *RUN], {},
     "--objective forgetting is undefined on one experience"),
    ("tune-pruner", ["tune", "smoke", "--pruner", "hyperband", *RUN], {}, "--pruner must be one of median, none"),
    ("tune-storage", ["tune", "smoke", "--storage", "optuna.db", *RUN], {}, "give a database URL"),
    ("tune-space-inverted", ["tune", "smoke", "--set", "tune.space.ewc.ewc_lambda={low = 10, high = 1}", *RUN], {},
     "[tune.space.ewc] 'ewc_lambda': the search space [10, 1] is empty or inverted (low 10 >= high 1)"),
    ("tune-space-empty", ["tune", "smoke", "--set", "tune.space.ewc.ewc_lambda={low = 1.0, high = 1.0}", *RUN], {},
     "is empty or inverted"),
    ("tune-space-unknown-key", ["tune", "smoke", "--set", "tune.space.ewc.ewc_lamda=[1.0, 2.0]", *RUN], {},
     "a search space for 'ewc_lamda', which method 'ewc' does not have (did you mean 'ewc_lambda'?)"),
    ("tune-space-rule", ["tune", "smoke", "--set", "tune.space.ewc.ewc_lambda=[-1.0, 1.0]", *RUN], {},
     "can produce -1.0, which the parameter rejects (it must be a float in the range [0, inf))"),
    ("tune-space-log", ["tune", "smoke", "--set", "tune.space.naive.lr={low = 0.0, high = 1.0, log = true}", *RUN],
     {}, "is on a log scale and needs low > 0"),
    ("tune-space-method", ["tune", "smoke", "--set", "tune.space.gem.lr=[0.1]", *RUN], {},
     "[tune.space.gem] is defined but 'gem' is not listed in 'methods'"),
    ("tune-space-shape", ["tune", "smoke", "--set", "tune.space.ewc.ewc_lambda=5", *RUN], {},
     "a search space is {low = ..., high = ..., log = true|false} or a list of choices. Got 5"),
    ("tune-space-keys", ["tune", "smoke", "--set", "tune.space.ewc.ewc_lambda={low = 1.0, top = 2.0}", *RUN], {},
     "a search space is {low = ..., high = ..., log = true|false}"),
    ("tune-tuned-name", ["tune", "smoke", "--tuned-name", "a b", *RUN], {}, "--tuned-name must be letters, digits"),
    ("tune-bad-suite", ["tune", "smok", *RUN], {}, "Unknown suite 'smok'"),
    ("tuned-table-missing", ["tuned-table", "--suite", "smoke", "--tracking-uri", "{store}"], {},
     "--tuned-suite tuned/smoke.toml: no such file; run `nlbench tune smoke` first"),
]

ON_RUNS = [
    ("board-reference", ["leaderboard", "--suite", "toy", "--reference", "nope"], "--reference 'nope' has no finished"),
    ("nested-control-form", ["nested-report", "--suite", "toy", "--control", "cms"], "expected METHOD=CONTROL"),
    ("nested-control-unknown", ["nested-report", "--suite", "toy", "--control", "good=cms-flat"],
     "--control: 'cms-flat' has no finished run here"),
    ("nested-no-nested", ["nested-report", "--suite", "toy"], "no Nested Learning method has finished runs"),
    ("board-rank-by-absent", ["leaderboard", "--suite", "toy", "--rank-by", "bacc"], "--rank-by bacc: no run here"),
    ("board-rank-by-unknown", ["leaderboard", "--suite", "toy", "--rank-by", "speed"], "invalid choice: 'speed'"),
    ("board-out-file", ["leaderboard", "--suite", "toy", "--out", "afile"], "--out afile is a file"),
    ("board-out-proc", ["leaderboard", "--suite", "toy", "--out", "/proc/board"], "--out /proc/board cannot be"),
    ("board-since", ["leaderboard", "--suite", "toy", "--since", "yesterday-ish"], "--since must be a date"),
    ("board-tag", ["leaderboard", "--suite", "toy", "--tag", "seed"], "--tag must look like KEY=VALUE"),
    ("board-suite", ["leaderboard", "--suite", "nope"], "no MLflow experiment 'nlbench-nope'"),
    ("board-no-match", ["leaderboard", "--suite", "toy", "--method", "nope"], "no finished runs in experiment"),
    ("table-out-file", ["model-table", "--suite", "toy", "--out", "afile"], "--out afile is a file"),
    ("runs-limit-zero", ["runs", "--limit", "0"], "--limit must be an int >= 1. Got 0"),
    ("runs-limit-negative", ["runs", "--limit", "-5"], "--limit must be an int >= 1. Got -5"),
    ("runs-sort", ["runs", "--sort", "speed"], "argument --sort: invalid choice: 'speed'"),
    ("runs-status", ["runs", "--status", "DONE"], "argument --status: invalid choice: 'DONE'"),
    ("runs-tag", ["runs", "--tag", "=x"], "--tag must look like KEY=VALUE"),
    ("show-unknown", ["show", "0" * 32], "no run '00000000000000000000000000000000'"),
    ("compare-unknown", ["compare", "0" * 32, "1" * 32], "no run '"),
    ("show-fresh-store", ["show", "0" * 32, "--tracking-uri", "sqlite:///never-made.db"], "no MLflow store at"),
]


def run_main(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code, out, err, fragment):
    assert code == ExitCode.USAGE_ERROR, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("MLFLOW_TRACKING_URI", "NLBENCH_KERNEL_BACKEND", "NLBENCH_DATA"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "garbage.db").write_text("not a database\n")
    (tmp_path / "afile").write_text("")
    return tmp_path


@pytest.mark.parametrize(("files", "fragment"), [c[1:] for c in SUITE_FILES], ids=[c[0] for c in SUITE_FILES])
def test_a_bad_suite_file_is_one_line_and_creates_no_store(workdir, capsys, files, fragment):
    for name, text in files.items():
        if text is None:
            (workdir / name).write_bytes(b"\x00\xf5\xff" + os.urandom(64))
        else:
            (workdir / name).write_text(text)
    store = workdir / "store.db"
    code, out, err = run_main(["run", "s.toml", "--tracking-uri", f"sqlite:///{store}", "--no-progress",
                               "--report-dir", "rd"], capsys)
    assert_one_error(code, out, err, fragment)
    assert not store.exists() and not (workdir / "mlruns").exists()


@pytest.mark.parametrize(("argv", "env", "fragment"), [c[1:] for c in FLAGS], ids=[c[0] for c in FLAGS])
def test_a_bad_flag_or_environment_is_one_line_and_creates_no_store(workdir, capsys, monkeypatch, argv, env, fragment):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    store = workdir / "store.db"
    before = set(os.listdir(workdir))
    code, out, err = run_main([a.replace("{store}", f"sqlite:///{store}") for a in argv], capsys)
    assert_one_error(code, out, err, fragment)
    assert set(os.listdir(workdir)) == before  # no store, no mlruns/, no scaffold


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_the_machine_does_not_have_is_refused_before_any_run(workdir, capsys):
    code, out, err = run_main(["run", "smoke", "--device", "cuda", *(a.replace("{store}", "sqlite:///s.db")
                                                                        for a in RUN)], capsys)
    assert_one_error(code, out, err, "'device' needs a CUDA GPU and this machine has none")
    assert not (workdir / "s.db").exists()


@pytest.fixture(scope="module")
def used_store(tmp_path_factory):
    """A store holding a suite's runs (fabricated results, written by the real tracker)."""
    from nlbench.results.tracking import Tracker
    from nlbench.run.suite import Suite

    folder = tmp_path_factory.mktemp("used")
    cwd = os.getcwd()
    os.chdir(folder)  # the store's artifacts go to ./mlruns
    try:
        tracker = Tracker(f"sqlite:///{folder / 'runs.db'}", "nlbench-toy")
        parent = tracker.start_parent(Suite("toy", "toy.toml", ("toy",), ("naive", "good")), [], {})
        for method, acc in (("naive", 0.2), ("good", 0.7)):
            for seed in (0, 1):
                result = fabricated_result("toy", "toy", method, seed, [[0.9, 0.1], [acc, acc]], [0.1, 0.1],
                                           {"acc": acc, "forgetting": 0.9 - acc})
                tracker.record(parent, result, {})
        tracker.finish(parent, "FINISHED")
    finally:
        os.chdir(cwd)
    return folder


def fingerprint(folder):
    """Every byte of the store: the database and its artifacts."""
    digest = hashlib.sha256()
    for root, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            digest.update(name.encode())
            with open(os.path.join(root, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in ON_RUNS], ids=[c[0] for c in ON_RUNS])
def test_a_bad_question_about_stored_runs_is_one_line_and_changes_nothing(used_store, tmp_path, capsys, monkeypatch,
                                                                        argv, fragment):
    copy = tmp_path / "store"
    shutil.copytree(used_store, copy)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (copy / "afile").write_text("")
    before = fingerprint(copy)
    uri = [] if "--tracking-uri" in argv else ["--tracking-uri", f"sqlite:///{copy / 'runs.db'}"]
    code, out, err = run_main([*argv, *uri], capsys)
    assert_one_error(code, out, err, fragment)
    assert fingerprint(copy) == before
    assert not (copy / "never-made.db").exists()


def test_the_corpus_is_at_least_sixty_cases():
    assert len(SUITE_FILES) + len(FLAGS) + len(ON_RUNS) + 1 >= 60
