"""Show or follow a service's log file: <data_dir>/logs/SERVICE.log, one JSON object a line.

Every command that does work writes one (backfill, record, trade, sim, up, ...), and so do
the trader and recorder deployments (trader, recorder). Lines are shown readable
(time level logger: message); --json prints them as stored. -f keeps following, across
rotation, until interrupted. Without SERVICE, lists the log files.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", nargs="?", help="log name, e.g. trader, record, backfill")
    parser.add_argument("-n", "--lines", type=int, default=20, help="last N lines (default 20)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--json", action="store_true", help="print the JSON lines as stored")


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from tradeflow.errors import UserError
    from tradeflow.monitoring.logs import log_path, tail

    settings = settings_from(args)
    if args.lines < 0:
        raise UserError(f"--lines must be 0 or more, got {args.lines}")
    directory = settings.data_dir / "logs"
    names = sorted(p.stem for p in directory.glob("*.log"))
    if not args.service:
        for name in names:
            print(f"{name:<16} {directory / (name + '.log')}")
        if not names:
            print(f"no log files yet in {directory}")
        return 0
    path = log_path(settings, args.service)
    if not path.is_file():
        allowed = ", ".join(names) or "none yet"
        raise UserError(f"no log file for {args.service!r} in {directory}; available: {allowed}")
    show = print if args.json else (lambda line: print(readable(line)))
    for line in tail(path, args.lines) if args.lines else []:
        show(line)
    if args.follow:
        follow(path, show)
    return 0


def readable(line: str) -> str:
    """``time level logger: message`` of a JSON log line (other lines unchanged)."""
    import json

    try:
        rec = json.loads(line)
        text = f"{rec['time']} {rec['level']:<7} {rec['logger']}: {rec['message']}"
    except (ValueError, KeyError, TypeError):
        return line
    if rec.get("exception"):
        text += "\n" + rec["exception"]
    return text


def follow(path: Path, show: Callable[[str], object], poll: float = 0.5) -> None:
    """Print lines appended to ``path``; reopen it when it is rotated (replaced or shrunk)."""
    import os
    import time

    f = path.open("r", encoding="utf-8", errors="replace")
    f.seek(0, os.SEEK_END)
    inode = os.fstat(f.fileno()).st_ino
    try:
        while True:
            line = f.readline()
            if line:
                show(line.rstrip("\n"))
                continue
            time.sleep(poll)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if st.st_ino != inode or st.st_size < f.tell():
                f.close()
                f = path.open("r", encoding="utf-8", errors="replace")
                inode = os.fstat(f.fileno()).st_ino
    finally:
        f.close()
