"""The audit log as an IEEE 1849 (XES) event log, for process-mining tools (ProM, pm4py, Celonis).

Why: an auditor asking "which paths do episodes really take, and where do they wait?" wants
the log in the one format process-mining tools read. The audit log stays the source of truth;
this is a one-way, read-only view of it.

Shape (IEEE 1849-2016; the concept, time, org and lifecycle extensions declared):

- one ``trace`` per episode: ``concept:name`` the episode id, ``pathway`` the definition id
  and ``patient_ref`` the patient reference (as the JSON-lines and FHIR exports carry it; the
  label, a name, is left out);
- one ``event`` per transition, rule fired, refusal and timer fired of each audit entry, in
  the entry's order (timer, rules, refusals, transitions): ``concept:name`` says what happened
  (``timer FU-REASSESS``, ``rule RA-CONTINUE``, ``refused <action>``, ``enter
  <state>``), ``time:timestamp`` is the entry's clinical time (ISO 8601 with its offset),
  ``org:resource`` the actor, ``lifecycle:transition`` ``complete``; ``carepath:type``,
  ``carepath:seq`` and ``carepath:event`` tie it back to the audit entry.

Streamed: ``xes_document`` yields the document a trace at a time from rows read in chunks
(``storage.audit_stream``), escaping with the standard library, so memory is flat in the number
of episodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson

from storage.audit_stream import EntryRow

XES_MEDIA_TYPE = "application/xml"
_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <global scope="trace">
    <string key="concept:name" value="__INVALID__"/>
  </global>
  <global scope="event">
    <string key="concept:name" value="__INVALID__"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00+00:00"/>
    <string key="lifecycle:transition" value="complete"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <classifier name="Activity and lifecycle" keys="concept:name lifecycle:transition"/>
  <string key="concept:name" value="carepath audit log"/>
"""
_TAIL = "</log>\n"
# Characters XML 1.0 cannot hold at all, even escaped: replaced, so the document always parses.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@lru_cache(maxsize=4096)  # activity names, actors and rule titles repeat on every trace
def _q(value: str) -> str:
    """An attribute value, escaped and quoted by the standard library (``quoteattr``)."""
    return quoteattr(_NOT_XML.sub("\ufffd", value))


def events_of(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """An audit entry's events: (type, concept:name, extra string attributes), in order."""
    events: list[tuple[str, str, dict[str, str]]] = []
    if body.get("timer"):
        key = str(body["timer"])
        events.append(("timer", f"timer {key.split('@')[0]}", {"carepath:timer": key}))
    for rule in body.get("rules", ()):
        events.append(("rule", f"rule {rule['rule_id']}", {"carepath:title": rule["title"]}))
    for refusal in body.get("refused", ()):
        rule = refusal["firing"]["rule_id"]
        events.append(("refusal", f"refused {refusal['action']}", {"carepath:rule": rule}))
    for move in body.get("transitions", ()):
        extra = {
            "carepath:from": move["source"],
            "carepath:to": move["dest"],
            "carepath:rules": " ".join(move["rules"]),
        }
        events.append(("transition", f"enter {move['dest']}", extra))
    return events


def _event(row: EntryRow, kind: str, name: str, extra: dict[str, str]) -> str:
    lines = [
        "    <event>",
        f'      <string key="concept:name" value={_q(name)}/>',
        f'      <date key="time:timestamp" value="{row.at.isoformat()}"/>',
        f'      <string key="org:resource" value={_q(row.actor)}/>',
        '      <string key="lifecycle:transition" value="complete"/>',
        f'      <string key="carepath:type" value="{kind}"/>',
        f'      <string key="carepath:event" value={_q(row.kind)}/>',
        f'      <int key="carepath:seq" value="{row.seq}"/>',
        *(f"      <string key={_q(k)} value={_q(v)}/>" for k, v in extra.items()),
        "    </event>",
    ]
    return "\n".join(lines) + "\n"


def _trace_head(row: EntryRow) -> str:
    lines = [
        "  <trace>",
        f'    <string key="concept:name" value={_q(row.episode_id)}/>',
        f'    <string key="pathway" value={_q(row.pathway)}/>',
    ]
    if row.patient_ref:
        lines.append(f'    <string key="patient_ref" value={_q(row.patient_ref)}/>')
    return "\n".join(lines) + "\n"


def xes_document(rows: Iterable[EntryRow]) -> Iterator[bytes]:
    """The XES document of ``rows`` (in (episode, seq) order), one trace a piece."""
    yield _HEAD.encode()
    current: str | None = None
    parts: list[str] = []
    for row in rows:
        if row.episode_id != current:
            if current is not None:
                parts.append("  </trace>\n")
                yield "".join(parts).encode()
                parts = []
            current = row.episode_id
            parts.append(_trace_head(row))
        for kind, name, extra in events_of(orjson.loads(row.payload)):
            parts.append(_event(row, kind, name, extra))
    if current is not None:
        parts.append("  </trace>\n")
    parts.append(_TAIL)
    yield "".join(parts).encode()
