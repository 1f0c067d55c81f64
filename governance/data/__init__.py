"""Data loading (csv/parquet/jsonl/shipped datasets) and data-quality checks."""
