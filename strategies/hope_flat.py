"""hope-flat: HOPE with every CMS level updated at every step, the same-architecture control of `hope`."""

from nlbench.core.registry import register_strategy
from strategies.hope import HOPE


@register_strategy
class HOPEFlat(HOPE):
    """The `hope` model (same Titans and CMS blocks, same parameter count) trained flat: one lr, every step.

    The Titans memories still learn in context; only the CMS schedule (Eq. 71) and the base level's time scale
    are taken away, so `hope - hope-flat` measures the schedule.
    """

    NAME = "hope-flat"
    FLAT = True
    CONTROL = None
