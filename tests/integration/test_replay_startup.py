"""An in-memory replay loads no database code: SQLAlchemy and Alembic cost a command ~0.3 s
of imports, more than a thousand episodes' replay, and the replay never touches a database.
Nor pydantic: typer 0.29 coerces parameters through it, another ~0.3 s (pyproject pins
typer below it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "scenarios_md_example.json"

PROBE = """
import sys
from carepath.cli import main
sys.argv = ["carepath", "replay", "--json", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in ("sqlalchemy", "alembic", "storage.unit_of_work", "pydantic") if m in sys.modules)
print("LOADED", ",".join(loaded), file=sys.stderr)
"""


def test_replay_in_memory_imports_no_database_code() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(SCENARIO)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert '"audit_verified": true' in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "LOADED", proc.stderr
