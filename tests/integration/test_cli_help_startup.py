"""``carepath --help`` and a usage error load none of rich's help formatting: typer renders
them with rich when rich is installed, and importing ``typer.rich_utils`` (rich.markdown,
markdown_it, rich.traceback) took more time than the rest of ``--help``."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from carepath.cli import main
sys.argv = ["carepath", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in ("typer.rich_utils", "rich.markdown", "rich.traceback") if m in sys.modules)
print("EXIT", code, "LOADED", ",".join(loaded), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "code", "shown"),
    [
        (["--help"], 0, "Commands:"),
        (["definition", "--help"], 0, "Check, draw, export"),
        ([], 2, "Commands:"),  # no arguments: the help, as a usage error
        (["replay", "--no-such-flag"], 2, "No such option: --no-such-flag"),
        (["episode", "no-such-command"], 2, "No such command 'no-such-command'"),
    ],
)
def test_help_and_usage_errors_are_plain_text_without_rich(
    argv: list[str], code: int, shown: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    assert shown in proc.stdout + proc.stderr
    assert "╭" not in proc.stdout + proc.stderr  # no rich panel
    assert proc.stderr.strip().splitlines()[-1] == f"EXIT {code} LOADED", proc.stderr
