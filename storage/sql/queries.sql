-- Every hand-written SQL statement of carepath, by name (loaded by storage/sql/__init__.py).
--
-- Each statement starts with a "-- name --" line, then optional "-- " lines saying what it is
-- for, then the SQL up to the next header. Parameters are :name (sqlite3's named style),
-- rewritten once to psycopg's %(name)s for PostgreSQL. A name ending "@postgresql" or
-- "@sqlite" is that dialect's version of a statement. {braces} mark the places the code fills
-- from named fragments (the worklist filters, the dialect's JSON functions).


-- find_outcome --
-- The stored outcome of an event id (idempotency), with who sent its key and the request's hash:
-- on the event's audit entry (migration 0012), one probe of ix_audit_log_event_id.
SELECT outcome, caller, idempotency_key, request_hash FROM audit_log
WHERE event_id = :event_id AND outcome IS NOT NULL

-- episode_head --
-- An episode's version and audit hash: is the cached snapshot still true?
SELECT version, audit_hash FROM episodes WHERE id = :id

-- episode_heads --
-- Many episodes' versions and audit hashes in one statement: a trusted group (storage.group)
-- checks the cached snapshots it read but did not write. {ids}: the dialect's list of ids.
SELECT id, version, audit_hash FROM episodes WHERE id {ids}

-- episode_version --
SELECT version FROM episodes WHERE id = :id

-- episode_ids --
SELECT id FROM episodes ORDER BY opened_at, id

-- episodes_of_patient --
-- A patient's episodes on one pathway (enrolment links a live one instead of opening another).
SELECT id FROM episodes WHERE pathway = :pathway AND patient_ref = :patient_ref
ORDER BY opened_at, id

-- observations --
SELECT id, facts, at, actor, source FROM observations WHERE episode_id = :id ORDER BY seq

-- audit_records --
SELECT episode_id, seq, event_id, kind, actor, at, recorded_at, state_from, state_to, payload,
       prev_hash, hash
FROM audit_log WHERE episode_id = :id ORDER BY seq

-- audit_records_of_many --
-- The audit rows of many episodes in one statement, in chain order within each: a replay
-- verifies what it stored, a chunk at a time (storage.bulk_load). {ids}: the dialect's list.
SELECT episode_id, seq, event_id, kind, actor, at, recorded_at, state_from, state_to, payload,
       prev_hash, hash
FROM audit_log WHERE episode_id {ids} ORDER BY episode_id, seq

-- episode_snapshot --
-- An episode with its timers and tasks in one row.
-- {agg}({arr}(...)): json_group_array(json_array(...)) on SQLite, json_agg(json_build_array(...))
-- on PostgreSQL; the batch reads many at once with WHERE e.id = ANY(:ids).
SELECT e.id, e.definition_version, e.state, e.opened_at, e.state_entered_at, e.care_started_at,
       e.remembered, e.closed_reason, e.patient_ref, e.label, e.audit_hash, e.version,
       e.facts, e.links, e.owner,
       e.appointment_window, e.appointment_on, e.appointment_status, e.appointment_reason,
       e.appointment_deviation,
       (SELECT {agg}({arr}(t.key, t.rule_id, t.due_at, t.status, t.state, t."order", t.position,
                           t.set_at))
        FROM timers t WHERE t.episode_id = e.id),
       (SELECT {agg}({arr}(k.key, k.rule_id, k.kind, k.text, k.created_at, k.status, k.state,
                           k.position, k.note))
        FROM tasks k WHERE k.episode_id = e.id)
FROM episodes e WHERE e.id = :id

-- verify_rows_snapshot@postgresql --
-- audit verify reads one snapshot of the whole database and writes nothing.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY

-- verify_rows_episodes --
-- audit verify (storage/audit_rows.py): the next chunk of episode rows, keyset-paged by id.
SELECT id, definition_version, pathway, state, opened_at, state_entered_at, care_started_at,
       remembered, links, closed_reason, patient_ref, label, audit_hash, version, facts,
       next_due_at, owner, appointment_window, appointment_on, appointment_status,
       appointment_reason, appointment_deviation
FROM episodes WHERE id > :after ORDER BY id LIMIT :limit

-- verify_rows_episode --
-- audit verify --episode: the one episode's row.
SELECT id, definition_version, pathway, state, opened_at, state_entered_at, care_started_at,
       remembered, links, closed_reason, patient_ref, label, audit_hash, version, facts,
       next_due_at, owner, appointment_window, appointment_on, appointment_status,
       appointment_reason, appointment_deviation
FROM episodes WHERE id = :id

-- verify_rows_audit --
-- The audit entries of the chunk's episodes; {range}: one of the verify_rows_range fragments,
-- so that consecutive chunks cover every episode id (rows of no episode row are read too).
SELECT episode_id, payload, hash FROM audit_log WHERE {range} ORDER BY episode_id, seq

-- verify_rows_range --
-- Fragment: the ids after the previous chunk's last, up to this chunk's last.
episode_id > :after AND episode_id <= :last

-- verify_rows_rest --
-- Fragment: the last chunk: every id after the previous chunk's last.
episode_id > :after

-- verify_rows_one --
-- Fragment: one episode (audit verify --episode).
episode_id = :id

-- verify_rows_observations --
SELECT episode_id, seq, id, facts, at, recorded_at, actor, source FROM observations
WHERE {range}

-- verify_rows_timers --
SELECT episode_id, key, status, due_at, rule_id, state, "order", position, fired_at, set_at
FROM timers WHERE {range}

-- verify_rows_tasks --
SELECT episode_id, key, status, note, text, rule_id, kind, state, created_at, position,
       updated_at
FROM tasks WHERE {range}

-- verify_chains_audit --
-- The chain check on the same stream (storage/audit_rows.py ``stream_chains``): every column
-- of the chunk's audit entries, in chain order.
SELECT episode_id, seq, event_id, kind, actor, at, recorded_at, state_from, state_to, payload,
       prev_hash, hash
FROM audit_log WHERE {range} ORDER BY episode_id, seq

-- due_timers --
-- Ties on due time break on episode id in code-point order, as InMemoryUnitOfWork sorts.
-- {episode}: empty, or AND episode_id = :episode_id; {collate}: COLLATE "C" on PostgreSQL.
SELECT episode_id, key, rule_id, due_at, status, state, "order", set_at FROM timers
WHERE status = 'pending' AND due_at <= :now {episode}
ORDER BY due_at, episode_id {collate}, "order" LIMIT :limit

-- insert_episode --
INSERT INTO episodes (id, definition_version, pathway, state, opened_at, state_entered_at,
    care_started_at, remembered, closed_reason, patient_ref, label, audit_hash, version,
    facts, links, next_due_at, owner, appointment_window, appointment_on, appointment_status,
    appointment_reason, appointment_deviation)
VALUES (:id, :definition_version, :pathway, :state, :opened_at, :state_entered_at,
    :care_started_at, :remembered, :closed_reason, :patient_ref, :label, :audit_hash, :version,
    :facts, :links, :next_due_at, :owner, :appointment_window, :appointment_on,
    :appointment_status, :appointment_reason, :appointment_deviation)

-- update_episode --
-- The write guarded by the version the decision was made on, and by its audit hash (the
-- change's prev_hash): a group that trusted its cached snapshots (storage.group) relies on it.
UPDATE episodes SET state = :state, state_entered_at = :state_entered_at,
    definition_version = :definition_version, care_started_at = :care_started_at,
    remembered = :remembered, closed_reason = :closed_reason, audit_hash = :audit_hash,
    version = :version, facts = :facts, links = :links, next_due_at = :next_due_at,
    owner = :owner, appointment_window = :appointment_window, appointment_on = :appointment_on,
    appointment_status = :appointment_status, appointment_reason = :appointment_reason,
    appointment_deviation = :appointment_deviation
WHERE id = :id AND version = :expected_version AND audit_hash = :prev_hash

-- update_episode_in_place --
-- The same without the worklist index's columns: on SQLite, naming an indexed column in SET
-- rewrites its index entry even when the value is unchanged (one more page per commit).
UPDATE episodes SET remembered = :remembered, closed_reason = :closed_reason,
    audit_hash = :audit_hash, version = :version, facts = :facts, links = :links
WHERE id = :id AND version = :expected_version AND audit_hash = :prev_hash

-- insert_observation --
INSERT INTO observations (id, episode_id, seq, facts, at, recorded_at, actor, source)
VALUES (:obs_id, :id, :version, :obs_facts, :obs_at, :recorded_at, :obs_actor, :obs_source)

-- insert_timer --
INSERT INTO timers (episode_id, key, rule_id, due_at, status, state, "order", position, fired_at,
    set_at)
VALUES (:episode_id, :key, :rule_id, :due_at, :status, :state, :order, :position, :fired_at,
    :set_at)

-- update_timer_status --
UPDATE timers SET status = :status, fired_at = :fired_at
WHERE episode_id = :episode_id AND key = :key

-- insert_task --
INSERT INTO tasks (episode_id, key, rule_id, kind, text, created_at, status, state, position)
VALUES (:episode_id, :key, :rule_id, :kind, :text, :created_at, :status, :state, :position)

-- update_task_status --
UPDATE tasks SET status = :status, note = :note, updated_at = :updated_at
WHERE episode_id = :episode_id AND key = :key

-- insert_audit --
-- The audit entry with its command's outcome (migration 0012: no outcomes table).
INSERT INTO audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at, state_from,
    state_to, definition_version, payload, prev_hash, hash, outcome, caller, idempotency_key,
    request_hash)
VALUES (:id, :version, :event_id, :kind, :actor, :at, :recorded_at, :state_from, :state_to,
    :definition_version, :payload, :prev_hash, :hash, :outcome, :caller, :idempotency_key,
    :request_hash)

-- pg_save_observation --
-- PostgreSQL: one part of a change written as one statement, a CTE reading FROM ep
-- (the guarded episode write), so it writes nothing when the version moved.
    INSERT INTO observations (episode_id, seq, id, facts, at, recorded_at, actor, source)
    SELECT ep.id, :version, :obs_id, CAST(:obs_facts AS json), :obs_at, :recorded_at,
           :obs_actor, :obs_source
    FROM ep

-- pg_save_new_timers --
-- PostgreSQL: one part of a change written as one statement, a CTE reading FROM ep
-- (the guarded episode write), so it writes nothing when the version moved.
    INSERT INTO timers (episode_id, key, rule_id, due_at, status, state, "order", position,
                        fired_at, set_at)
    SELECT ep.id, t.key, t.rule_id, t.due_at, t.status, t.state, t.ord, t.pos, t.fired_at,
           t.set_at
    FROM ep, unnest(CAST(:t_key AS text[]), CAST(:t_rule_id AS text[]),
                    CAST(:t_due_at AS timestamptz[]), CAST(:t_status AS text[]),
                    CAST(:t_state AS text[]), CAST(:t_order AS int[]),
                    CAST(:t_position AS int[]), CAST(:t_fired_at AS timestamptz[]),
                    CAST(:t_set_at AS timestamptz[]))
         AS t(key, rule_id, due_at, status, state, ord, pos, fired_at, set_at)

-- pg_save_timer_status --
-- PostgreSQL: one part of a change written as one statement, a CTE reading FROM ep
-- (the guarded episode write), so it writes nothing when the version moved.
    UPDATE timers SET status = u.status, fired_at = u.fired_at
    FROM ep, unnest(CAST(:u_key AS text[]), CAST(:u_status AS text[]),
                    CAST(:u_fired_at AS timestamptz[])) AS u(key, status, fired_at)
    WHERE timers.episode_id = ep.id AND timers.key = u.key

-- pg_save_new_tasks --
-- PostgreSQL: one part of a change written as one statement, a CTE reading FROM ep
-- (the guarded episode write), so it writes nothing when the version moved.
    INSERT INTO tasks (episode_id, key, rule_id, kind, text, created_at, status, state, position)
    SELECT ep.id, k.key, k.rule_id, k.kind, k.text, k.created_at, k.status, k.state, k.pos
    FROM ep, unnest(CAST(:k_key AS text[]), CAST(:k_rule_id AS text[]),
                    CAST(:k_kind AS text[]), CAST(:k_text AS text[]),
                    CAST(:k_created_at AS timestamptz[]), CAST(:k_status AS text[]),
                    CAST(:k_state AS text[]), CAST(:k_position AS int[]))
         AS k(key, rule_id, kind, text, created_at, status, state, pos)

-- pg_save_task_status --
-- PostgreSQL: one part of a change written as one statement, a CTE reading FROM ep
-- (the guarded episode write), so it writes nothing when the version moved.
    UPDATE tasks SET status = v.status, note = v.note, updated_at = v.updated_at
    FROM ep, unnest(CAST(:v_key AS text[]), CAST(:v_status AS text[]), CAST(:v_note AS text[]),
                    CAST(:v_updated_at AS timestamptz[])) AS v(key, status, note, updated_at)
    WHERE tasks.episode_id = ep.id AND tasks.key = v.key

-- pg_save_notices --
-- PostgreSQL: the change's webhook outbox rows (storage/outbox.py), one per notice and
-- subscription that wants its type, in the same statement, due at the database's clock.
    INSERT INTO webhook_messages (id, subscription_id, event_type, episode_id, payload,
                                  patient_ref, status, attempts, created_at, next_attempt_at)
    SELECT n.notice_id || '.' || s.id, s.id, n.event_type, ep.id, n.payload,
           CASE WHEN s.include_patient_ref THEN n.patient_ref END, 'pending', 0,
           statement_timestamp(), statement_timestamp()
    FROM ep, unnest(CAST(:n_notice_id AS text[]), CAST(:n_event_type AS text[]),
                    CAST(:n_payload AS text[]), CAST(:n_patient_ref AS text[]),
                    CAST(:n_pattern AS text[]))
         AS n(notice_id, event_type, payload, patient_ref, pattern)
    JOIN webhook_subscriptions s ON s.events LIKE n.pattern

-- pg_save_audit_and_outcome --
-- PostgreSQL: the last parts of the one-statement change, and its result (1: applied).
audit AS (
    INSERT INTO audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at, state_from,
                           state_to, definition_version, payload, prev_hash, hash, outcome,
                           caller, idempotency_key, request_hash)
    SELECT ep.id, :version, :event_id, :kind, :actor, :at, :recorded_at, :state_from,
           :state_to, :definition_version, :payload, :prev_hash, :hash,
           CAST(:outcome AS json), :caller, :idempotency_key, :request_hash
    FROM ep)
SELECT count(*) FROM ep

-- record_definition --
-- {document}: the JSON document parameter (cast to json on PostgreSQL); {now}: the
-- database's clock (storage reads none of its own).
INSERT INTO definitions (version, id, content_hash, document, first_seen_at)
VALUES (:version, :id, :content_hash, {document}, {now})
ON CONFLICT (version) DO NOTHING

-- alembic_revisions --
-- The revision a database is at, read without Alembic (storage.database.ensure_schema).
SELECT version_num FROM alembic_version

-- definitions_stored --
-- Every stored definition version's document, oldest first (storage.definitions).
SELECT version, document FROM definitions ORDER BY first_seen_at, version

-- definition_stored --
SELECT version, document FROM definitions WHERE version = :version

-- token_insert --
INSERT INTO tokens (id, name, role, token_hash, created_at)
VALUES (:id, :name, :role, :token_hash, :created_at)

-- token_by_hash --
SELECT id, name, role, created_at, revoked_at, last_used_at FROM tokens WHERE token_hash = :token_hash

-- token_by_id --
SELECT id, name, role, created_at, revoked_at, last_used_at FROM tokens WHERE id = :id

-- token_by_name --
SELECT id FROM tokens WHERE name = :name

-- token_all --
SELECT id, name, role, created_at, revoked_at, last_used_at FROM tokens ORDER BY created_at, id

-- token_revoke --
UPDATE tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL

-- token_touch --
UPDATE tokens SET last_used_at = :now WHERE id = :id

-- worklist_page --
-- {hint}: an INDEXED BY clause or nothing; {where}: the filters, joined with AND (fragments
-- below); {order}: e.next_due_at, e.id (dated part) or e.id (undated part); sorted by the
-- booked day, e.appointment_on, e.id (episodes with an appointment to attend) or e.id.
SELECT e.id, e.state, e.patient_ref, e.label, e.next_due_at, e.opened_at, e.state_entered_at,
       e.definition_version, e.version, e.owner, e.appointment_window, e.appointment_on,
       e.appointment_status, e.appointment_reason, e.appointment_deviation
FROM episodes e{hint}
WHERE {where}
ORDER BY {order}
LIMIT :limit

-- worklist_escalated_among --
-- {ids}: one :eN parameter per episode id.
SELECT DISTINCT episode_id FROM tasks WHERE kind = 'escalation' AND status = 'open' AND episode_id IN ({ids})

-- worklist_escalations_up_to --
SELECT count(*) FROM (SELECT 1 FROM tasks WHERE kind = 'escalation' AND status = 'open' LIMIT :cap) AS capped

-- worklist_is_escalated --
-- Filter fragment: escalated (few open escalations: list them all).
e.id IN (SELECT episode_id FROM tasks WHERE kind = 'escalation' AND status = 'open')

-- worklist_has_escalation --
-- Filter fragment: escalated (many: test each row; a scalar subquery, because PostgreSQL
-- turns EXISTS and IN into a join that sorts every escalated episode).
(SELECT count(*) FROM tasks t WHERE t.episode_id = e.id AND t.kind = 'escalation' AND status = 'open') > 0

-- claim@postgresql --
-- Claim episodes with due timers under a lease, skipping rows another worker is claiming.
WITH picked AS (
    SELECT id FROM episodes
    WHERE next_due_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_due_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED)
UPDATE episodes SET claimed_by = :worker, lease_until = :until
FROM picked WHERE episodes.id = picked.id
RETURNING episodes.id

-- claim@sqlite --
-- The same, on SQLite (run in BEGIN IMMEDIATE: one writer at a time).
UPDATE episodes SET claimed_by = :worker, lease_until = :until
WHERE id IN (
    SELECT id FROM episodes
    WHERE next_due_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_due_at
    LIMIT :limit)
RETURNING id

-- release --
UPDATE episodes SET claimed_by = NULL, lease_until = NULL
WHERE id = :id AND claimed_by = :worker

-- release_many@postgresql --
-- A batch's claims released in one statement (:ids an array).
UPDATE episodes SET claimed_by = NULL, lease_until = NULL
WHERE id = ANY(:ids) AND claimed_by = :worker

-- release_many@sqlite --
-- The same on SQLite (:ids a JSON array).
UPDATE episodes SET claimed_by = NULL, lease_until = NULL
WHERE id IN (SELECT value FROM json_each(:ids)) AND claimed_by = :worker

-- release_all --
UPDATE episodes SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = :worker

-- batch_update_episodes@postgresql --
-- A timer batch's episode rows in one statement (storage.batch_arrays): one element per
-- episode, its last change's values, guarded by the version and audit hash of its first; the
-- claims of :worker (NULL: none) on them are released in the same write.
UPDATE episodes SET claimed_by = CASE WHEN claimed_by = :worker THEN NULL ELSE claimed_by END,
    lease_until = CASE WHEN claimed_by = :worker THEN NULL ELSE lease_until END,
    state = u.state, state_entered_at = u.state_entered_at,
    definition_version = u.definition_version, care_started_at = u.care_started_at,
    remembered = CAST(u.remembered AS json), closed_reason = u.closed_reason,
    audit_hash = u.audit_hash, version = u.version, facts = CAST(u.facts AS json),
    links = CAST(u.links AS json), next_due_at = u.next_due_at, owner = u.owner,
    appointment_window = u.appointment_window, appointment_on = u.appointment_on,
    appointment_status = u.appointment_status, appointment_reason = u.appointment_reason,
    appointment_deviation = u.appointment_deviation
FROM unnest(CAST(:id AS text[]), CAST(:expected_version AS int[]), CAST(:prev_hash AS text[]),
            CAST(:state AS text[]), CAST(:state_entered_at AS timestamptz[]),
            CAST(:definition_version AS text[]), CAST(:care_started_at AS timestamptz[]),
            CAST(:remembered AS text[]), CAST(:closed_reason AS text[]),
            CAST(:audit_hash AS text[]), CAST(:version AS int[]), CAST(:facts AS text[]),
            CAST(:links AS text[]), CAST(:next_due_at AS timestamptz[]), CAST(:owner AS text[]),
            CAST(:appointment_window AS text[]), CAST(:appointment_on AS text[]),
            CAST(:appointment_status AS text[]), CAST(:appointment_reason AS text[]),
            CAST(:appointment_deviation AS boolean[]))
     AS u(id, expected_version, prev_hash, state, state_entered_at, definition_version,
          care_started_at, remembered, closed_reason, audit_hash, version, facts, links,
          next_due_at, owner, appointment_window, appointment_on, appointment_status,
          appointment_reason, appointment_deviation)
WHERE episodes.id = u.id AND episodes.version = u.expected_version
  AND episodes.audit_hash = u.prev_hash

-- batch_insert_observations@postgresql --
INSERT INTO observations (id, episode_id, seq, facts, at, recorded_at, actor, source)
SELECT o.obs_id, o.id, o.version, CAST(o.obs_facts AS json), o.obs_at, o.recorded_at,
       o.obs_actor, o.obs_source
FROM unnest(CAST(:obs_id AS text[]), CAST(:id AS text[]), CAST(:version AS int[]),
            CAST(:obs_facts AS text[]), CAST(:obs_at AS timestamptz[]),
            CAST(:recorded_at AS timestamptz[]), CAST(:obs_actor AS text[]),
            CAST(:obs_source AS text[]))
     AS o(obs_id, id, version, obs_facts, obs_at, recorded_at, obs_actor, obs_source)

-- batch_insert_timers@postgresql --
INSERT INTO timers (episode_id, key, rule_id, due_at, status, state, "order", position,
                    fired_at, set_at)
SELECT * FROM unnest(CAST(:episode_id AS text[]), CAST(:key AS text[]),
                     CAST(:rule_id AS text[]), CAST(:due_at AS timestamptz[]),
                     CAST(:status AS text[]), CAST(:state AS text[]), CAST(:order AS int[]),
                     CAST(:position AS int[]), CAST(:fired_at AS timestamptz[]),
                     CAST(:set_at AS timestamptz[]))

-- batch_timer_status@postgresql --
-- One element per timer (the last status the batch gave it).
UPDATE timers SET status = u.status, fired_at = u.fired_at
FROM unnest(CAST(:episode_id AS text[]), CAST(:key AS text[]), CAST(:status AS text[]),
            CAST(:fired_at AS timestamptz[])) AS u(episode_id, key, status, fired_at)
WHERE timers.episode_id = u.episode_id AND timers.key = u.key

-- batch_copy_tasks@postgresql --
-- A timer batch's new tasks and audit entries are copied in (storage.batch_arrays):
-- COPY formats its rows in psycopg's C code and skips the executor's per-row INSERT work.
COPY tasks (episode_id, key, rule_id, kind, text, created_at, status, state, position) FROM STDIN

-- batch_task_status@postgresql --
-- One element per task (the last status the batch gave it).
UPDATE tasks SET status = v.status, note = v.note, updated_at = v.updated_at
FROM unnest(CAST(:episode_id AS text[]), CAST(:key AS text[]), CAST(:status AS text[]),
            CAST(:note AS text[]), CAST(:updated_at AS timestamptz[]))
     AS v(episode_id, key, status, note, updated_at)
WHERE tasks.episode_id = v.episode_id AND tasks.key = v.key

-- batch_copy_audit@postgresql --
-- Each audit entry with its command's outcome (migration 0012).
COPY audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at, state_from, state_to,
                definition_version, payload, prev_hash, hash, outcome, caller, idempotency_key,
                request_hash) FROM STDIN

-- park_episode --
-- A timer that failed: the episode is left alone until the backoff ends (its lease).
UPDATE episodes SET claimed_by = NULL, lease_until = :retry_at WHERE id = :id

-- attempts --
SELECT attempts FROM timers WHERE episode_id = :id AND key = :key

-- park_timer --
-- ... and the timer records the attempt and the error, and stays pending (parked).
UPDATE timers SET attempts = attempts + 1, last_error = :error
WHERE episode_id = :id AND key = :key

-- register --
INSERT INTO workers (id, host, pid, started_at, last_seen, fired)
VALUES (:id, :host, :pid, :now, :now, 0)

-- heartbeat --
UPDATE workers SET last_seen = :now, fired = fired + :fired WHERE id = :id

-- clock_ok --
-- A heartbeat on a checked clock: a refusal recorded earlier is over (migration 0009).
UPDATE workers SET clock_skew_seconds = NULL, clock_refusal = NULL
WHERE id = :id AND clock_refusal IS NOT NULL

-- clock_refused --
-- A worker whose host clock is too far off the database's: seen (at the database's time), not
-- running; the skew and the refusal for `scheduler status` (migration 0009).
UPDATE workers SET last_seen = :now, clock_skew_seconds = :skew, clock_refusal = :refusal
WHERE id = :id

-- stopped --
UPDATE workers SET stopped_at = :now, last_seen = :now WHERE id = :id

-- release_stale --
-- Claims of workers that stopped heart-beating are released before their leases run out.
UPDATE episodes SET claimed_by = NULL, lease_until = NULL
WHERE claimed_by IN (
    SELECT id FROM workers WHERE stopped_at IS NULL AND last_seen < :stale_before)

-- workers --
SELECT id, host, pid, started_at, last_seen, stopped_at, fired, clock_skew_seconds, clock_refusal
FROM workers
ORDER BY started_at DESC

-- count_due --
SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= :now

-- count_parked --
SELECT count(*) FROM timers WHERE status = 'pending' AND attempts > 0

-- parked --
SELECT episode_id, key, due_at, attempts, last_error FROM timers
WHERE status = 'pending' AND attempts > 0 ORDER BY due_at LIMIT 20

-- count_escalations --
SELECT count(*) FROM tasks WHERE kind = 'escalation' AND status = 'open'

-- oldest_due --
SELECT min(due_at) FROM timers WHERE status = 'pending' AND due_at <= :now

-- session_insert --
-- A page session: the keyed hash of its random id (the cookie holds the id), the token it opened.
INSERT INTO sessions (id_hash, token_id, created_at, last_seen_at)
VALUES (:id_hash, :token_id, :now, :now)

-- session_find --
-- A session with its token, to check expiry and revocation on every page request.
SELECT s.created_at, s.last_seen_at, t.id, t.name, t.role, t.created_at, t.revoked_at,
       t.last_used_at
FROM sessions s JOIN tokens t ON t.id = s.token_id WHERE s.id_hash = :id_hash

-- session_touch --
UPDATE sessions SET last_seen_at = :now WHERE id_hash = :id_hash

-- session_delete --
DELETE FROM sessions WHERE id_hash = :id_hash

-- session_delete_of_token --
-- A revoked token's sessions end with it.
DELETE FROM sessions WHERE token_id = :token_id

-- session_purge --
-- Sessions past their idle or absolute expiry.
DELETE FROM sessions WHERE last_seen_at < :idle_before OR created_at < :created_before

-- audit_log_chunk --
-- The XES event log (carepath/xes.py): one chunk of audit entries in (episode, seq) order,
-- after a keyset position, each with its episode's pathway and patient ref, so that 100,000
-- episodes stream in bounded memory. {pathway}: empty, or AND e.pathway = :pathway.
-- CROSS JOIN keeps SQLite walking the log's primary key (with a pathway it would otherwise
-- start from the pathway index and sort every entry of the pathway for each chunk).
SELECT a.episode_id, e.pathway, e.patient_ref, a.seq, a.kind, a.actor, a.at, a.payload
FROM audit_log a CROSS JOIN episodes e
WHERE e.id = a.episode_id AND (a.episode_id, a.seq) > (:after_id, :after_seq) {pathway}
ORDER BY a.episode_id, a.seq LIMIT :limit
-- database_now@postgresql --
-- The database server's clock: the scheduler's "now" on PostgreSQL (scheduler/clock.py).
SELECT statement_timestamp()

-- may_change_schema@postgresql --
-- Whether the connected role may create in its schema (the owner) or not (the app role).
SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), false), current_user

-- role_exists@postgresql --
SELECT 1 FROM pg_roles WHERE rolname = :name

-- create_role@postgresql --
-- storage/roles.py: {name} is a checked role name; a role that can log in and nothing more.
CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE

-- role_password@postgresql --
-- {verifier} is a SCRAM verifier computed by the client: the password never reaches the server.
ALTER ROLE {name} LOGIN PASSWORD '{verifier}'

-- connected_as_owner_of_app@postgresql --
-- Who migrates, and whether the application role it grants for exists.
SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :app)

-- roles_schema@postgresql --
-- Run by an administrator in the carepath database (storage/roles.py; {owner}, {app} and
-- {schema} are the role and schema names): who may create in the schema.
REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA {schema} TO {owner};
GRANT USAGE ON SCHEMA {schema} TO {app};
REVOKE CREATE ON SCHEMA {schema} FROM {app}

-- roles_hand_over@postgresql --
-- ... and objects made before the owner existed (migrated by another user) handed to it.
DO $$
DECLARE obj record;
BEGIN
  FOR obj IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
             WHERE c.relnamespace = '{schema}'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
               AND pg_get_userbyid(c.relowner) <> '{owner}' LOOP
    EXECUTE format('ALTER %s %s OWNER TO {owner}',
                   CASE obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                   ELSE 'TABLE' END, obj.name);
  END LOOP;
  FOR obj IN SELECT p.oid::regprocedure AS name FROM pg_proc p
             WHERE p.pronamespace = '{schema}'::regnamespace
               AND pg_get_userbyid(p.proowner) <> '{owner}'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO {owner}', obj.name);
  END LOOP;
END $$

-- roles_grants@postgresql --
-- Run by the owner after each migration (idempotent): the app's rights on every table, the
-- defaults for tables later migrations add, then the exceptions: audit_log append-only (INSERT
-- and SELECT), alembic_version read-only.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {app};
REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.audit_log FROM {app};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.alembic_version FROM {app}

-- measure_history@sqlite --
-- Every audit entry of one pathway's episodes, in (episode, seq) order, for the measures' one
-- streaming pass (storage/measures.py): the indexed columns, the facts the entry recorded,
-- and from the canonical payload (sorted keys) only its small parts, cut in SQL so that the
-- rules' evidence is never sent: the transitions (the last key but a booking's, which never
-- moves: only when not empty), the
-- refusals (only requests refuse: between "refused" and "rules") and {rule_flags}, whether
-- each rule the measures name fired (an item of the "rules" list starts
-- {"rule_id":ID,"title": and a task or timer item does not). Byte offsets (BLOB): the
-- payload may hold non-ASCII text. CROSS JOIN keeps SQLite walking this pathway's episodes
-- in id order (ix_episodes_pathway_id, migration 0011) and seeking each one's entries by
-- the audit_log key: no other pathway's rows are read, and no sort holds every row.
SELECT e.id, e.patient_ref, e.closed_reason, a.seq, a.kind, a.at, a.state_from, a.state_to,
       CASE WHEN substr(CAST(a.payload AS BLOB), -17) = CAST('"transitions":[]}' AS BLOB)
            THEN NULL
            WHEN a.kind = 'booking' THEN NULL
            ELSE substr(CAST(a.payload AS BLOB),
                        instr(CAST(a.payload AS BLOB), CAST('"transitions":' AS BLOB)) + 14)
       END,
       CASE WHEN a.kind = 'request' THEN
            substr(CAST(a.payload AS BLOB),
                   instr(CAST(a.payload AS BLOB), CAST('"refused":' AS BLOB)) + 10,
                   instr(CAST(a.payload AS BLOB), CAST(',"rules":[' AS BLOB))
                   - instr(CAST(a.payload AS BLOB), CAST('"refused":' AS BLOB)) - 10)
       END,
       CASE WHEN a.kind = 'timer' THEN a.event_id END,
       o.facts, o.recorded_at {rule_flags}
FROM episodes e
CROSS JOIN audit_log a
LEFT JOIN observations o ON o.episode_id = a.episode_id AND o.seq = a.seq
WHERE e.pathway = :pathway AND a.episode_id = e.id {range}
ORDER BY e.id, a.seq

-- measure_rule_flag@sqlite --
instr(substr(CAST(a.payload AS BLOB), instr(CAST(a.payload AS BLOB), CAST(',"rules":[' AS BLOB))), CAST('{"rule_id":"' || :{param} || '","title":' AS BLOB)) > 0

-- measure_history@postgresql --
-- As the SQLite statement. The payload is read once per row as bytes (convert_to in a LATERAL
-- that OFFSET 0 keeps from being inlined): every mention of a.payload would detoast it again,
-- and text's strpos/substr count characters from the start; bytea's count bytes. About half
-- the server's time on the bench (bench/bench_measures.py), the same rows.
SELECT e.id, e.patient_ref, e.closed_reason, a.seq, a.kind, a.at, a.state_from, a.state_to,
       CASE WHEN substring(x.b from length(x.b) - 16) = '"transitions":[]}'::bytea THEN NULL
            WHEN a.kind = 'booking' THEN NULL
            ELSE substring(x.b from position('"transitions":'::bytea in x.b) + 14)
       END,
       CASE WHEN a.kind = 'request' THEN
            substring(x.b from position('"refused":'::bytea in x.b) + 10
                      for position(',"rules":['::bytea in x.b)
                          - position('"refused":'::bytea in x.b) - 10)
       END,
       CASE WHEN a.kind = 'timer' THEN a.event_id END,
       o.facts::text, o.recorded_at {rule_flags}
FROM episodes e
JOIN audit_log a ON a.episode_id = e.id
CROSS JOIN LATERAL (SELECT convert_to(a.payload, 'UTF8') AS b OFFSET 0) x
LEFT JOIN observations o ON o.episode_id = a.episode_id AND o.seq = a.seq
WHERE e.pathway = :pathway {range}
ORDER BY a.episode_id, a.seq

-- measure_rule_flag@postgresql --
position(convert_to('{"rule_id":"' || :{param} || '","title":', 'UTF8') in substring(x.b from position(',"rules":['::bytea in x.b))) > 0

-- measure_range_after --
-- Fragments of measure_history's {range}: one worker's share of the pathway's episodes, the ids
-- after :after and up to :last (carepath/measures_parallel.py splits at measure_split's ids).
AND e.id > :after

-- measure_range_last --
AND e.id <= :last

-- measure_episode_count --
-- How many episodes the pathway has: the measures' progress total and how its work is split.
SELECT count(*) FROM episodes WHERE pathway = :pathway

-- measure_split --
-- The id of the pathway's episode at :offset in id order (ix_episodes_pathway_id): where one
-- worker's share ends.
SELECT id FROM episodes WHERE pathway = :pathway ORDER BY id LIMIT 1 OFFSET :offset

-- measure_audit_rows --
-- The bench's baseline: the same audit rows, streamed whole, nothing cut or parsed.
SELECT a.episode_id, a.seq, a.kind, a.at, a.state_from, a.state_to, a.payload
FROM episodes e JOIN audit_log a ON a.episode_id = e.id
WHERE e.pathway = :pathway
ORDER BY e.id, a.seq
-- audit_episode_ids --
-- Every episode that has audit entries: a chain whose episode row is gone is a finding.
SELECT DISTINCT episode_id FROM audit_log ORDER BY episode_id

-- webhook_insert_messages --
-- The outbox rows of one notice, one per subscription that wants its type (storage/outbox.py),
-- in the decision's transaction, due at once by the database's clock (text in the format of
-- storage.columns.sqlite_time); :pattern is '%,<type>,%'. The patient reference is kept only
-- for subscriptions created with --include-patient-ref.
INSERT INTO webhook_messages (id, subscription_id, event_type, episode_id, payload, patient_ref,
                              status, attempts, created_at, next_attempt_at)
SELECT :notice_id || '.' || s.id, s.id, :event_type, :episode_id, :payload,
       CASE WHEN s.include_patient_ref THEN :patient_ref END, 'pending', 0,
       strftime('%Y-%m-%d %H:%M:%f000', 'now'), strftime('%Y-%m-%d %H:%M:%f000', 'now')
FROM webhook_subscriptions s WHERE s.events LIKE :pattern

-- webhook_insert_messages@postgresql --
-- The same on PostgreSQL, for a group commit (storage/group_writes.py), which writes each
-- notice with its own statement rather than as a part of its change's.
INSERT INTO webhook_messages (id, subscription_id, event_type, episode_id, payload, patient_ref,
                              status, attempts, created_at, next_attempt_at)
SELECT :notice_id || '.' || s.id, s.id, :event_type, :episode_id, :payload,
       CASE WHEN s.include_patient_ref THEN :patient_ref END, 'pending', 0,
       statement_timestamp(), statement_timestamp()
FROM webhook_subscriptions s WHERE s.events LIKE :pattern

-- webhook_claim@postgresql --
-- Claim due messages under a lease (one attempt in flight per message), skipping rows another
-- worker is claiming; the attempt is counted when claimed, so a killed worker's counts too.
WITH picked AS (
    SELECT id FROM webhook_messages
    WHERE status = 'pending' AND next_attempt_at <= :now
      AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_attempt_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED)
UPDATE webhook_messages SET claimed_by = :worker, lease_until = :until, attempts = attempts + 1
FROM picked WHERE webhook_messages.id = picked.id
RETURNING webhook_messages.id, subscription_id, event_type, payload, patient_ref, attempts,
          created_at

-- webhook_claim@sqlite --
-- The same, on SQLite (run in BEGIN IMMEDIATE: one writer at a time).
UPDATE webhook_messages SET claimed_by = :worker, lease_until = :until, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM webhook_messages
    WHERE status = 'pending' AND next_attempt_at <= :now
      AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_attempt_at
    LIMIT :limit)
RETURNING id, subscription_id, event_type, payload, patient_ref, attempts, created_at

-- webhook_delivered --
-- A 2xx answer: done (only by the worker whose lease it is).
UPDATE webhook_messages
SET status = 'delivered', delivered_at = :now, lease_until = NULL, claimed_by = NULL,
    last_status = :code, last_error = NULL
WHERE id = :id AND claimed_by = :worker

-- webhook_retry --
-- Any other answer, or none: tried again at :retry_at.
UPDATE webhook_messages
SET next_attempt_at = :retry_at, lease_until = NULL, claimed_by = NULL, last_status = :code,
    last_error = :error
WHERE id = :id AND claimed_by = :worker

-- webhook_failed --
-- Retried for the whole retry period: given up, shown by `scheduler status` and the admin page.
UPDATE webhook_messages
SET status = 'failed', lease_until = NULL, claimed_by = NULL, last_status = :code,
    last_error = :error
WHERE id = :id AND claimed_by = :worker

-- webhook_counts --
SELECT status, COUNT(*) FROM webhook_messages GROUP BY status

-- webhook_failed_messages --
SELECT id, subscription_id, event_type, episode_id, attempts, last_status, last_error, created_at
FROM webhook_messages WHERE status = 'failed' ORDER BY created_at DESC, id LIMIT :limit

-- webhook_message --
SELECT id, subscription_id, event_type, episode_id, status, attempts, last_status, last_error,
       created_at, next_attempt_at, delivered_at
FROM webhook_messages WHERE id = :id

-- webhook_subscription_insert --
INSERT INTO webhook_subscriptions (id, url, events, include_patient_ref, secret, created_at,
                                   created_by)
VALUES (:id, :url, :events, :include_patient_ref, :secret, :now, :actor)

-- webhook_subscriptions --
SELECT id, url, events, include_patient_ref, secret, created_at, created_by, rotated_at
FROM webhook_subscriptions ORDER BY created_at, id

-- webhook_subscription --
SELECT id, url, events, include_patient_ref, secret, created_at, created_by, rotated_at
FROM webhook_subscriptions WHERE id = :id

-- webhook_subscription_rotate --
UPDATE webhook_subscriptions SET secret = :secret, rotated_at = :now WHERE id = :id

-- webhook_subscription_messages_delete --
-- A removed subscription's undelivered messages go with it (nobody would receive them).
DELETE FROM webhook_messages WHERE subscription_id = :id AND status = 'pending'

-- webhook_subscription_delete --
DELETE FROM webhook_subscriptions WHERE id = :id

-- webhook_any_subscription --
-- PostgreSQL: whether any subscription exists (storage/outbox.py ``Subscribed``, re-read at most
-- once a second), so that decisions skip the outbox part of their statement when none does.
SELECT EXISTS (SELECT 1 FROM webhook_subscriptions)
-- appointments_missed --
-- The scheduler's sweep (scheduler/missed.py): episodes whose booked day is before :today
-- (YYYY-MM-DD) and still booked, through ix_episodes_appointment_on.
SELECT id FROM episodes
WHERE appointment_on < :today AND appointment_status = 'booked'
ORDER BY appointment_on, id LIMIT :limit

-- appointments_outside_window --
-- carepath measures: bookings (book, move) recorded outside their window, of one pathway.
-- :booked, :moved, :outside are LIKE patterns (storage/appointments.py): the payload is
-- canonical JSON (no spaces), so they cannot match inside a string value (its quotes are
-- escaped there).
SELECT count(*) FROM audit_log a JOIN episodes e ON e.id = a.episode_id
WHERE e.pathway = :pathway AND a.kind = 'booking'
  AND (a.payload LIKE :booked OR a.payload LIKE :moved) AND a.payload LIKE :outside

-- batch_generic_plans@postgresql --
-- A timer batch's writes (storage.batch_arrays) planned once, whatever the tables' statistics:
-- a custom plan of an UPDATE … FROM unnest(…) on tables never analyzed (a fresh or copied
-- database) may hash-join a seq scan of every timer (40–70 ms a batch); the generic plan
-- (unnest: a few rows) probes the primary key. For this transaction only.
SET LOCAL plan_cache_mode = force_generic_plan

-- claim_snapshots@postgresql --
-- The claim (claim@postgresql) and the claimed episodes' snapshots in one statement, one round
-- trip (scheduler/worker.py): {snapshot} is episode_snapshot's select list, read FROM the rows
-- the claim updated. The batch that fires them writes under their version and audit hash, so
-- a snapshot read here that another writer moved before the batch's write fails that write.
WITH picked AS (
    SELECT id FROM episodes
    WHERE next_due_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_due_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE episodes SET claimed_by = :worker, lease_until = :until
    FROM picked WHERE episodes.id = picked.id
    RETURNING episodes.*)
{snapshot} FROM claimed e
