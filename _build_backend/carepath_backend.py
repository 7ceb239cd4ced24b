"""carepath's build backend: setuptools', plus mypy when the compiled build is asked for.

``CAREPATH_COMPILE=1 pip install .`` compiles the hot modules of ``pathway/`` with mypyc
(setup.py); the isolated build environment then needs mypy, which only this backend can ask
for (a static ``build-system.requires`` would make every install download it). Without the
variable everything is setuptools' own: plain Python, no compiler needed. An editable install
is never compiled: its C extensions would shadow later edits of the ``.py`` files.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (the whole PEP 517 interface)

MYPY = "mypy>=2.4,<3"  # the version the compiled build is tested with


def _compile() -> bool:
    return os.environ.get("CAREPATH_COMPILE", "") not in ("", "0")


def get_requires_for_build_wheel(config_settings: dict | None = None) -> list[str]:
    if not _compile():
        return _setuptools.get_requires_for_build_wheel(config_settings)
    # setuptools runs setup.py to find its requirements: plainly, as mypy is not there yet
    os.environ.pop("CAREPATH_COMPILE")
    try:
        return [*_setuptools.get_requires_for_build_wheel(config_settings), MYPY]
    finally:
        os.environ["CAREPATH_COMPILE"] = "1"


def build_editable(
    wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None
) -> str:
    os.environ.pop("CAREPATH_COMPILE", None)  # plain Python: the checkout's .py files are what runs
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
