"""Render the Grafana dashboard (monitoring/grafana/tradeflow.json) to a PNG without Grafana.

Every panel's PromQL is asked of a real Prometheus (the one `tradeflow up --monitoring`
started, or --prometheus URL) over the last --minutes and drawn with matplotlib on the
dashboard's grid: time series, state timelines, stats and the order-book depth bars. Prints
the file written and which panels returned no series.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana" / "tradeflow.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", metavar="URL",
                        help="Prometheus to query (default: the one `tradeflow up --monitoring` "
                             "started for this profile)")
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="time range of the time-series panels (default 30)")
    parser.add_argument("--symbol", default=None,
                        help="symbol of the order-book depth panel (default: the first with "
                             "book metrics)")
    parser.add_argument("--out", metavar="PATH", type=Path, default=None,
                        help="PNG to write (default <data_dir>/monitoring/dashboard.png)")


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from tradeflow.errors import UsageError

    settings = settings_from(args)
    if not 0 < args.minutes <= 7 * 24 * 60:
        raise UsageError(f"--minutes {args.minutes:g}: must be more than 0 and at most 10080 "
                         "(a week)")
    url = args.prometheus or running_prometheus(settings)
    out = args.out or settings.data_dir / "monitoring" / "dashboard.png"
    panels = render_dashboard(url, out, minutes=args.minutes, symbol=args.symbol,
                              scrape_interval_s=settings.monitoring.scrape_interval_s)
    empty = [p.title for p in panels if not p.series]
    print(f"wrote {out}: {len(panels) - len(empty)} of {len(panels)} panels with data "
          f"(last {args.minutes:g} minutes from {url})")
    for title in empty:
        print(f"  no series: {title}")
    return 0


def running_prometheus(settings: object) -> str:
    from cli.supervisor import Services
    from tradeflow.errors import UserError

    service = Services(settings.data_dir / "services").running("prometheus")  # type: ignore[attr-defined]
    if service is None:
        raise UserError("Prometheus is not running for this profile: start it with "
                        "`tradeflow up --monitoring` or pass --prometheus URL")
    return str(service.url)


def render_dashboard(url: str, out: Path, *, minutes: float = 30.0, symbol: str | None = None,
                     scrape_interval_s: float = 15.0) -> list:
    """Query every panel from ``url`` and write the PNG ``out``; returns the panels."""
    import time

    from tradeflow.monitoring.dashboard import fetch, load_dashboard, query, render

    board = load_dashboard(DASHBOARD)
    if symbol is None:  # as Grafana's template variable would: the first value it lists
        found = sorted({r["metric"].get("symbol", "") for r in
                        query(url, "query", {"query": "tradeflow_book_depth"})} - {""})
        symbol = found[0] if found else ".*"
    panels = fetch(url, board, minutes=minutes, scrape_interval_s=scrape_interval_s,
                   variables={"symbol": symbol})
    render(board, panels, out, subtitle=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    return panels
