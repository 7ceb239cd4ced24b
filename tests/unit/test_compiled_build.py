"""The optional compiled build (mypyc) stays optional: the default build is plain Python and
asks for nothing more, an editable install is never compiled, and no compiled module sits in
the checkout where it would shadow its ``.py`` (README: Benchmarks, the compiled core).

Whether the compiled core behaves as the plain one is what the rest of the suite says when it
runs against a compiled install (``bench/compiled_build.sh``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from pathway import compiled

ROOT = Path(__file__).resolve().parents[2]
in_checkout = pytest.mark.skipif(
    not (ROOT / "_build_backend").is_dir(), reason="tests copied out of the checkout"
)  # bench/compiled_build.sh runs them against an install, from a copy


def backend(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 (a module)
    """The repository's build backend, as pip loads it (``backend-path``), run from the root."""
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "_build_backend"))
    sys.modules.pop("carepath_backend", None)
    return importlib.import_module("carepath_backend")


@in_checkout
def test_every_module_the_build_compiles_is_a_module_of_the_checkout() -> None:
    for name in compiled.COMPILED_MODULES:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


@in_checkout
def test_no_compiled_module_in_the_checkout_shadows_its_source() -> None:
    """A C extension beside its .py is imported instead of it: later edits would not run."""
    found = [p for pkg in ("pathway", "carepath") for p in (ROOT / pkg).rglob("*.so")]
    found += list(ROOT.glob("*__mypyc*.so"))
    assert found == []


@in_checkout
def test_the_default_build_asks_for_setuptools_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAREPATH_COMPILE", raising=False)
    requires = backend(monkeypatch).get_requires_for_build_wheel()
    assert not any(r.startswith("mypy") for r in requires)


@in_checkout
def test_the_compiled_build_asks_for_mypy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_COMPILE", "1")
    requires = backend(monkeypatch).get_requires_for_build_wheel()
    assert [r for r in requires if r.startswith("mypy")] == ["mypy>=2.4,<3"]
    assert os.environ["CAREPATH_COMPILE"] == "1"  # set again for the build that follows


@in_checkout
def test_an_editable_install_is_never_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_COMPILE", "1")
    module = backend(monkeypatch)
    seen: list[str | None] = []
    monkeypatch.setattr(
        module._setuptools,
        "build_editable",
        lambda *a, **k: seen.append(os.environ.get("CAREPATH_COMPILE")) or "x.whl",
    )
    assert module.build_editable("dist") == "x.whl"
    assert seen == [None]


def test_compiled_modules_names_only_c_extensions() -> None:
    """Plain Python: none; a compiled install: the modules whose file is a C extension."""
    got = compiled.compiled_modules()
    for name in compiled.COMPILED_MODULES:
        origin = importlib.util.find_spec(name).origin or ""
        assert (name in got) == origin.endswith((".so", ".pyd")), (name, origin)


@in_checkout
def test_the_compiled_modules_type_check_as_mypyc_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """mypyc compiles only what mypy accepts (config: pyproject's [tool.mypy]); ~2 s. Passing
    this is not the whole build (bench/compiled_build.sh is), but it is what breaks most often."""
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)
    paths = [name.replace(".", "/") + ".py" for name in compiled.COMPILED_MODULES]
    out, err, status = api.run(["--no-incremental", *paths])
    assert status == 0, out + err
