"""Where the audit key comes from, and what is refused: a short or malformed key, a key file
others can read, a key file beside the database. Files are made 0600 on first use."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carepath.audit_keys import AuditKeyError, load_audit_key, parse_key
from carepath.settings import Settings
from pathway.audit import AuditKey

SECRET = bytes(range(32))


def test_a_key_is_64_hex_characters_or_base64url() -> None:
    assert parse_key(SECRET.hex(), "k").id == AuditKey(SECRET).id
    assert parse_key(SECRET.hex().upper(), "k").id == AuditKey(SECRET).id
    b64 = base64.urlsafe_b64encode(SECRET).decode().rstrip("=")
    assert parse_key(b64, "k").id == AuditKey(SECRET).id


@pytest.mark.parametrize("value", ["abc", "00" * 31, "not a key at all!", "*" * 64])
def test_a_short_or_malformed_key_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(AuditKeyError) as caught:
        load_audit_key(value, Path("/nonexistent/audit.key"))
    message = str(caught.value)
    assert message.startswith(f"CAREPATH_AUDIT_KEY: got a value of {len(value)} characters")
    assert "expected 64 hexadecimal characters or base64url of at least 32 bytes" in message


def test_the_key_file_is_made_0600_on_first_use_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "config" / "carepath" / "audit.key"
    first = load_audit_key(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_audit_key(None, path).id == first.id
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # no temporary left


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    load_audit_key(None, path)
    os.chmod(path, 0o644)
    with pytest.raises(AuditKeyError, match=r"mode 0644 lets others read it, expected 0600"):
        load_audit_key(None, path)


def test_the_mode_checked_is_that_of_the_file_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path that looks 0600 when stat'ed but opens a file others can read (swapped between a
    check and a read) is refused: the mode comes from the open file itself."""
    key_file = tmp_path / "audit.key"
    key_file.write_text("ab" * 32 + "\n")
    key_file.chmod(0o644)
    looks_private = os.stat_result((stat.S_IFREG | 0o600, *os.stat(key_file)[1:]))
    monkeypatch.setattr(Path, "stat", lambda self, **kw: looks_private)
    with pytest.raises(AuditKeyError, match="0644"):
        load_audit_key(None, key_file)


def test_the_default_key_file_is_in_the_configuration_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CAREPATH_AUDIT_KEY", raising=False)
    monkeypatch.delenv("CAREPATH_AUDIT_KEY_FILE", raising=False)
    Settings.from_env().audit_key()
    assert (tmp_path / "xdg" / "carepath" / "audit.key").exists()


def cli(*args: str):  # noqa: ANN202
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


def test_the_cli_refuses_a_bad_key_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    monkeypatch.setenv("CAREPATH_AUDIT_KEY", "tooshort")
    result = cli("audit", "verify")
    assert result.exit_code == 2
    assert result.output.startswith("carepath: error: CAREPATH_AUDIT_KEY: got a value of 8")
    assert "Traceback" not in result.output and not (tmp_path / "c.db").exists()


def test_a_key_file_beside_the_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    monkeypatch.delenv("CAREPATH_AUDIT_KEY", raising=False)
    monkeypatch.setenv("CAREPATH_AUDIT_KEY_FILE", str(tmp_path / "audit.key"))
    result = cli("audit", "verify")
    assert result.exit_code == 2
    assert "it is in the database's directory" in result.output


@pytest.mark.parametrize(("value", "seconds"), [(None, 3600.0), ("0", 0.0), ("2.5", 150.0)])
def test_the_checkpoint_interval_is_minutes(value: str | None, seconds: float) -> None:
    from carepath.settings import checkpoint_seconds

    assert checkpoint_seconds(Settings("sqlite://", None, checkpoint_interval=value)) == seconds


@pytest.mark.parametrize("value", ["-1", "soon", "inf", "nan"])
def test_a_bad_checkpoint_interval_is_refused_naming_it(value: str) -> None:
    from carepath.settings import checkpoint_seconds

    with pytest.raises(ValueError, match=f"CAREPATH_CHECKPOINT_INTERVAL_MINUTES: got '{value}'"):
        checkpoint_seconds(Settings("sqlite://", None, checkpoint_interval=value))
