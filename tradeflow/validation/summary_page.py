"""The validation summary as one self-contained HTML page (no JavaScript, works offline)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

_STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
          "table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
          "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
          ".bad{color:#b00;font-weight:bold}.FAILED{color:#b00}.passed{color:#070}")


def render_page(*, verdict: str, headline: str, series: pd.DataFrame,
                pages: list[Path | None], matrix: pd.DataFrame, gaps: pd.DataFrame,
                docs_index: Path | None, base: Path) -> str:
    """The page: series (linked to their GX pages), the rule matrix, the gaps listed."""
    def link(path: Path | None, text: str) -> str:
        if path is None:
            return html.escape(text)
        try:
            href = path.relative_to(base).as_posix()
        except ValueError:
            href = path.resolve().as_uri()
        return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'

    series_cells = [[link(page, str(row[0])), *(html.escape(str(v)) for v in row[1:])]
                    for page, row in zip(pages, series.itertuples(index=False), strict=True)]
    marked = [[html.escape(str(v)) if not isinstance(v, int) or v == 0 or i < 3
               else f'<span class="bad">{v}</span>' for i, v in enumerate(row)]
              for row in matrix.itertuples(index=False)]
    gap_part = ("<p>No gaps in the judged candles.</p>" if gaps.empty else
                "<p>Missing candles between stored ones, longest first: <em>repairable</em> "
                "ones a backfill may fill, <em>unfillable</em> ones the exchange has no "
                f"candles for (recorded by a backfill).</p>{_table(gaps)}")
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>tradeflow validation: {verdict}</title><style>{_STYLE}</style></head><body>"
        f'<h1>Candle validation: <span class="{verdict}">{verdict}</span></h1>'
        f"<p>{html.escape(headline)}</p>"
        "<h2>Series</h2><p>Each series links to its Great Expectations validation page. "
        "<em>synthetic</em>: forward-filled candles (zero volume, open = high = low = close = "
        "the previous close); <em>flat traded</em>: flat candles that traded (genuine).</p>"
        f"{_table(series, series_cells)}"
        "<h2>Failing values per rule and series</h2><p>0 = rule passed; - = not checked. "
        "Policies: <em>quarantine</em> lists the candle and counts it against the failure "
        "budget; <em>exclude</em> keeps it in the store but out of training and backtests; "
        "<em>warn</em> only reports it. Hard rules always quarantine.</p>"
        f"{_table(matrix, marked)}"
        f"<h2>Gaps</h2>{gap_part}"
        f"<p>Great Expectations Data Docs: {link(docs_index, 'index')} "
        "(needs JavaScript from public CDNs to draw its table).</p></body></html>"
    )


def _table(frame: pd.DataFrame, cells: list[list[str]] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = cells or [[html.escape(str(v)) for v in row] for row in frame.itertuples(index=False)]
    rows = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
