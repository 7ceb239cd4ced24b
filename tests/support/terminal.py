"""Child processes that take Ctrl-C as they would at a terminal."""

from __future__ import annotations

import signal


def ctrl_c_as_at_a_terminal() -> None:
    """A `Popen` `preexec_fn`: SIGINT back to its default before the child starts.

    A shell script's background job (`cmd &` with no job control) inherits SIGINT ignored,
    and a Python started so never raises KeyboardInterrupt: a Ctrl-C test run from such a
    job would see the replay finish (exit 0) instead of being interrupted (exit 130).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
