"""Run the atlas service: python -m services.atlas --db FILE [--port N] (or: cytoatlas serve atlas)."""

import sys

from cytoatlas.serving.server import main

sys.exit(main("atlas", sys.argv[1:]))
