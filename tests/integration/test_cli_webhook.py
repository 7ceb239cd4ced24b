"""``carepath webhook add|list|remove|rotate-secret`` on SQLite and PostgreSQL: the secret alone
on the last line (a key the ``standardwebhooks`` package accepts), refusals on one line with
nothing stored, and ``scheduler status`` counting the outbox."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner, Result

from carepath.cli.scheduler import scheduler_app
from carepath.cli.webhook import webhook_app


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", database_url)
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(webhook_app, list(args))


def test_add_prints_the_secret_alone_on_its_last_line_then_list_rotate_remove(
    cli: CliRunner,
) -> None:
    added = _run(cli, "add", "https://hooks.example.org/in", "--events", "escalation.opened")
    assert added.exit_code == 0, added.output
    secret = added.stdout.splitlines()[-1]
    assert secret.startswith("whsec_") and " " not in secret
    Webhook(secret)  # a key the reference library accepts
    sub_id = added.stdout.split()[0]
    listed = _run(cli, "list")
    assert sub_id in listed.stdout and "whsec_" not in listed.stdout
    rotated = _run(cli, "rotate-secret", sub_id)
    assert rotated.exit_code == 0
    new = rotated.stdout.splitlines()[-1]
    assert new.startswith("whsec_") and new != secret
    assert _run(cli, "remove", sub_id).exit_code == 0
    assert _run(cli, "list").stdout.strip() == ""
    gone = _run(cli, "remove", sub_id)
    assert gone.exit_code == 2 and "no such subscription" in gone.output


def test_include_patient_ref_is_listed(cli: CliRunner) -> None:
    added = _run(
        cli, "add", "http://127.0.0.1:9/in", "--events", "episode.ended", "--include-patient-ref"
    )
    assert added.exit_code == 0, added.output
    assert "+patient_ref" in _run(cli, "list").stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["http://hooks.example.org/in", "--events", "episode.ended"], "url: got"),
        (["https://h.example.org/", "--events", "episode.ended,nope"], "events: got 'nope'"),
        (["https://h.example.org/", "--events", ","], "events: got"),
    ],
)
def test_a_bad_target_or_event_is_refused_on_one_line_and_nothing_is_stored(
    cli: CliRunner, args: list[str], says: str
) -> None:
    refused = _run(cli, "add", *args)
    assert refused.exit_code == 2
    assert says in refused.output and "Traceback" not in refused.output
    assert _run(cli, "list").stdout.strip() == ""


def test_scheduler_status_counts_the_outbox(cli: CliRunner) -> None:
    status = cli.invoke(scheduler_app, ["status"])
    assert status.exit_code == 0, status.output
    assert "webhook messages: 0 pending, 0 failed, 0 delivered" in status.stdout
