"""The outcome of a validation run: counts per series and rule, and its renderings.

One report feeds the CLI table, the Prefect markdown artifact and the flow's pass/fail
decision, so all three always agree.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tradeflow import timeframes
from tradeflow.contracts.rules import HARD, RULES

# Rules the suite judges, in report order (structural rules only arise at borders).
REPORT_RULES = tuple(r for r in RULES
                     if r not in ("column_present", "dtype", "open_time_not_null"))


@dataclass(frozen=True, slots=True)
class RuleResult:
    """How one series fared on one rule: values checked and values failing."""

    series: str
    rule: str
    severity: str
    checked: int
    failed: int


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    series: str
    label: str            # "BTC/USDT 1m"
    candles: int          # candles in the window
    hard_failed: int      # candles breaking at least one hard rule
    quarantined: int      # quarantine entries added by this run
    released: int = 0     # quarantine entries released: their candle was corrected
    note: str = ""
    page: Path | None = None  # this series' Data Docs page


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Everything a validation run found, and whether it stays within the failure budget."""

    now_ms: int
    window_days: float
    max_hard_failure_share: float
    docs_index: Path | None
    series: tuple[SeriesSummary, ...]
    rules: tuple[RuleResult, ...]
    summary_page: Path | None = None  # summary.html beside the Data Docs: no JavaScript, offline

    @property
    def candles(self) -> int:
        return sum(s.candles for s in self.series)

    @property
    def hard_failed(self) -> int:
        return sum(s.hard_failed for s in self.series)

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.series)

    @property
    def released(self) -> int:
        return sum(s.released for s in self.series)

    @property
    def hard_failure_share(self) -> float:
        """Share of all checked candles that break at least one hard rule."""
        return self.hard_failed / self.candles if self.candles else 0.0

    @property
    def exceeded(self) -> bool:
        return self.hard_failure_share > self.max_hard_failure_share

    @property
    def docs_url(self) -> str:
        page = self.summary_page or self.docs_index
        return page.resolve().as_uri() if page else ""

    def with_summary_page(self) -> ValidationReport:
        """Write ``summary.html`` beside the Data Docs index; the report that links to it.

        GX's own index draws its table with JavaScript from public CDNs, so offline it shows
        an empty table; this page is plain HTML and links to GX's per-series pages.
        """
        if self.docs_index is None:
            return self
        page = self.docs_index.parent / "summary.html"
        tmp = page.with_suffix(".html.tmp")
        tmp.write_text(self.html(page.parent), encoding="utf-8")
        tmp.replace(page)  # never a half-written page
        return replace(self, summary_page=page)

    def html(self, base: Path) -> str:
        """The summary as one self-contained HTML page; links relative to ``base``."""
        def link(path: Path | None, text: str) -> str:
            if path is None:
                return html.escape(text)
            try:
                href = path.relative_to(base).as_posix()
            except ValueError:
                href = path.resolve().as_uri()
            return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'

        def table(frame: pd.DataFrame, cells: list[list[str]] | None = None) -> str:
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
            body = cells or [[html.escape(str(v)) for v in row]
                             for row in frame.itertuples(index=False)]
            rows = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in body)
            return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

        series = self.series_frame()
        cells = [[link(s.page, str(row[0])), *(html.escape(str(v)) for v in row[1:])]
                 for s, row in zip(self.series, series.itertuples(index=False), strict=True)]
        matrix = self.matrix()
        marked = [[html.escape(str(v)) if not isinstance(v, int) or v == 0 or i < 2
                   else f'<span class="bad">{v}</span>' for i, v in enumerate(row)]
                  for row in matrix.itertuples(index=False)]
        verdict = "FAILED" if self.exceeded else "passed"
        style = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0}"
                 "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
                 "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
                 ".bad{color:#b00;font-weight:bold}.FAILED{color:#b00}.passed{color:#070}")
        return (
            "<!doctype html><html><head><meta charset=\"utf-8\">"
            f"<title>tradeflow validation: {verdict}</title><style>{style}</style></head><body>"
            f'<h1>Candle validation: <span class="{verdict}">{verdict}</span></h1>'
            f"<p>{html.escape(self.headline())}</p>"
            "<h2>Series</h2><p>Each series links to its Great Expectations validation page.</p>"
            f"{table(series, cells)}"
            "<h2>Failing values per rule and series</h2><p>0 = rule passed; - = not checked. "
            "Hard rules quarantine the candle; soft rules are warnings.</p>"
            f"{table(matrix, marked)}"
            f"<p>Great Expectations Data Docs: {link(self.docs_index, 'index')} "
            "(needs JavaScript from public CDNs to draw its table).</p></body></html>"
        )

    def rule_frame(self) -> pd.DataFrame:
        """Long form: series, rule, severity, checked, passed, failed."""
        frame = pd.DataFrame([asdict(r) for r in self.rules],
                             columns=["series", "rule", "severity", "checked", "failed"])
        frame.insert(4, "passed", frame["checked"] - frame["failed"])
        return frame

    def series_frame(self) -> pd.DataFrame:
        """One row per series: candles, hard-failed candles, share, rules passed/failed."""
        rows = []
        for s in self.series:
            mine = [r for r in self.rules if r.series == s.series]
            failed_hard = sum(1 for r in mine if r.failed and r.severity == HARD)
            failed_soft = sum(1 for r in mine if r.failed and r.severity != HARD)
            rows.append({
                "series": s.label, "candles": s.candles,
                "rules passed": len(mine) - failed_hard - failed_soft,
                "hard rules failed": failed_hard, "soft rules warned": failed_soft,
                "hard-failed candles": s.hard_failed,
                "share": f"{s.hard_failed / s.candles:.3%}" if s.candles else "-",
                "quarantined (new)": s.quarantined, "released": s.released,
                "note": s.note,
            })
        return pd.DataFrame(rows)

    def matrix(self) -> pd.DataFrame:
        """Failing values per rule (rows) and series (columns); 0 = passed, - = not checked."""
        labels = {s.series: s.label for s in self.series}
        cells: dict[str, dict[str, int]] = {}
        for r in self.rules:
            cells.setdefault(r.rule, {})[labels[r.series]] = r.failed
        rows = [
            {"rule": rule, "severity": RULES[rule].severity,
             **{s.label: cells[rule].get(s.label, "-") for s in self.series}}
            for rule in REPORT_RULES if rule in cells
        ]
        return pd.DataFrame(rows, columns=["rule", "severity", *labels.values()])

    def headline(self) -> str:
        verdict = "FAILED" if self.exceeded else "passed"
        return (
            f"validation {verdict}: {self.hard_failed} of {self.candles} candles "
            f"({self.hard_failure_share:.3%}) break hard rules, limit "
            f"{self.max_hard_failure_share:.3%}; {self.quarantined} new quarantine entries"
            f"{f', {self.released} released' if self.released else ''}; "
            f"{len(self.series)} series, last {self.window_days:g} days to "
            f"{timeframes.iso(self.now_ms)} UTC"
        )

    def text(self) -> str:
        """The summary for a terminal."""
        parts = [self.headline(), "", self.series_frame().to_string(index=False), "",
                 "failing values per rule (0 = passed):",
                 self.matrix().to_string(index=False)]
        if self.summary_page:
            parts += ["", f"Summary page: {self.summary_page}"]
        if self.docs_index:
            parts += [f"Data Docs: {self.docs_index}"]
        return "\n".join(parts)

    def markdown(self) -> str:
        """The summary as Markdown (Prefect artifact)."""
        verdict = "**FAILED**" if self.exceeded else "**passed**"
        parts = [f"{verdict}: {self.headline().split(': ', 1)[1]}", ""]
        if self.summary_page:
            parts += [f"Summary page: [{self.summary_page}]({self.docs_url})", ""]
        if self.docs_index:
            parts += [f"Data Docs: [{self.docs_index}]({self.docs_index.resolve().as_uri()})",
                      ""]
        parts += [_markdown_table(self.series_frame()), "",
                  "Failing values per rule and series (0 = rule passed; hard rules quarantine "
                  "the candle, soft rules are warnings):", "",
                  _markdown_table(self.matrix())]
        return "\n".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (the flow's return value)."""
        return {
            "passed": not self.exceeded,
            "candles": self.candles,
            "hard_failed": self.hard_failed,
            "hard_failure_share": self.hard_failure_share,
            "max_hard_failure_share": self.max_hard_failure_share,
            "quarantined": self.quarantined,
            "released": self.released,
            "docs_index": str(self.docs_index) if self.docs_index else None,
            "summary_page": str(self.summary_page) if self.summary_page else None,
            "rules": [{**asdict(r), "passed": r.checked - r.failed} for r in self.rules],
        }


def _markdown_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)
