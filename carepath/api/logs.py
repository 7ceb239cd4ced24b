"""What the API writes to logs: never a patient fact, never a patient ref.

The application logs nothing about a request's content: the routes log nothing, problem
responses are not logged, and an unexpected error is logged by type and code location only
(``problems.UnexpectedErrors``). The one line uvicorn writes per request would carry the query
string, where a worklist search (``?q=MRN…``) names a patient: ``redact_access_log`` installs a
filter that drops it. Paths are safe to log: they hold episode ids, task keys and definition
versions, which are generated identifiers, never patient data.
"""

from __future__ import annotations

import logging


class DropQueryString(logging.Filter):
    """Rewrites uvicorn's access record (client, method, path?query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def redact_access_log() -> None:
    """Install ``DropQueryString`` on uvicorn's access logger, once per process."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryString) for f in logger.filters):
        logger.addFilter(DropQueryString())
