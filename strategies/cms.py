"""CMS: the MLP backbone replaced by a Continuum Memory System chain (arXiv §7.1, Eqs. 70-74)."""

from collections.abc import Mapping
from typing import Any

from torch import nn

from nlbench.core.registry import register_strategy
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.models import input_features
from nlbench.methods.nested import NestedMethod, cms_options
from nlbench.nn.cms import CMSClassifier


@register_strategy
class CMS(NestedMethod):
    """Linear -> CMS levels updating every `frequencies` steps on summed gradients (Eq. 71) -> linear head.

    Knobs: `frequencies` (chunk size C(l) of each level, in optimizer steps or experiences), `level_lr_rule`
    (eta^(l) = lr or lr / C(l)), `base_period` and `base_lr_scale` (the level of every other parameter),
    `cms_variant` (sequential | nested | independent), `cms_hidden` (each level's MLP width), `dim` (model width),
    `level_lrs` (eta^(l) by hand), `partial_chunk` (flush | carry at the end of an experience).
    """

    NAME = "cms"
    DEFAULTS = {"dim": 64}
    CONTROL = "cms-flat"

    def build_net(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        return CMSClassifier(input_features(info), info.n_classes, hp["dim"], **cms_options(hp))
