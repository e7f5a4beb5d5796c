"""CytoAtlas Data Services: shared serving core, routing client and command line."""

__version__ = "0.1.0"
