"""The unit of work's statements (their text is in ``storage/sql/queries.sql``), per dialect.

Written as SQL rather than built per call with SQLAlchemy Core: a use case runs ~8 statements
and Core adds ~35 µs per execute over the bare driver (measured): more than the engine's whole
decision. Statements use ``:name`` parameters (sqlite3's named style); ``Queries.postgresql``
rewrites them to psycopg's ``%(name)s`` once, at import. One parameter dict serves every
single-row statement of a change (both drivers ignore keys a statement does not use).

On PostgreSQL a whole change is one statement (data-modifying CTEs, batches as arrays through
``unnest``) so that saving a decision is one round trip; every part of it is conditional on
the guarded episode write, which returns no row when the version moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from storage.sql import QUERIES, pyformat

FIND_OUTCOME = QUERIES["find_outcome"]
EPISODE_HEAD = QUERIES["episode_head"]
EPISODE_HEADS = QUERIES["episode_heads"]
EPISODE_IDS = QUERIES["episode_ids"]
EPISODES_OF_PATIENT = QUERIES["episodes_of_patient"]
OBSERVATIONS = QUERIES["observations"]
AUDIT_RECORDS = QUERIES["audit_records"]
AUDIT_RECORDS_OF_MANY = QUERIES["audit_records_of_many"]
_SNAPSHOT = QUERIES["episode_snapshot"]
_DUE_TIMERS = QUERIES["due_timers"]
INSERT_EPISODE = QUERIES["insert_episode"]
UPDATE_EPISODE = QUERIES["update_episode"]
UPDATE_EPISODE_IN_PLACE = QUERIES["update_episode_in_place"]
EPISODE_VERSION = QUERIES["episode_version"]
INSERT_OBSERVATION = QUERIES["insert_observation"]
INSERT_TIMER = QUERIES["insert_timer"]
UPDATE_TIMER_STATUS = QUERIES["update_timer_status"]
INSERT_TASK = QUERIES["insert_task"]
UPDATE_TASK_STATUS = QUERIES["update_task_status"]
INSERT_AUDIT = QUERIES["insert_audit"]

# PostgreSQL: a whole change as one statement of data-modifying CTEs. ``ep`` is the guarded
# episode write; every other part reads ``FROM ep``, so it writes nothing when the version
# moved. Only the parts a change needs are included (``postgres_save``): fewer plan nodes,
# fewer parameters to send.
_PG_EPISODE_INSERT = (
    INSERT_EPISODE.replace(":facts,", "CAST(:facts AS json),")
    .replace(":remembered,", "CAST(:remembered AS json),")
    .replace(":links,", "CAST(:links AS json),")
    + """
    ON CONFLICT (id) DO NOTHING RETURNING id"""
)
_PG_EPISODE_UPDATE = (
    UPDATE_EPISODE.replace("facts = :facts", "facts = CAST(:facts AS json)")
    .replace("remembered = :remembered", "remembered = CAST(:remembered AS json)")
    .replace("links = :links", "links = CAST(:links AS json)")
    + """
    RETURNING id"""
)
PG_SAVE_PARTS = {
    name: QUERIES[f"pg_save_{name}"]
    for name in ("observation", "new_timers", "timer_status", "new_tasks", "task_status", "notices")
}
_PG_AUDIT_AND_OUTCOME = QUERIES["pg_save_audit_and_outcome"]


@lru_cache(maxsize=128)
def postgres_save(new_episode: bool, parts: tuple[str, ...]) -> str:
    """The one statement that writes a change with these parts (names of PG_SAVE_PARTS)."""
    episode = _PG_EPISODE_INSERT if new_episode else _PG_EPISODE_UPDATE
    ctes = [f"ep AS ({episode})", *(f"{name} AS ({PG_SAVE_PARTS[name]})" for name in parts)]
    return pyformat("WITH " + ",\n".join(ctes) + "," + _PG_AUDIT_AND_OUTCOME)


@dataclass(frozen=True, slots=True)
class Queries:
    """The statements of one dialect, in its driver's parameter style."""

    find_outcome: str
    episode_head: str
    episode_heads: str  # many at once (:ids: an array; SQLite: JSON)
    episode_version: str
    episode_snapshot: str
    episode_snapshots: str  # many episodes in one round trip (:ids: an array; SQLite: JSON)
    episode_ids: str
    episodes_of_patient: str
    observations: str
    audit_records: str
    audit_records_of_many: str  # many episodes' at once (:ids: an array; SQLite: JSON)
    due_timers: str
    due_timers_of_episode: str
    insert_episode: str
    update_episode: str
    update_episode_in_place: str
    insert_observation: str
    insert_timer: str
    update_timer_status: str
    insert_task: str
    update_task_status: str
    insert_audit: str

    @classmethod
    def sqlite(cls) -> Queries:
        common = _common("json_group_array", "json_array", "")
        common["episode_snapshots"] = common["episode_snapshots"].replace(
            "= ANY(:ids)", "IN (SELECT value FROM json_each(:ids))"
        )
        for name, sql in (
            ("episode_heads", EPISODE_HEADS),
            ("audit_records_of_many", AUDIT_RECORDS_OF_MANY),
        ):
            common[name] = sql.replace("{ids}", "IN (SELECT value FROM json_each(:ids))")
        return cls(**common)

    @classmethod
    def postgresql(cls) -> Queries:
        common = _common("json_agg", "json_build_array", 'COLLATE "C"')
        common["episode_heads"] = EPISODE_HEADS.replace("{ids}", "= ANY(:ids)")
        common["audit_records_of_many"] = AUDIT_RECORDS_OF_MANY.replace("{ids}", "= ANY(:ids)")
        return cls(**{name: pyformat(sql) for name, sql in common.items()})


def _common(agg: str, arr: str, collate: str) -> dict[str, str]:
    due = _DUE_TIMERS.replace("{collate}", collate)
    return {
        "find_outcome": FIND_OUTCOME,
        "episode_head": EPISODE_HEAD,
        "episode_version": EPISODE_VERSION,
        "episode_snapshot": _SNAPSHOT.format(agg=agg, arr=arr),
        "episode_snapshots": _SNAPSHOT.format(agg=agg, arr=arr).replace(
            "WHERE e.id = :id", "WHERE e.id = ANY(:ids)"
        ),
        "episode_ids": EPISODE_IDS,
        "episodes_of_patient": EPISODES_OF_PATIENT,
        "observations": OBSERVATIONS,
        "audit_records": AUDIT_RECORDS,
        "due_timers": due.replace("{episode}", ""),
        "due_timers_of_episode": due.replace("{episode}", "AND episode_id = :episode_id"),
        "insert_episode": INSERT_EPISODE,
        "update_episode": UPDATE_EPISODE,
        "update_episode_in_place": UPDATE_EPISODE_IN_PLACE,
        "insert_observation": INSERT_OBSERVATION,
        "insert_timer": INSERT_TIMER,
        "update_timer_status": UPDATE_TIMER_STATUS,
        "insert_task": INSERT_TASK,
        "update_task_status": UPDATE_TASK_STATUS,
        "insert_audit": INSERT_AUDIT,
    }


SQLITE = Queries.sqlite()
POSTGRESQL = Queries.postgresql()
