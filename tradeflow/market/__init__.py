"""Market data: the DuckDB store, gap detection, backfill and bulk import."""
