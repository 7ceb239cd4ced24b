"""What ``carepath`` loads before it runs a command: the root's help and usage errors load no
command's module, a command loads its own only, and none loads rich's help formatting (typer
renders help with rich when rich is installed; importing ``typer.rich_utils`` took longer than
the rest of ``--help``)."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import pathlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from carepath import cli

PROBE = """
import sys
from carepath.cli import main
sys.argv = ["carepath", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
watched = ("typer.rich_utils", "rich.markdown", "rich.traceback") + tuple(
    e.module for e in __import__("carepath.cli").cli.COMMANDS.values()
)
print("EXIT", code, "LOADED", ",".join(sorted(m for m in watched if m in sys.modules)),
      file=sys.stderr)
"""


def probe(argv: list[str]) -> tuple[str, str]:
    """(stdout + stderr, the probe's last line) of ``carepath ARGV`` in a new interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    return proc.stdout + proc.stderr, proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "code", "shown", "loaded"),
    [
        (["--help"], 0, "Commands:", ""),
        ([], 2, "Commands:", ""),  # no arguments: the help, as a usage error
        (["--help", "definition"], 0, "webhook", ""),  # the root's help, every command
        (["no-such-command"], 2, "No such command 'no-such-command'", ""),
        (["replay", "--no-such-flag"], 2, "No such option: --no-such-flag", ""),
        (["definition", "--help"], 0, "Check, draw, export", "carepath.cli.definition"),
        (["episode", "no-such-command"], 2, "No such command 'no-such-command'",
         "carepath.cli.episode"),
        (["episode", "book", "--help"], 0, "Book (or --move", "carepath.cli.episode"),
        (["serve", "--help"], 0, "--no-scheduler", "carepath.cli.serve"),
    ],
)  # fmt: skip
def test_a_command_loads_its_own_module_only_and_help_is_plain_text(
    argv: list[str], code: int, shown: str, loaded: str
) -> None:
    output, last = probe(argv)
    assert shown in output
    assert "╭" not in output  # no rich panel
    assert last == f"EXIT {code} LOADED {loaded}".strip(), output


def test_the_overview_says_what_every_command_says_of_itself() -> None:
    """The root's help is built from ``COMMANDS`` without importing the commands: each summary
    is the command's own first line, and the help is the one the full command tree prints."""
    for name, entry in cli.COMMANDS.items():
        target = getattr(importlib.import_module(entry.module), entry.attribute)
        own = target.info.help if entry.group else inspect.getdoc(target).split("\n\n")[0]
        assert entry.summary == " ".join(own.split()), name
    overview = CliRunner().invoke(cli._overview(), ["--help"], prog_name="carepath")
    cli._register_groups()
    full = CliRunner().invoke(cli.app, ["--help"], prog_name="carepath")
    assert overview.exit_code == full.exit_code == 0
    assert overview.output == full.output
    assert sorted(cli.COMMANDS) == sorted(c for c in _names(full.output) if c != "replay")


def _names(help_text: str) -> list[str]:
    lines = help_text.split("Commands:\n", 1)[1].splitlines()
    return [line.split()[0] for line in lines if line.startswith("  ") and line.strip()]


def test_a_ctrl_c_while_the_command_line_loads_exits_130_without_a_traceback(
    tmp_path: pathlib.Path,
) -> None:
    """The console script (``carepath.launch``) stopped inside the import of typer, the first
    thing ``carepath.cli`` loads: a stand-in typer that is interrupted as it loads."""
    fake = tmp_path / "typer"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    script = "from carepath.launch import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", script, "--help"], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    entry = importlib.metadata.entry_points(group="console_scripts", name="carepath")
    assert [e.value for e in entry] == ["carepath.launch:main"]
