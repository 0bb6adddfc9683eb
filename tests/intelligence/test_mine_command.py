"""``manage.py mine_log_patterns`` writes one prediction row per input line."""

import csv
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command


def test_command_writes_prediction_csv_and_state(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        "2026-11-28 10:00:00 INFO: worker 1 started\n"
        "2026-11-28 10:00:01 INFO: worker 2 started\n"
        "2026-11-28 10:00:02 ERROR: upstream 10.0.0.7:5432 timed out after 3000ms\n"
    )
    out = tmp_path / "pred.csv"
    state = tmp_path / "state.json"
    call_command(
        "mine_log_patterns",
        str(log),
        "--log-format",
        "<Date> <Time> <Level>: <Content>",
        "--output",
        str(out),
        "--save-state",
        str(state),
        "--no-progress",
    )
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["LineId"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["ClusterId"] == rows[1]["ClusterId"] != rows[2]["ClusterId"]
    assert rows[0]["EventTemplate"] == "worker <*> started"
    assert rows[2]["EventTemplate"] == "upstream <*> timed out after <*>"
    assert len(json.loads(state.read_text())["templates"]) == 2


def test_command_rejects_missing_input(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("mine_log_patterns", str(tmp_path / "nope.log"), "--no-progress")
