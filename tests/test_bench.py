"""The overhead benchmark's reference loop is a real training loop, comparable to the harness."""

import numpy as np

from nlbench.bench import plain_torch_naive
from nlbench.cli import ExitCode, main
from nlbench.registry import SCENARIOS, get_method


def test_plain_reference_learns_each_experience_and_forgets_like_naive():
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    hp = get_method("naive").resolve({"epochs": 4, "hidden_sizes": [32]})
    R = plain_torch_naive(data, hp, seed=0)
    assert R.shape == (2, 2)
    assert R[0, 0] > 0.8 and R[1, 1] > 0.8  # learns what it is trained on
    assert R[1, 0] < R[0, 0]  # class-incremental fine-tuning forgets
    assert np.all((R >= 0) & (R <= 1))


def test_bench_rejects_bad_repeats(capsys):
    assert main(["bench", "overhead", "--repeats", "0"]) == ExitCode.USAGE_ERROR
    assert "--repeats must be >= 1" in capsys.readouterr().err
