"""`tradeflow logs`: a command's JSON-lines file under data/logs, shown readable or as stored."""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path

import pytest

from cli.commands.logs import follow
from cli.main import main
from cli.profile import settings_from
from tradeflow.monitoring.logs import detach_file_log


def test_a_command_leaves_its_log_file_and_logs_shows_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(f"data_dir: {tmp_path / 'data'}\n")
    # What a command does: its settings attach the file; its records land there.
    settings = settings_from(argparse.Namespace(config=str(profile), command="validate"))
    logging.getLogger("tradeflow.validation").warning("3 candles quarantined")
    detach_file_log()
    capsys.readouterr()
    assert main(["--config", str(profile), "logs"]) == 0
    assert capsys.readouterr().out.split()[0] == "validate"  # status/logs write none
    assert settings.data_dir == tmp_path / "data"
    assert main(["--config", str(profile), "logs", "validate", "-n", "3"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == 3 and "INFO    tradeflow.logs: validate started (pid" in shown[0]
    assert shown[1].endswith("WARNING tradeflow.validation: 3 candles quarantined")
    assert "tradeflow.logs: ended" in shown[2]
    assert main(["--config", str(profile), "logs", "validate", "--json", "-n", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["message"].startswith("ended")
    assert main(["--config", str(profile), "logs", "trader"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"tradeflow logs: no log file for 'trader' in {tmp_path / 'data' / 'logs'};"
                   " available: validate")


def test_follow_prints_new_lines_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "trader.log"
    path.write_text("old\n")
    seen: list[str] = []
    thread = threading.Thread(target=follow, args=(path, seen.append, 0.05), daemon=True)
    thread.start()
    time.sleep(0.3)
    with path.open("a") as f:
        f.write("one\n")
    time.sleep(0.3)
    path.rename(tmp_path / "trader.log.1")  # what RotatingFileHandler does
    path.write_text("two\n")
    deadline = time.monotonic() + 5
    while seen != ["one", "two"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == ["one", "two"]
