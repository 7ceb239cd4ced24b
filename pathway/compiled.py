"""Whether the pure core runs compiled, and the one mypyc hint it needs as plain Python.

The optional build (``CAREPATH_COMPILE=1 pip install .``, setup.py) compiles the hot modules
of ``pathway/`` with mypyc into C extensions; the default install leaves them plain Python.
``mypyc_attr`` is read by mypyc when it compiles and is a no-op here, so the plain install needs
no ``mypy_extensions``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:

    def mypyc_attr(*args: Any, **kwargs: Any) -> Any:
        return lambda cls: cls


# The modules setup.py compiles (CAREPATH_COMPILE=1): the engine and replay's in-memory path.
COMPILED_MODULES = (
    "pathway.vocabulary",
    "pathway.criteria",
    "pathway.work",
    "pathway.engine",
    "pathway.engine_plan",
    "pathway.enrolment",
    "pathway.audit",
    "pathway.unit_of_work",
    "pathway.usecases",
)


def compiled_modules() -> list[str]:
    """The modules of ``COMPILED_MODULES`` that load as C extensions (none: plain Python)."""
    out = []
    for name in COMPILED_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            out.append(name)
    return out
