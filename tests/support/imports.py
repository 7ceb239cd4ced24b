"""Whether code run in a fresh interpreter imports a module: start-up costs kept off paths
that do not need them (Alembic, say) are checked where no other test has imported them."""

from __future__ import annotations

import subprocess
import sys

from tests.support.protocol import REPOSITORY


def imports_module(code: str, module: str) -> bool:
    """Run ``code`` in a new interpreter at the repository root; was ``module`` imported?"""
    probe = f"{code}\nimport sys\nprint({module!r} in sys.modules)\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, cwd=REPOSITORY, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()[-1] == b"True"
