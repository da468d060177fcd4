"""HOPE: self-modifying Titans followed by a Continuum Memory System (arXiv §8, Eqs. 83-97)."""

from collections.abc import Mapping
from typing import Any

from torch import nn

from nlbench.core.registry import register_strategy
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.nested import TITANS_PARAMS, NestedMethod, cms_options, titans_options
from nlbench.nn.hope import HOPEClassifier


@register_strategy
class HOPE(NestedMethod):
    """Token sequence -> [self-modifying Titans -> CMS] x self_mod_depth -> last token -> head.

    Images become one token per row, tables one token per feature. The Titans memories learn in context
    (per sample, DGD with retention, two chunk sizes); the CMS levels follow Eq. 71 across the stream.
    `self_modify = false` is the ablation with static k, v, eta, alpha projections; `grad_mode` chooses
    meta-learned initial memory states ("meta") or detached writes ("stopgrad"). `memory_hidden = 0` (with
    `self_modify = false`) is a linear memory run by the delta-rule kernel.
    """

    NAME = "hope"
    PARAMS = TITANS_PARAMS
    CONTROL = "hope-flat"

    def cms(self, hp: Mapping[str, Any]) -> dict[str, Any] | None:
        return cms_options(hp)

    def build_net(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        return HOPEClassifier(info.input_shape, info.n_classes, hp["dim"], titans_options(hp), self.cms(hp),
                              depth=hp["self_mod_depth"])
