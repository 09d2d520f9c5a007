"""The outcome of a validation run: counts per series and rule, gaps, and its renderings.

One report feeds the CLI table, the Prefect markdown artifact, the summary page and the
flow's pass/fail decision, so all of them always agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tradeflow import timeframes
from tradeflow.contracts.rules import HARD, RULES
from tradeflow.validation.summary_page import render_page

# Rules the suite judges, in report order (structural rules only arise at borders).
REPORT_RULES = tuple(r for r in RULES
                     if r not in ("column_present", "dtype", "open_time_not_null"))
GAPS_LISTED = 200  # per series on the summary page (the longest ones); the terminal shows 5


@dataclass(frozen=True, slots=True)
class RuleResult:
    """How one series fared on one rule: values checked and values failing."""

    series: str
    rule: str
    severity: str
    checked: int
    failed: int
    policy: str = "warn"


@dataclass(frozen=True, slots=True)
class GapSummary:
    """The gaps of a judged span: how many, how long, which a backfill may still fill."""

    count: int
    missing: int
    longest: int
    repairable: int   # gaps a backfill may fill
    unfillable: int   # gaps recorded unfillable: the exchange has no candles there
    listing: tuple[tuple[int, int, int, str], ...] = ()  # (start, end, missing, kind)

    @classmethod
    def of(cls, gaps: pd.DataFrame, known: list[tuple[int, int]]) -> GapSummary:
        """From gap runs (start_time, end_time, missing) and recorded unfillable ranges."""
        rows = [(int(s), int(e), int(m),
                 "unfillable" if any(a <= s and e <= b for a, b in known) else "repairable")
                for s, e, m in gaps[["start_time", "end_time", "missing"]].itertuples(
                    index=False)]
        unfillable = sum(1 for r in rows if r[3] == "unfillable")
        longest = sorted(rows, key=lambda r: (-r[2], r[0]))
        return cls(len(rows), sum(r[2] for r in rows), longest[0][2] if rows else 0,
                   len(rows) - unfillable, unfillable, tuple(longest))

    def text(self) -> str:
        if not self.count:
            return "none"
        return (f"{self.count} ({self.missing} candles; longest {self.longest}; "
                f"{self.repairable} repairable, {self.unfillable} unfillable)")


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    series: str
    label: str            # "BTC/USDT 1m"
    candles: int          # candles judged
    hard_failed: int      # candles breaking at least one hard rule
    quarantined: int      # quarantine entries added by this run
    released: int = 0     # quarantine entries released: their candle passes now
    note: str = ""
    page: Path | None = None  # this series' Data Docs page
    span: tuple[int, int] | None = None  # first and last open time judged
    quarantine_candles: int = 0          # judged candles in quarantine after the run
    excluded: int = 0                    # judged candles excluded by a policy
    gaps: GapSummary | None = None
    flat_traded: int = 0                 # genuine flat candles (they traded)


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Everything a validation run found, and whether it stays within the failure budget."""

    now_ms: int
    judged: str                     # what was judged, in words
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
    def quarantine_candles(self) -> int:
        return sum(s.quarantine_candles for s in self.series)

    @property
    def excluded(self) -> int:
        return sum(s.excluded for s in self.series)

    @property
    def quarantine_share(self) -> float:
        """Share of the judged candles in quarantine (hard rules and quarantine policies)."""
        return self.quarantine_candles / self.candles if self.candles else 0.0

    @property
    def exceeded(self) -> bool:
        return self.quarantine_share > self.max_hard_failure_share

    @property
    def docs_url(self) -> str:
        page = self.summary_page or self.docs_index
        return page.resolve().as_uri() if page else ""

    def failed(self, rule: str) -> int:
        """Failing values of one rule over every series."""
        return sum(r.failed for r in self.rules if r.rule == rule)

    def with_summary_page(self) -> ValidationReport:
        """Write ``summary.html`` beside the Data Docs index; the report that links to it.

        GX's own index draws its table with JavaScript from public CDNs, so offline it shows
        an empty table; this page is plain HTML and links to GX's per-series pages.
        """
        if self.docs_index is None:
            return self
        page = self.docs_index.parent / "summary.html"
        tmp = page.with_suffix(".html.tmp")
        text = render_page(
            verdict="FAILED" if self.exceeded else "passed", headline=self.headline(),
            series=self.series_frame(), pages=[s.page for s in self.series],
            matrix=self.matrix(), gaps=self.gap_frame(GAPS_LISTED),
            docs_index=self.docs_index, base=page.parent)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(page)  # never a half-written page
        return replace(self, summary_page=page)

    def rule_frame(self) -> pd.DataFrame:
        """Long form: series, rule, severity, policy, checked, passed, failed."""
        frame = pd.DataFrame([asdict(r) for r in self.rules],
                             columns=["series", "rule", "severity", "checked", "failed",
                                      "policy"])
        frame.insert(4, "passed", frame["checked"] - frame["failed"])
        return frame

    def series_frame(self) -> pd.DataFrame:
        """One row per series: what was judged, quarantined, excluded, gaps, rules failed."""
        rows = []
        for s in self.series:
            mine = {r.rule: r for r in self.rules if r.series == s.series}
            failed_hard = sum(1 for r in mine.values() if r.failed and r.severity == HARD)
            failed_soft = sum(1 for r in mine.values() if r.failed and r.severity != HARD)
            synthetic = mine.get("synthetic_fill")
            rows.append({
                "series": s.label,
                "judged": (f"{timeframes.iso(s.span[0])} .. {timeframes.iso(s.span[1])}"
                           if s.span else "-"),
                "candles": s.candles,
                "hard rules failed": failed_hard, "soft rules failed": failed_soft,
                "quarantined": s.quarantine_candles,
                "share": f"{s.quarantine_candles / s.candles:.3%}" if s.candles else "-",
                "excluded": s.excluded,
                "synthetic": synthetic.failed if synthetic else "-",
                "flat traded": s.flat_traded,
                "gaps": s.gaps.text() if s.gaps else "-",
                "new entries": s.quarantined, "released": s.released,
                "note": s.note,
            })
        return pd.DataFrame(rows)

    def matrix(self) -> pd.DataFrame:
        """Failing values per rule (rows) and series (columns); 0 = passed, - = not checked."""
        labels = {s.series: s.label for s in self.series}
        cells: dict[str, dict[str, int]] = {}
        policy: dict[str, str] = {}
        for r in self.rules:
            cells.setdefault(r.rule, {})[labels[r.series]] = r.failed
            policy[r.rule] = r.policy
        rows = [
            {"rule": rule, "severity": RULES[rule].severity, "policy": policy[rule],
             **{s.label: cells[rule].get(s.label, "-") for s in self.series}}
            for rule in REPORT_RULES if rule in cells
        ]
        return pd.DataFrame(rows, columns=["rule", "severity", "policy", *labels.values()])

    def gap_frame(self, per_series: int) -> pd.DataFrame:
        """The longest gaps of each series: start, end, missing candles, repairable or not."""
        rows = [{"series": s.label, "from": timeframes.iso(a), "to": timeframes.iso(b),
                 "missing": m, "kind": kind}
                for s in self.series if s.gaps for a, b, m, kind in s.gaps.listing[:per_series]]
        return pd.DataFrame(rows, columns=["series", "from", "to", "missing", "kind"])

    def headline(self) -> str:
        verdict = "FAILED" if self.exceeded else "passed"
        excluded = f"{self.excluded} excluded from training; " if self.excluded else ""
        return (
            f"validation {verdict}: judged {self.candles} candles ({self.judged}); "
            f"{self.quarantine_candles} quarantined ({self.quarantine_share:.3%}, limit "
            f"{self.max_hard_failure_share:.3%}), {self.hard_failed} breaking hard rules; "
            f"{excluded}{self.quarantined} new quarantine entries"
            f"{f', {self.released} released' if self.released else ''}; "
            f"{len(self.series)} series, at {timeframes.iso(self.now_ms)} UTC"
        )

    def text(self) -> str:
        """The summary for a terminal."""
        parts = [self.headline(), "", self.series_frame().to_string(index=False), "",
                 "failing values per rule (0 = passed):",
                 self.matrix().to_string(index=False)]
        gaps = self.gap_frame(5)
        if not gaps.empty:
            parts += ["", "longest gaps (5 per series; all on the summary page):",
                      gaps.to_string(index=False)]
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
                  "Failing values per rule and series (0 = rule passed; each rule's policy "
                  "says what happens to a failing candle):", "",
                  _markdown_table(self.matrix())]
        gaps = self.gap_frame(10)
        if not gaps.empty:
            parts += ["", "Longest gaps (10 per series):", "", _markdown_table(gaps)]
        return "\n".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (the flow's return value)."""
        return {
            "passed": not self.exceeded,
            "judged": self.judged,
            "candles": self.candles,
            "hard_failed": self.hard_failed,
            "quarantine_candles": self.quarantine_candles,
            "quarantine_share": self.quarantine_share,
            "max_hard_failure_share": self.max_hard_failure_share,
            "excluded": self.excluded,
            "quarantined": self.quarantined,
            "released": self.released,
            "gaps": {s.series: asdict(s.gaps) | {"listing": None} for s in self.series
                     if s.gaps},
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
