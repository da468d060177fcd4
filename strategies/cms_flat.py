"""cms-flat: the CMS model with every level updated at every step, the same-architecture control of `cms`."""

from nlbench.core.registry import register_strategy
from strategies.cms import CMS


@register_strategy
class CMSFlat(CMS):
    """The `cms` model (same blocks, same parameter count) trained flat: every level every step, one lr.

    A Nested Learning result is read as a paired difference against this control: what the level schedule
    (Eq. 71) adds to the architecture, not what the architecture adds to an MLP.
    """

    NAME = "cms-flat"
    FLAT = True
    CONTROL = None
