"""The configs a backend runs, read lazily: what lets a tuner ask a study's next trial only when it can run."""

from __future__ import annotations

from collections.abc import Iterable

from nlbench.run.config import RunConfig

_END = object()


class Feed:
    """A lazy source of configs that may have none to give yet: a tuner yields None while each of its studies
    waits on a trial in flight (the study's next trial depends on that result). Only the source's end ends the
    runs; a None while no run is in flight is a bug in the source, raised rather than waited on forever."""

    def __init__(self, configs: Iterable[RunConfig | None]):
        self._source, self.done = iter(configs), False

    def take(self) -> RunConfig | None:
        """The next config, or None when there is none now (or ever: see `done`)."""
        if self.done:
            return None
        config = next(self._source, _END)
        if config is _END:
            self.done = True
            return None
        return config

    def require_end(self) -> None:
        """Called when nothing is in flight and the feed gave nothing: that must be its end."""
        if not self.done:
            raise RuntimeError("the configs gave nothing to run while no run was in flight")
