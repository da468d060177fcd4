"""Fair hyperparameter tuning: `nlbench tune` (see nlbench.tune.study)."""
