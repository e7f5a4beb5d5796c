"""Run the spatial service: python -m services.spatial --db FILE [--port N] (or: cytoatlas serve spatial)."""

import sys

from cytoatlas.cli import main

sys.exit(main(["serve", "spatial", *sys.argv[1:]]))
