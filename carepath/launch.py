"""The ``carepath`` console script (and ``python -m carepath.cli``): the command line loaded,
then run, a Ctrl-C at any point before click's own handling begins ending as an interruption.

Why apart from ``carepath.cli``: importing that package imports typer and click, and loading
the command and typer building it from its signature take as long again; a Ctrl-C in any of
that would print the traceback of wherever it stopped. Here it exits 130 (128 + SIGINT).
While a command runs, click handles a Ctrl-C itself ("Aborted!").
"""

from __future__ import annotations


def main() -> None:
    try:
        from carepath.cli import main as run

        run()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
