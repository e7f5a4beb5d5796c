"""Run the atlas service: python -m services.atlas --db FILE [--port N] (or: cytoatlas serve atlas)."""

import sys

from cytoatlas.cli import main

sys.exit(main(["serve", "atlas", *sys.argv[1:]]))
