"""Self-modifying Titans with a linear head: HOPE without its CMS (the ablation of arXiv Table 6)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.registry import register_strategy
from strategies.hope import HOPE


@register_strategy
class Titans(HOPE):
    """Token sequence -> [self-modifying Titans] x self_mod_depth -> last token -> head (no CMS)."""

    NAME = "titans"
    USES_CMS = False
    CONTROL = None  # no CMS schedule to take away

    def cms(self, hp: Mapping[str, Any]) -> dict[str, Any] | None:
        return None
