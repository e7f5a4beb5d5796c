"""Run the spatial service: python -m services.spatial --db FILE [--port N] (or: cytoatlas serve spatial)."""

import sys

from cytoatlas.serving.server import main

sys.exit(main("spatial", sys.argv[1:]))
