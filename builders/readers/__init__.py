"""Python readers for sources DuckDB cannot read itself (TableSpec format "reader"): each returns a
pyarrow.RecordBatchReader of source-named columns, streamed into the build."""
