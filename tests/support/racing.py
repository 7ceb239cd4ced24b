"""Two writers that both read an episode before either saves: the race a version check is for."""

from __future__ import annotations

import threading
from typing import Any

from pathway.model import Episode
from pathway.unit_of_work import UnitOfWork


class ReadThenWait:
    """A unit of work that, the first time it reads the episode (``episode_id``, or any), waits
    until the other writer has read it too."""

    def __init__(
        self,
        uow: UnitOfWork,
        barrier: threading.Barrier,
        episode_id: str | None = None,
        timeout: float = 20,
    ) -> None:
        self.uow, self.barrier, self.episode_id = uow, barrier, episode_id
        self.timeout, self.waited = timeout, False

    def __enter__(self) -> ReadThenWait:
        self.uow.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uow.__exit__(*exc)

    def get_episode(self, episode_id: str) -> Episode:
        found = self.uow.get_episode(episode_id)
        if not self.waited and self.episode_id in (None, episode_id):
            self.waited = True
            self.barrier.wait(timeout=self.timeout)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.uow, name)
