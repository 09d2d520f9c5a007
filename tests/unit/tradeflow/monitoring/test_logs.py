"""JSON-lines log files: one object a line, secrets redacted in the file and on stderr."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tradeflow.config import load_settings
from tradeflow.monitoring.logs import attach_file_log, detach_file_log, redact, tail

KEY, SECRET = "AKIAKEY1234567890", "s3cr3t-value-xyz"


def test_redact_hides_known_secrets_and_secret_looking_parameters() -> None:
    text = ("GET https://api.x/api/v3/order?symbol=BTC&apiKey=abc123&signature=deadbeef "
            "postgresql+psycopg://bob:hunter2@db/x host=db password=pw1 " + SECRET)
    out = redact(text, [SECRET])
    for leaked in ("abc123", "deadbeef", "hunter2", "pw1", SECRET):
        assert leaked not in out
    assert "symbol=BTC" in out and "bob:***@db" in out and "signature=***" in out


def test_file_log_is_json_lines_and_redacted_on_every_handler(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(env={"TRADEFLOW_DATA_DIR": str(tmp_path),
                                  "TRADEFLOW_EXCHANGE__API_KEY": KEY,
                                  "TRADEFLOW_EXCHANGE__API_SECRET": SECRET})
    root = logging.getLogger("tradeflow-test-logs")
    root.propagate = False
    root.setLevel(logging.INFO)
    stderr = logging.StreamHandler()
    root.addHandler(stderr)
    try:
        path = attach_file_log(settings, "trade", root)
        assert attach_file_log(settings, "trade", root) == path  # replaced, not doubled
        root.info("order with key %s and secret %s", KEY, SECRET, extra={"symbol": "BTC/USDT"})
        try:
            raise ValueError(f"signed url ...&signature=abc&secret={SECRET}")
        except ValueError:
            root.exception("request failed")
    finally:
        detach_file_log(root)
        root.removeHandler(stderr)
    assert path == tmp_path / "logs" / "trade.log"
    quiet = attach_file_log(settings, "sim", root)
    detach_file_log(root)
    assert not quiet.exists()  # nothing logged: no file, no directory created
    lines = path.read_text().splitlines()
    # Created at the first record: started, the two records, ended; one line per record.
    assert [json.loads(line)["message"].split(" (")[0] for line in lines] == [
        "trade started", "order with key *** and secret ***", "request failed", "ended"]
    first, second = (json.loads(line) for line in lines[1:3])
    assert first["level"] == "INFO" and first["logger"] == "tradeflow-test-logs"
    assert first["message"] == "order with key *** and secret ***"
    assert first["symbol"] == "BTC/USDT" and first["time"].endswith("Z")
    assert "ValueError" in second["exception"]
    err = capsys.readouterr().err
    assert "order with key *** and secret ***" in err and "signature=***" in err
    everything = path.read_text() + err
    assert KEY not in everything and SECRET not in everything
    assert "started" not in err  # start and end lines go to the file only
    assert tail(path, 1) == [lines[-1]] and tail(path, 4) == lines
