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

from storage.queries import pyformat

_CLAIM_PG = """
WITH picked AS (
    SELECT id FROM episodes
    WHERE next_due_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_due_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED)
UPDATE episodes SET claimed_by = :worker, lease_until = :until
FROM picked WHERE episodes.id = picked.id
RETURNING episodes.id"""

_CLAIM_SQLITE = """
UPDATE episodes SET claimed_by = :worker, lease_until = :until
WHERE id IN (
    SELECT id FROM episodes
    WHERE next_due_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_due_at
    LIMIT :limit)
RETURNING id"""

RELEASE = """
UPDATE episodes SET claimed_by = NULL, lease_until = NULL
WHERE id = :id AND claimed_by = :worker"""

RELEASE_ALL = """
UPDATE episodes SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = :worker"""

# A timer that failed: the episode is left alone until the backoff ends (its lease), the timer
# records the attempt and the error, and stays pending (parked, visible in status).
PARK_EPISODE = """
UPDATE episodes SET claimed_by = NULL, lease_until = :retry_at WHERE id = :id"""
ATTEMPTS = "SELECT attempts FROM timers WHERE episode_id = :id AND key = :key"
PARK_TIMER = """
UPDATE timers SET attempts = attempts + 1, last_error = :error
WHERE episode_id = :id AND key = :key"""

REGISTER = """
INSERT INTO workers (id, host, pid, started_at, last_seen, fired)
VALUES (:id, :host, :pid, :now, :now, 0)"""
HEARTBEAT = """
UPDATE workers SET last_seen = :now, fired = fired + :fired WHERE id = :id"""
STOPPED = "UPDATE workers SET stopped_at = :now, last_seen = :now WHERE id = :id"

# Claims of workers that stopped heart-beating are released before their leases run out.
RELEASE_STALE = """
UPDATE episodes SET claimed_by = NULL, lease_until = NULL
WHERE claimed_by IN (
    SELECT id FROM workers WHERE stopped_at IS NULL AND last_seen < :stale_before)"""

WORKERS = """
SELECT id, host, pid, started_at, last_seen, stopped_at, fired FROM workers
ORDER BY started_at DESC"""
COUNT_DUE = "SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= :now"
COUNT_PARKED = "SELECT count(*) FROM timers WHERE status = 'pending' AND attempts > 0"
PARKED = """
SELECT episode_id, key, due_at, attempts, last_error FROM timers
WHERE status = 'pending' AND attempts > 0 ORDER BY due_at LIMIT 20"""
COUNT_ESCALATIONS = "SELECT count(*) FROM tasks WHERE kind = 'escalation' AND status = 'open'"
OLDEST_DUE = "SELECT min(due_at) FROM timers WHERE status = 'pending' AND due_at <= :now"


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
