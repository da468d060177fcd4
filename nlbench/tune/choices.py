"""The choices `nlbench tune` offers, apart from the modules that use them, so building the command line
imports neither torch nor Optuna."""

PROTOCOLS = ("first-experiences", "tuning-stream")  # where a trial's data comes from (nlbench.tune.protocols)
PRUNERS = ("median", "none")  # how a trial stops early (nlbench.tune.study)
