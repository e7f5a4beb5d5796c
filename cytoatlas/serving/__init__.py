"""The serving core all three domain services share: open the file read-only, read its catalog,
compile queries, encode results, serve TableService with health and reflection."""
