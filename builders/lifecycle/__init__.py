"""Data lifecycle operations on built domain files, one module per operation:

  verify   check a file against its domain's spec and its own manifest (`cytoatlas verify`): the
           fast checks of cytoatlas/domains/verify.py (which the services run before serving a
           file), then one scan per table; `publish_verified` is the check every writer runs
  export   every table as Parquet (zstd) + manifest JSON + SHA-256 checksums (`cytoatlas export`)
  restore  an export directory -> the identical database, atomically published (`cytoatlas restore`)
  split    a legacy monolithic file -> the three domain files by the builders' specs (`cytoatlas split`)
  diff     what a rebuild changes between two files (`cytoatlas diff`)

They reuse the domains' declarations and manifest (cytoatlas/domains/), the table creation of
builders/engine.py and the temp file -> verify -> rename of builders/publish.py.
"""

from builders.lifecycle.files import LifecycleError

__all__ = ["LifecycleError"]
