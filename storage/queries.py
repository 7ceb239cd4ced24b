"""Every SQL statement the unit of work runs, by name, in one place.

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

import re
from dataclasses import dataclass
from functools import lru_cache

FIND_OUTCOME = "SELECT outcome FROM outcomes WHERE event_id = :event_id"
EPISODE_HEAD = "SELECT version, audit_hash FROM episodes WHERE id = :id"
EPISODE_IDS = "SELECT id FROM episodes ORDER BY opened_at, id"
EPISODES_OF_PATIENT = """
SELECT id FROM episodes WHERE pathway = :pathway AND patient_ref = :patient_ref
ORDER BY opened_at, id"""
OBSERVATIONS = """
SELECT id, facts, at, actor, source FROM observations WHERE episode_id = :id ORDER BY seq"""
AUDIT_RECORDS = """
SELECT episode_id, seq, event_id, kind, actor, at, recorded_at, state_from, state_to, payload,
       prev_hash, hash
FROM audit_log WHERE episode_id = :id ORDER BY seq"""

# {agg}: json_group_array(json_array(...)) on SQLite, json_agg(json_build_array(...)) on PG.
_SNAPSHOT = """
SELECT e.id, e.definition_version, e.state, e.opened_at, e.state_entered_at, e.care_started_at,
       e.remembered, e.closed_reason, e.patient_ref, e.label, e.audit_hash, e.version,
       e.facts, e.links,
       (SELECT {agg}({arr}(t.key, t.rule_id, t.due_at, t.status, t.state, t."order", t.position,
                           t.set_at))
        FROM timers t WHERE t.episode_id = e.id),
       (SELECT {agg}({arr}(k.key, k.rule_id, k.kind, k.text, k.created_at, k.status, k.state,
                           k.position, k.note))
        FROM tasks k WHERE k.episode_id = e.id)
FROM episodes e WHERE e.id = :id"""

# Ties on due time break on episode id in code-point order, as InMemoryUnitOfWork sorts.
_DUE_TIMERS = """
SELECT episode_id, key, rule_id, due_at, status, state, "order", set_at FROM timers
WHERE status = 'pending' AND due_at <= :now {episode}
ORDER BY due_at, episode_id {collate}, "order" LIMIT :limit"""

INSERT_EPISODE = """
INSERT INTO episodes (id, definition_version, pathway, state, opened_at, state_entered_at,
    care_started_at, remembered, closed_reason, patient_ref, label, audit_hash, version,
    facts, links, next_due_at)
VALUES (:id, :definition_version, :pathway, :state, :opened_at, :state_entered_at,
    :care_started_at, :remembered, :closed_reason, :patient_ref, :label, :audit_hash, :version,
    :facts, :links, :next_due_at)"""
UPDATE_EPISODE = """
UPDATE episodes SET state = :state, state_entered_at = :state_entered_at,
    definition_version = :definition_version, care_started_at = :care_started_at,
    remembered = :remembered, closed_reason = :closed_reason, audit_hash = :audit_hash,
    version = :version, facts = :facts, links = :links, next_due_at = :next_due_at
WHERE id = :id AND version = :expected_version"""
# The same without the worklist index's columns: on SQLite, naming an indexed column in SET
# rewrites its index entry even when the value is unchanged (one more page per commit).
UPDATE_EPISODE_IN_PLACE = """
UPDATE episodes SET remembered = :remembered, closed_reason = :closed_reason,
    audit_hash = :audit_hash, version = :version, facts = :facts, links = :links
WHERE id = :id AND version = :expected_version"""
EPISODE_VERSION = "SELECT version FROM episodes WHERE id = :id"
INSERT_OBSERVATION = """
INSERT INTO observations (id, episode_id, seq, facts, at, recorded_at, actor, source)
VALUES (:obs_id, :id, :version, :obs_facts, :obs_at, :recorded_at, :obs_actor, :obs_source)"""
INSERT_TIMER = """
INSERT INTO timers (episode_id, key, rule_id, due_at, status, state, "order", position, fired_at,
    set_at)
VALUES (:episode_id, :key, :rule_id, :due_at, :status, :state, :order, :position, :fired_at,
    :set_at)"""
UPDATE_TIMER_STATUS = """
UPDATE timers SET status = :status, fired_at = :fired_at
WHERE episode_id = :episode_id AND key = :key"""
INSERT_TASK = """
INSERT INTO tasks (episode_id, key, rule_id, kind, text, created_at, status, state, position)
VALUES (:episode_id, :key, :rule_id, :kind, :text, :created_at, :status, :state, :position)"""
UPDATE_TASK_STATUS = """
UPDATE tasks SET status = :status, note = :note, updated_at = :updated_at
WHERE episode_id = :episode_id AND key = :key"""
INSERT_AUDIT = """
INSERT INTO audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at, state_from,
    state_to, definition_version, payload, prev_hash, hash)
VALUES (:id, :version, :event_id, :kind, :actor, :at, :recorded_at, :state_from, :state_to,
    :definition_version, :payload, :prev_hash, :hash)"""
INSERT_OUTCOME = """
INSERT INTO outcomes (event_id, episode_id, outcome) VALUES (:event_id, :id, :outcome)"""

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
    "observation": """
    INSERT INTO observations (episode_id, seq, id, facts, at, recorded_at, actor, source)
    SELECT ep.id, :version, :obs_id, CAST(:obs_facts AS json), :obs_at, :recorded_at,
           :obs_actor, :obs_source
    FROM ep""",
    "new_timers": """
    INSERT INTO timers (episode_id, key, rule_id, due_at, status, state, "order", position,
                        fired_at, set_at)
    SELECT ep.id, t.key, t.rule_id, t.due_at, t.status, t.state, t.ord, t.pos, t.fired_at,
           t.set_at
    FROM ep, unnest(CAST(:t_key AS text[]), CAST(:t_rule_id AS text[]),
                    CAST(:t_due_at AS timestamptz[]), CAST(:t_status AS text[]),
                    CAST(:t_state AS text[]), CAST(:t_order AS int[]),
                    CAST(:t_position AS int[]), CAST(:t_fired_at AS timestamptz[]),
                    CAST(:t_set_at AS timestamptz[]))
         AS t(key, rule_id, due_at, status, state, ord, pos, fired_at, set_at)""",
    "timer_status": """
    UPDATE timers SET status = u.status, fired_at = u.fired_at
    FROM ep, unnest(CAST(:u_key AS text[]), CAST(:u_status AS text[]),
                    CAST(:u_fired_at AS timestamptz[])) AS u(key, status, fired_at)
    WHERE timers.episode_id = ep.id AND timers.key = u.key""",
    "new_tasks": """
    INSERT INTO tasks (episode_id, key, rule_id, kind, text, created_at, status, state, position)
    SELECT ep.id, k.key, k.rule_id, k.kind, k.text, k.created_at, k.status, k.state, k.pos
    FROM ep, unnest(CAST(:k_key AS text[]), CAST(:k_rule_id AS text[]),
                    CAST(:k_kind AS text[]), CAST(:k_text AS text[]),
                    CAST(:k_created_at AS timestamptz[]), CAST(:k_status AS text[]),
                    CAST(:k_state AS text[]), CAST(:k_position AS int[]))
         AS k(key, rule_id, kind, text, created_at, status, state, pos)""",
    "task_status": """
    UPDATE tasks SET status = v.status, note = v.note, updated_at = v.updated_at
    FROM ep, unnest(CAST(:v_key AS text[]), CAST(:v_status AS text[]), CAST(:v_note AS text[]),
                    CAST(:v_updated_at AS timestamptz[])) AS v(key, status, note, updated_at)
    WHERE tasks.episode_id = ep.id AND tasks.key = v.key""",
}
_PG_AUDIT_AND_OUTCOME = """
audit AS (
    INSERT INTO audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at, state_from,
                           state_to, definition_version, payload, prev_hash, hash)
    SELECT ep.id, :version, :event_id, :kind, :actor, :at, :recorded_at, :state_from,
           :state_to, :definition_version, :payload, :prev_hash, :hash
    FROM ep),
outcome AS (
    INSERT INTO outcomes (event_id, episode_id, outcome)
    SELECT :event_id, ep.id, CAST(:outcome AS json) FROM ep)
SELECT count(*) FROM ep"""


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
    episode_version: str
    episode_snapshot: str
    episode_snapshots: str  # PostgreSQL only: many episodes in one round trip (:ids array)
    episode_ids: str
    episodes_of_patient: str
    observations: str
    audit_records: str
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
    insert_outcome: str

    @classmethod
    def sqlite(cls) -> Queries:
        return cls(**_common("json_group_array", "json_array", ""))

    @classmethod
    def postgresql(cls) -> Queries:
        common = _common("json_agg", "json_build_array", 'COLLATE "C"')
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
        "insert_outcome": INSERT_OUTCOME,
    }


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def pyformat(sql: str) -> str:
    """``:name`` parameters (sqlite3's style) rewritten to psycopg's ``%(name)s``."""
    return _NAMED.sub(r"%(\1)s", sql)


SQLITE = Queries.sqlite()
POSTGRESQL = Queries.postgresql()
