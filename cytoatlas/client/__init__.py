"""The routing client other services import: `from cytoatlas.client import Router`."""

from cytoatlas.client.errors import CytoAtlasError, ServiceUnavailable, TableNotFound
from cytoatlas.client.router import Router

__all__ = ["Router", "CytoAtlasError", "ServiceUnavailable", "TableNotFound"]
