"""A large replay's workers leave Ctrl-C to the parent (``carepath.replay.workers``).

A worker interrupted while sending its result back left half a message in the executor's pipe,
and the replay hung (CI, ``test_an_interrupted_replay_leaves_no_file_and_no_temporary_file``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from carepath.replay import runner
from carepath.replay.cohort import write_cohort
from carepath.replay.workers import in_workers
from tests.support.episode_driver import DEFS
from tests.support.terminal import ctrl_c_as_at_a_terminal


def _interrupted_meanwhile(seconds: float) -> tuple[int, int]:
    """Sleep, as a chunk being replayed would, after sending this worker SIGINT."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(seconds)
    return os.getpid(), len(signal.pthread_sigmask(signal.SIG_BLOCK, set()))


def test_a_worker_sent_sigint_finishes_its_chunk() -> None:
    done = list(in_workers(_interrupted_meanwhile, [0.05] * 4, 2))
    assert len(done) == 4
    assert len({pid for pid, _ in done} - {os.getpid()}) == 2  # in two other processes
    assert all(blocked == 0 for _, blocked in done)  # nothing left blocked in them


def test_the_parents_signal_mask_is_as_it_was() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    results = in_workers(_interrupted_meanwhile, [0.01] * 2, 2)
    assert next(results)[0] != os.getpid()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
    assert len(list(results)) == 1


INTERRUPTED = """
import sys, time
from pathlib import Path
from carepath.replay.workers import in_workers

here = Path(sys.argv[1])

def chunk(i):
    (here / f"begun-{i}").touch()
    deadline = time.monotonic() + 60  # a hang guard: the test opens the gate at once
    while i > 0 and not (here / "gate").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    (here / f"ended-{i}").write_bytes(b"x" * 1_000_000)
    return b"x" * 1_000_000  # a large result: sent while the process group is interrupted

try:
    for result in in_workers(chunk, range(12), 2):
        sys.stdout.write("1")
        sys.stdout.flush()
except KeyboardInterrupt:
    sys.exit(130)
"""


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60  # a hang guard, not a timing
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def test_ctrl_c_to_the_process_group_ends_the_chunks_begun_and_begins_no_other(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=ctrl_c_as_at_a_terminal,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(1) == b"1"  # chunk 0 is back; 1 and 2 wait at the gate
    wait_for(tmp_path / "begun-1")
    wait_for(tmp_path / "begun-2")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the process and its workers, mid-chunk
    (tmp_path / "gate").touch()
    assert proc.wait(timeout=60) == 130, proc.stderr.read().decode()[-2000:]
    begun = {p.name.split("-")[1] for p in tmp_path.glob("begun-*")}
    ended = {p.name.split("-")[1] for p in tmp_path.glob("ended-*")}
    assert begun == ended and {"0", "1", "2"} <= begun and len(begun) < 12
    assert all(p.stat().st_size == 1_000_000 for p in tmp_path.glob("ended-*"))


def test_replay_files_in_workers_gives_what_one_process_gives(tmp_path: Path) -> None:
    paths = [str(p) for p in write_cohort(tmp_path, 240)]
    assert runner.replay_files(paths, DEFS, 2) == runner.replay_files(paths, DEFS, 1)
