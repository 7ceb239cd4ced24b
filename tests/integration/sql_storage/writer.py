"""A writer process for the concurrency and crash tests; run as ``python -m
tests.integration.sql_storage.writer`` from the repository root, never imported by pytest.

writer.py contend URL EPISODE_IDS WORKER N   N observations spread over the episodes, each
                                             retried on ConcurrencyConflict; prints a summary
writer.py loop URL ROUND                     courses of episodes, one after another, until
                                             killed; prints "ready" after its first commit
"""

from __future__ import annotations

import itertools
import json
import sys

from carepath.settings import Settings
from pathway import usecases
from pathway.errors import ConcurrencyConflict
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import DEFS, PRESENTATION, PROFILE, WORKUP, Course, day


def contend(url: str, episode_ids: list[str], worker: int, n: int) -> None:
    make_uow = uow_factory(url, Settings.from_env().audit_key())  # the suite's key
    conflicts = 0
    for i in range(n):
        episode_id = episode_ids[(worker + i) % len(episode_ids)]
        while True:
            try:
                usecases.observe(
                    make_uow(),
                    DEFS,
                    episode_id,
                    {"pain_score": (worker * 7 + i) % 11},
                    at=day(2),
                    now=day(2),
                    actor=f"worker-{worker}",
                    event_id=f"w{worker}-{i}",
                )
                break
            except ConcurrencyConflict:
                conflicts += 1
    print(json.dumps({"worker": worker, "applied": n, "conflicts": conflicts}))


def loop(url: str, round_: str) -> None:
    """Whole courses, one episode after another, with every kind of write, until killed."""
    make_uow = uow_factory(url, Settings.from_env().audit_key())  # the suite's key
    for k in itertools.count():
        course = Course(make_uow, f"{round_}-ep-{k}")
        course.open(PROFILE)
        if k == 0:
            print("ready", flush=True)
        course.observe(PRESENTATION, 0)
        course.observe(WORKUP, 1)
        course.request("vertebroplasty", 2)
        for d in range(3, 40, 3):
            course.observe({"pain_score": d % 10}, d)
        course.advance(100)
        if not DEFS.current.is_terminal(course.episode().state):
            course.close("lost_to_follow_up", 101)


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "contend":
        contend(url, rest[0].split(","), int(rest[1]), int(rest[2]))
    else:
        loop(url, rest[0])
