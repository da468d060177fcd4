"""Level periods in optimizer steps or in experiences, and the learning rate each level gets.

A CMS level's chunk size C(l) (Eq. 71) is counted in optimizer steps (one minibatch each). What makes a level
slow for continual learning is its period compared with a task, so a period can also be given in experiences:
"experience", "2 experiences", "0.25 experience". A scenario resolves it to steps with its mean number of
training steps per experience (epochs x minibatches, online sub-experiences included), rounded, at least 1.
The resolved step counts are what the run logs.

Per-level learning rates (`level_lr_rule`): "equal" gives every level eta; "inverse-period" gives level l
eta / C(l), so a level applies eta times the *mean* of its chunk's gradients instead of their sum (Eq. 71 sums;
the rule only scales eta^(l), it does not average), and a level whose period spans an experience moves about one
fast step per experience.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LEVEL_LR_RULES = ("equal", "inverse-period")
_EXPERIENCES = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)?\s*(?:experiences?|exp)\s*$")


@dataclass(frozen=True)
class Period:
    """`amount` steps (unit "steps") or `amount` experiences (unit "experience")."""

    amount: float
    unit: str

    def steps(self, steps_per_experience: int) -> int:
        if self.unit == "steps":
            return int(self.amount)
        return max(1, round(self.amount * steps_per_experience))

    def experiences(self, steps_per_experience: int) -> float:
        """How many experiences the period spans (resolved in steps when given in steps)."""
        return self.amount if self.unit == "experience" else self.amount / max(1, steps_per_experience)


def parse_period(value: Any) -> Period:
    """An int >= 1 (steps) or a string such as "experience", "2 experiences", "0.5 exp"; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"a period in steps must be >= 1, got {value}")
        return Period(value, "steps")
    match = _EXPERIENCES.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"a period is an int of steps or a number of experiences like '2 experiences', got {value!r}")
    amount = float(match.group(1)) if match.group(1) else 1.0
    if amount <= 0:
        raise ValueError(f"a period in experiences must be > 0, got {value!r}")
    return Period(amount, "experience")


def is_period(value: Any) -> bool:
    try:
        parse_period(value)
    except ValueError:
        return False
    return True


def steps_per_experience(sizes: Sequence[int], batch_size: int, epochs: int, online_size: int = 0,
                         iterations: int = 0) -> int:
    """Mean optimizer steps per experience of training sets of `sizes` rows (Avalanche keeps the last partial
    minibatch; an online experience is cut into sub-experiences of `online_size` rows, one epoch each; a fixed
    budget of `iterations` steps is that many)."""
    if iterations:
        return iterations

    def steps(n: int) -> int:
        if online_size:
            full, rest = divmod(n, online_size)
            return full * math.ceil(online_size / batch_size) + math.ceil(rest / batch_size)
        return epochs * math.ceil(n / batch_size)

    return max(1, round(sum(steps(n) for n in sizes) / len(sizes))) if sizes else 1


def level_lr(lr: float, period_steps: int, rule: str) -> float:
    """eta^(l) of a level with period C(l) under `rule` (see the module docstring)."""
    if rule not in LEVEL_LR_RULES:
        raise ValueError(f"level_lr_rule must be one of {LEVEL_LR_RULES}, got {rule!r}")
    return lr / period_steps if rule == "inverse-period" else lr


class PeriodRule:
    """What a period parameter accepts (`many`: a non-empty list of periods), for `Param`."""

    def __init__(self, many: bool = False):
        self.many = many

    def accepts(self, value: Any) -> bool:
        if self.many:
            return isinstance(value, list) and len(value) > 0 and all(is_period(v) for v in value)
        return is_period(value)

    def invalid(self) -> Any:
        return ["fortnight"] if self.many else 0

    def __str__(self) -> str:
        one = "an int of optimizer steps (>= 1) or a number of experiences such as 'experience', '2 experiences'"
        return f"a non-empty list, each {one.removeprefix('an ')}" if self.many else one
