"""Test-only methods, loaded with NLBENCH_PLUGINS=crashing_methods (tests/plugins on PYTHONPATH): a run that kills
its own process the way a native crash or the OOM killer would."""

import os
import signal

from nlbench.core.registry import register_baseline
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class Segfault(AvalancheMethod):
    """Naive fine-tuning whose process dies of SIGSEGV before it trains."""

    NAME = "segfault"

    def make_learner(self, hp, data, device):
        os.kill(os.getpid(), signal.SIGSEGV)
        return super().make_learner(hp, data, device)  # never reached
