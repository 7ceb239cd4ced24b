"""The scheduler's SQL, by name: claims with a lease, parking, workers and their heartbeat.

A sweep claims *episodes* that have due timers, not single timers: all of an episode's due
timers then fire in one worker, in due order, so per-episode order holds however many workers
run. On PostgreSQL the claim skips rows another worker is claiming (``FOR UPDATE SKIP
LOCKED``); on SQLite the claim runs in ``BEGIN IMMEDIATE`` (one writer at a time). A claim is a
lease: past ``lease_until`` any worker may take the episode over, so a dead worker loses
nothing. Exactly-once does not rest on the claim: each firing's event id is derived from the
timer and the episode row is written under its version, so a timer applied twice is impossible.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.sql import QUERIES, pyformat

_CLAIM_PG = QUERIES["claim@postgresql"]
_CLAIM_SQLITE = QUERIES["claim@sqlite"]
RELEASE = QUERIES["release"]
RELEASE_ALL = QUERIES["release_all"]
PARK_EPISODE = QUERIES["park_episode"]
ATTEMPTS = QUERIES["attempts"]
PARK_TIMER = QUERIES["park_timer"]
REGISTER = QUERIES["register"]
HEARTBEAT = QUERIES["heartbeat"]
STOPPED = QUERIES["stopped"]
RELEASE_STALE = QUERIES["release_stale"]
WORKERS = QUERIES["workers"]
COUNT_DUE = QUERIES["count_due"]
COUNT_PARKED = QUERIES["count_parked"]
PARKED = QUERIES["parked"]
COUNT_ESCALATIONS = QUERIES["count_escalations"]
OLDEST_DUE = QUERIES["oldest_due"]


@dataclass(frozen=True, slots=True)
class ClaimQueries:
    """The statements in one driver's parameter style."""

    claim: str
    release: str
    release_all: str
    park_episode: str
    park_timer: str
    attempts: str
    register: str
    heartbeat: str
    stopped: str
    release_stale: str
    workers: str
    count_due: str
    count_parked: str
    parked: str
    count_escalations: str
    oldest_due: str

    @classmethod
    def for_dialect(cls, dialect: str) -> ClaimQueries:
        common = {
            "release": RELEASE, "release_all": RELEASE_ALL, "park_episode": PARK_EPISODE,
            "park_timer": PARK_TIMER, "attempts": ATTEMPTS, "register": REGISTER, "heartbeat": HEARTBEAT,
            "stopped": STOPPED, "release_stale": RELEASE_STALE, "workers": WORKERS,
            "count_due": COUNT_DUE, "count_parked": COUNT_PARKED, "parked": PARKED,
            "count_escalations": COUNT_ESCALATIONS, "oldest_due": OLDEST_DUE,
        }  # fmt: skip
        if dialect == "sqlite":
            return cls(claim=_CLAIM_SQLITE, **common)
        pg = {name: pyformat(sql) for name, sql in common.items()}
        return cls(claim=pyformat(_CLAIM_PG), **pg)
