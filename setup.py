"""The optional compiled build: ``CAREPATH_COMPILE=1 pip install .`` compiles the modules
``pathway.compiled.COMPILED_MODULES`` names with mypyc (C extensions beside their ``.py``).

Without the variable this is a plain setuptools build (everything is in pyproject.toml), and
that is the default install: pure Python, no C compiler. The build backend
(``_build_backend/carepath_backend.py``) adds mypy to the build environment when the variable
is set, and never compiles an editable install.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from setuptools import setup


def _compiled_modules() -> list[str]:
    """The tuple in pathway/compiled.py, read without importing the package."""
    tree = ast.parse(Path(__file__).with_name("pathway").joinpath("compiled.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "COMPILED_MODULES"
        ):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("pathway/compiled.py: COMPILED_MODULES not found")


if os.environ.get("CAREPATH_COMPILE", "") not in ("", "0"):
    try:
        from mypyc.build import mypycify
    except ImportError as e:  # --no-build-isolation without mypy in the environment
        raise SystemExit(f"CAREPATH_COMPILE=1 needs mypy in the build environment ({e})") from e

    paths = [name.replace(".", "/") + ".py" for name in _compiled_modules()]
    setup(ext_modules=mypycify(paths, opt_level="3", group_name="carepath_core"))
else:
    setup()
