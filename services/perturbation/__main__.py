"""Run the perturbation service: python -m services.perturbation --db FILE [--port N] (or: cytoatlas serve perturbation)."""

import sys

from cytoatlas.serving.server import main

sys.exit(main("perturbation", sys.argv[1:]))
