"""The spatial domain service: serves spatial_data.duckdb on port 50053 by default."""

DOMAIN = "spatial"
