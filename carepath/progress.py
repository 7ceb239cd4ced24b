"""Progress bars for the long commands (issue 13): on stderr, for a person at a terminal only.

Every long command (``replay`` of many files or into a database, ``definition migrate``,
``audit verify``, ``measures``, the demo's history load) opens ``Bars`` and hands the engine or
storage a plain ``Progress`` callback, ``(done, total)``: nothing below the command line knows
how a bar is drawn (``pathway/`` imports no terminal library). A bar shows the count, the rate
and the time left (tqdm). It is drawn only when stderr is a terminal and the command was not
asked for ``--json``: piped or redirected output, a CI log, or a machine reader gets not one
byte of it, and stdout is never written to, so a command's output is the same with or without.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

Progress = Callable[[int, int], None]  # (done so far, total): what the core is handed


def shown(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether bars are drawn: not ``quiet`` (``--json``) and ``stream`` (stderr) a terminal."""
    stream = sys.stderr if stream is None else stream
    if quiet:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def silent(done: int, total: int) -> None:
    """The callback when nothing is drawn: costs one call."""


class Bars:
    """One bar at a time on stderr, named by what it counts: ``bars("replay")`` is that bar's
    callback (a new name closes the previous bar). A context manager: leaving closes the bar."""

    def __init__(
        self, quiet: bool = False, *, unit: str = "episodes", stream: TextIO | None = None
    ):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = shown(quiet, self.stream)
        self.unit = unit
        self._bar: Any = None
        self._label: str | None = None

    def __call__(self, label: str, unit: str | None = None) -> Progress:
        if not self.enabled:
            return silent
        return lambda done, total: self._tick(label, unit or self.unit, done, total)

    def _tick(self, label: str, unit: str, done: int, total: int) -> None:
        bar = self._bar
        if bar is None or label != self._label:
            self.close()
            from tqdm import tqdm

            columns, lines = _size(self.stream)
            bar = self._bar = tqdm(
                total=total if total > 0 else None, desc=label, unit=f" {unit}",
                file=self.stream, mininterval=0.2, ncols=columns, nrows=lines, leave=True,
            )  # fmt: skip
            self._label = label
        if total > 0 and bar.total != total:
            bar.total = total
            bar.refresh()
        if done > bar.n:
            bar.update(done - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._label = None

    def __enter__(self) -> Bars:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _size(stream: TextIO) -> tuple[int, int]:
    """The terminal's (columns, lines); 80 × 24 where it reports none (a fresh pseudo-terminal
    says 0 × 0, and tqdm draws nothing on a terminal of no lines)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        columns, lines = size.columns, size.lines
    except (AttributeError, OSError, ValueError):
        columns = lines = 0
    return columns or 80, lines or 24
