"""Run the perturbation service: python -m services.perturbation --db FILE [--port N] (or: cytoatlas serve perturbation)."""

import sys

from cytoatlas.cli import main

sys.exit(main(["serve", "perturbation", *sys.argv[1:]]))
