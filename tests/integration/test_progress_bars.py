"""Progress bars of the long commands (issue 13): drawn on a terminal's stderr with the count,
rate and time left; not one byte when stderr is piped or ``--json`` is asked for; never on
stdout. The commands run as a user runs them, in a subprocess, on a pseudo-terminal or pipes."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from carepath.progress import Bars, shown

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
FILES = sorted(str(p) for p in SCENARIOS.glob("fls_*.json"))[:4] + [
    str(SCENARIOS / "nsaid_caution_age_65.json"),
    str(SCENARIOS / "review_pain_4_continues_with_pain_referral.json"),
]
BAR = b"%|"  # tqdm's "NN%|█████|": the mark of a drawn bar


def _env(tmp: Path) -> dict[str, str]:
    return dict(
        os.environ,
        CAREPATH_DATABASE_URL=f"sqlite:///{tmp / 'progress.db'}",
        XDG_CONFIG_HOME=str(tmp / "config"),
        CAREPATH_CHECKPOINT_DIR=str(tmp / "checkpoints"),
    )


def _carepath(*args: str) -> list[str]:
    return [sys.executable, "-m", "carepath.cli", *args]


def piped(env: dict[str, str], *args: str) -> tuple[int, bytes, bytes]:
    done = subprocess.run(_carepath(*args), env=env, capture_output=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def on_terminal(env: dict[str, str], *args: str) -> tuple[int, bytes, bytes]:
    """Run with stderr on a pseudo-terminal, stdout on a file: (exit, stdout, what the
    terminal received)."""
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            _carepath(*args), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=slave
        )
        os.close(slave)
        received = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not data:
                break
            received.append(data)
        proc.wait(timeout=120)
        os.close(master)
        out.seek(0)
        return proc.returncode, out.read(), b"".join(received)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A database with the scenarios replayed into it (piped: that run must be silent too)."""
    tmp = tmp_path_factory.mktemp("progress")
    environment = _env(tmp)
    url = environment["CAREPATH_DATABASE_URL"]
    code, out, err = piped(environment, "replay", "--database", url, *FILES)
    assert code == 0, err
    assert err == b"" and BAR not in out and b"\r" not in out
    yield environment


COMMANDS = {
    "replay of many files": ["replay", *FILES],
    "measures": ["measures", "--pathway", "fracture-liaison", "--as-of", "2027-06-30"],
    "audit verify": ["audit", "verify"],
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_piped_output_carries_no_progress_bytes_at_all(
    env: dict[str, str], args: list[str]
) -> None:
    code, out, err = piped(env, *args)
    assert code == 0, err
    assert err == b""  # nothing on stderr: no bar, no carriage return, no escape
    assert BAR not in out and b"\r" not in out


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_terminal_shows_a_bar_with_rate_and_time_left(
    env: dict[str, str], args: list[str]
) -> None:
    code, out, terminal = on_terminal(env, *args)
    assert code == 0, terminal
    assert BAR in terminal and b"100%" in terminal
    assert b"/s]" in terminal and b"<" in terminal  # "[elapsed<left, N episodes/s]"
    assert BAR not in out and b"\r" not in out  # stdout is the command's output alone


def test_replay_into_a_database_shows_a_bar(env: dict[str, str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"
    code, _, terminal = on_terminal(env, "replay", "--database", url, *FILES)
    assert code == 0, terminal
    assert b"replay: 100%|" in terminal and b"scenarios/s]" in terminal


JSON = {
    "replay --json": ["replay", "--json", *FILES],
    "measures --json": ["measures", "--json", "--as-of", "2027-06-30"],
    "measures --format fhir": ["measures", "--format", "fhir", "--as-of", "2027-06-30"],
}


@pytest.mark.parametrize("args", JSON.values(), ids=JSON.keys())
def test_json_output_is_silent_even_on_a_terminal(env: dict[str, str], args: list[str]) -> None:
    code, out, terminal = on_terminal(env, *args)
    assert code == 0, terminal
    assert terminal == b"" and out.lstrip()[:1] in (b"{", b"[")


# -- the module itself -----------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_draw_on_a_terminal_and_nothing_elsewhere() -> None:
    for stream, drawn in ((_Terminal(), True), (io.StringIO(), False)):
        with Bars(stream=stream) as bars:
            tick = bars("count")
            for i in range(1, 4):
                tick(i, 3)
        assert ("count: 100%|" in stream.getvalue()) is drawn, stream.getvalue()


def test_quiet_bars_draw_nothing_on_a_terminal() -> None:
    stream = _Terminal()
    with Bars(quiet=True, stream=stream) as bars:
        bars("count")(1, 1)
    assert stream.getvalue() == "" and not shown(True, stream) and shown(False, stream)


def test_a_new_label_ends_the_previous_bar() -> None:
    stream = _Terminal()
    with Bars(stream=stream) as bars:
        bars("chains")(2, 2)
        bars("rows")(1, 2)
    text = stream.getvalue()
    assert "chains: 100%|" in text and "rows:  50%|" in text
    assert text.index("\n") < text.index("rows")  # chains' line was ended first
