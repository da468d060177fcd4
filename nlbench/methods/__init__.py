"""Stage 2, methods: the Learner contract and the adapters that make Avalanche strategies, Nested Learning
models and scikit-learn estimators learners of the same protocol."""
