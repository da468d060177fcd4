"""Stage 4, results: the run-record schema, MLflow tracking, and everything read back from the store
(summaries, leaderboards, the model table, plots, run inspection)."""
