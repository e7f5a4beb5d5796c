"""The perturbation domain service: serves perturbation_data.duckdb on port 50052 by default."""

DOMAIN = "perturbation"
