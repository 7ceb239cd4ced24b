"""A mermaid diagram read back, to check it against its definition."""

from __future__ import annotations

import re
from typing import Any

_RULE_ID = re.compile(r"\b[A-Z]{2,}(?:-[A-Z0-9]+)+\b")


def parse_mermaid(text: str) -> dict[str, Any]:
    """A diagram's states, the rule ids labelling each (source, dest) edge, and the highlighted
    state."""
    states = set(re.findall(r'^\s*state "[^"]*" as (\w+)', text, re.M))
    edges: dict[tuple[str, str], set[str]] = {}
    for source, dest, label in re.findall(r"^\s*(\w+) --> (\w+): (.*)$", text, re.M):
        edges.setdefault((source, dest), set()).update(_RULE_ID.findall(label))
    highlighted = re.findall(r"^\s*class (\w+) s_active$", text, re.M)
    return {"states": states, "edges": edges, "highlighted": highlighted}
