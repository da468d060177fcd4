"""Stage 3, run: suites resolved into run configs, the evaluation protocol, metrics, and the run unit."""
