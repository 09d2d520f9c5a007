"""The Grafana dashboard without Grafana: every panel's PromQL asked of a real Prometheus and
drawn with matplotlib into one PNG, on the dashboard's own grid.

Time series and state timelines use ``query_range`` over the last ``minutes``; stats and bar
gauges an instant query at the end. Grafana's variables are filled in as Grafana would for that
range (``$__interval`` is the step, ``$__rate_interval`` at least four scrape intervals) and the
dashboard's own template variables (``$symbol``) from ``variables``.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeflow.errors import UserError

RANGE_TYPES = ("timeseries", "state-timeline")
GRID_COLUMNS = 24


@dataclass
class Series:
    """One series a target returned: its legend and (unix seconds, value) points."""

    legend: str
    points: list[tuple[float, float]]


@dataclass
class Panel:
    """A panel of the dashboard and what its targets returned."""

    spec: dict[str, Any]
    series: list[Series] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return str(self.spec["title"])


def load_dashboard(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the dashboard {path}: {exc}") from None


def grafana_variables(minutes: float, step_s: float, scrape_interval_s: float,
                      variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """Grafana's built-in interval variables for a range of ``minutes``, and the dashboard's."""
    rate = max(4 * scrape_interval_s, step_s + scrape_interval_s)
    values = {"$__rate_interval": f"{math.ceil(rate)}s", "$__interval": f"{math.ceil(step_s)}s",
              "$__range": f"{math.ceil(minutes * 60)}s"}
    values.update({f"${k}": v for k, v in (variables or {}).items()})
    return values


def promql(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana variables replaced (longest names first: $__range vs $__rate...)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return expr


def legend(template: str, labels: Mapping[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template or "")
    return text.strip() or ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__")


def query(url: str, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ``result`` of ``/api/v1/<path>``; a one-line error when Prometheus does not answer
    or rejects the query."""
    address = f"{url.rstrip('/')}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(address, timeout=20) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError) as exc:
        raise UserError(f"Prometheus at {url} did not answer: {exc}") from None
    if body.get("status") != "success":
        raise UserError(f"Prometheus rejected {params.get('query')!r}: {body.get('error')}")
    return body["data"]["result"]


def fetch(url: str, board: Mapping[str, Any], *, minutes: float = 30.0, step_s: float = 0.0,
          scrape_interval_s: float = 15.0, variables: Mapping[str, str] | None = None,
          end: float | None = None) -> list[Panel]:
    """Every non-row panel of ``board`` with the series its queries return from ``url``."""
    end = time.time() if end is None else end
    start = end - minutes * 60
    step = step_s or max(1.0, minutes * 60 / 300)  # about 300 points a series
    values = grafana_variables(minutes, step, scrape_interval_s, variables)
    panels = []
    for spec in board["panels"]:
        if spec["type"] == "row":
            continue
        panel = Panel(spec)
        for target in spec.get("targets", []):
            expr = promql(target["expr"], values)
            panel.queries.append(expr)
            if spec["type"] in RANGE_TYPES and not target.get("instant"):
                result = query(url, "query_range", {"query": expr, "start": f"{start:.3f}",
                                                    "end": f"{end:.3f}", "step": f"{step:g}"})
                rows = [(r["metric"], r["values"]) for r in result]
            else:
                result = query(url, "query", {"query": expr, "time": f"{end:.3f}"})
                rows = [(r["metric"], [r["value"]]) for r in result]
            for labels, points in rows:
                panel.series.append(Series(legend(target.get("legendFormat", ""), labels),
                                           [(float(t), float(v)) for t, v in points]))
        panels.append(panel)
    return panels


def render(board: Mapping[str, Any], panels: list[Panel], out: Path, *, subtitle: str = "",
           dpi: int = 60) -> Path:
    """Draw ``panels`` on the dashboard's grid (rows as headings) into the PNG ``out``,
    written whole (a temporary file replaced at the end)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    by_id = {p.spec["id"]: p for p in panels}
    height = max(s["gridPos"]["y"] + s["gridPos"]["h"] for s in board["panels"])
    fig = plt.figure(figsize=(GRID_COLUMNS * 0.75, height * 0.42))
    grid = GridSpec(height, GRID_COLUMNS, figure=fig, hspace=2.2, wspace=3.0, top=0.98,
                    bottom=0.01, left=0.06, right=0.98)
    fig.suptitle(f"{board.get('title', 'dashboard')}  {subtitle}".strip(), fontsize=16,
                 y=0.995)
    for spec in board["panels"]:
        pos = spec["gridPos"]
        if spec["type"] == "row":
            ax = fig.add_subplot(grid[pos["y"], :])
            ax.axis("off")
            ax.text(0, 0.0, spec["title"], fontsize=14, fontweight="bold", va="bottom")
            continue
        # The panel's first grid row holds its title, its last the time axis's labels.
        ax = fig.add_subplot(grid[pos["y"] + 1:pos["y"] + pos["h"] - 1,
                                  pos["x"]:pos["x"] + pos["w"]])
        draw_panel(ax, by_id[spec["id"]])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    tmp.replace(out)
    return out


def draw_panel(ax: Any, panel: Panel) -> None:
    kind, series = panel.spec["type"], panel.series
    ax.set_title(panel.title, fontsize=10, loc="left")
    ax.tick_params(labelsize=7)
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", color="grey",
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if kind == "timeseries":
        _lines(ax, series)
    elif kind == "state-timeline":
        _states(ax, series)
    elif kind == "bargauge":
        _bars(ax, series)
    else:  # stat
        _stats(ax, series)


def _times(points: list[tuple[float, float]]) -> list[Any]:
    from datetime import UTC, datetime

    return [datetime.fromtimestamp(t, UTC) for t, _ in points]


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))


def _lines(ax: Any, series: list[Series]) -> None:
    for s in series[:12]:
        ax.plot(_times(s.points), [v for _, v in s.points], label=s.legend, linewidth=1.2)
    _time_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", ncol=2, framealpha=0.6)


def _states(ax: Any, series: list[Series]) -> None:
    for i, s in enumerate(series[:12]):
        ax.plot(_times(s.points), [i] * len(s.points), "|", markersize=10)
    ax.set_yticks(range(min(len(series), 12)), [s.legend for s in series[:12]], fontsize=7)
    ax.set_ylim(-0.5, min(len(series), 12) - 0.5)
    _time_axis(ax)


def _bars(ax: Any, series: list[Series]) -> None:
    rows = sorted(series, key=_depth_order)[:24]
    colours = ["tab:green" if "bid" in s.legend else "tab:red" if "ask" in s.legend
               else "tab:blue" for s in rows]
    ax.barh([s.legend for s in rows], [s.points[-1][1] for s in rows], color=colours)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=6)
    ax.grid(axis="x", alpha=0.3)


def _depth_order(s: Series) -> tuple[str, float, str]:
    """Bids then asks, each by level number (legends like "bids 3")."""
    side, _, rest = s.legend.partition(" ")
    try:
        return side, float(rest), ""
    except ValueError:
        return side, math.inf, rest


def _stats(ax: Any, series: list[Series]) -> None:
    ax.axis("off")
    shown = series[:6]
    for i, s in enumerate(shown):
        value = s.points[-1][1]
        text = f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
        ax.text(0.02, 1 - (i + 0.5) / max(len(shown), 1), f"{s.legend}: {text}",
                fontsize=11 if len(shown) < 4 else 8, va="center", transform=ax.transAxes)
