"""Online streams: an experience cut by Avalanche into small sub-experiences, each seen once.

The task boundary stays visible (`access_task_boundaries`), so boundary work (the CMS flush, the optimizer-state
snapshot) happens once per experience, at its last sub-experience.
"""

from __future__ import annotations

from typing import Any


def online_parts(experience: Any, size: int) -> Any:
    """Avalanche's own split into sub-experiences of `size` samples, shuffled with the run's seeded torch RNG."""
    from avalanche.benchmarks.scenarios.online import split_online_stream

    return split_online_stream([experience], size, shuffle=True, access_task_boundaries=True)


def end_of_experience(experience: Any) -> bool:
    """True after a whole experience; in an online stream only after its last sub-experience."""
    return getattr(experience, "is_last_subexp", True) is not False


def origin_index(experience: Any) -> int:
    """The stream index of an experience, or of the experience an online sub-experience was cut from."""
    origin = getattr(experience, "origin_experience", None)
    return (origin or experience).current_experience
