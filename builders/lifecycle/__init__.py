"""Data lifecycle operations on built domain files, one module per operation:

  verify   check a file against its domain's spec and its own manifest (`cytoatlas verify`);
           `check_served` is the fast subset the services run before serving a file
  export   every table as Parquet (zstd) + manifest JSON + SHA-256 checksums (`cytoatlas export`)
  restore  an export directory -> the identical database, atomically published (`cytoatlas restore`)
  split    a legacy monolithic file -> the three domain files by the builders' specs (`cytoatlas split`)
  diff     what a rebuild changes between two files (`cytoatlas diff`)

They reuse the builders' specs (builders/spec.py and the domain modules), the manifest and table
declarations of builders/engine.py and the temp file -> verify -> rename of builders/publish.py.
"""

from builders.lifecycle.files import LifecycleError

__all__ = ["LifecycleError"]
