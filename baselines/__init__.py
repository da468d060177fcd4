"""Classic continual-learning baselines (Avalanche) and, later, sklearn models; one module each."""
