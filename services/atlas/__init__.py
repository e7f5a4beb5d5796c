"""The atlas domain service: serves atlas_data.duckdb on port 50051 by default."""

DOMAIN = "atlas"
