"""carepath's build backend: setuptools', plus mypy when the compiled build is asked for.

``CAREPATH_COMPILE=1 pip install .`` compiles the hot modules of ``pathway/`` with mypyc
(setup.py); the isolated build environment then needs mypy, which only this backend can ask
for (a static ``build-system.requires`` would make every install download it). Without the
variable everything is setuptools' own: plain Python, no compiler needed.

Only ``build_wheel`` sees the variable: setuptools runs setup.py for every other hook too
(requirements, metadata, sdist), which need no compiling, and an editable install is never
compiled, as its C extensions would shadow later edits of the ``.py`` files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (the whole PEP 517 interface)

MYPY = "mypy>=2.4,<3"  # the version the compiled build is tested with


def _compile() -> bool:
    return os.environ.get("CAREPATH_COMPILE", "") not in ("", "0")


def _plain(hook: str) -> Callable[..., Any]:
    """setuptools' ``hook``, run without CAREPATH_COMPILE (looked up when called)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        saved = os.environ.pop("CAREPATH_COMPILE", None)
        try:
            return getattr(_setuptools, hook)(*args, **kwargs)
        finally:
            if saved is not None:
                os.environ["CAREPATH_COMPILE"] = saved

    return run


prepare_metadata_for_build_wheel = _plain("prepare_metadata_for_build_wheel")
get_requires_for_build_editable = _plain("get_requires_for_build_editable")
prepare_metadata_for_build_editable = _plain("prepare_metadata_for_build_editable")
build_editable = _plain("build_editable")
get_requires_for_build_sdist = _plain("get_requires_for_build_sdist")
build_sdist = _plain("build_sdist")


def get_requires_for_build_wheel(config_settings: dict | None = None) -> list[str]:
    extra = [MYPY] if _compile() else []
    return [*_plain("get_requires_for_build_wheel")(config_settings), *extra]
