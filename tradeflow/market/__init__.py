"""Market data: the DuckDB store and its quarantine, gap detection, backfill, import."""
