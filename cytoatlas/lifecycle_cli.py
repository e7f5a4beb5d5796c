"""The data-lifecycle subcommands of `cytoatlas`: verify, export, restore, split, diff.

Thin wrappers over builders/lifecycle: parse, run, print the report; progress goes to stderr,
reports to stdout. An operation's error is one line naming the file and the problem (exit 1).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

DOMAINS = ("atlas", "perturbation", "spatial")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _failed(command: str, exc: Exception) -> int:
    _stderr(f"cytoatlas {command}: {exc}")
    return 1


def cmd_verify(args) -> int:
    from cytoatlas.domains import DOMAINS as SPECS
    from builders.lifecycle.verify import verify_file

    reports = []
    for target in args.targets:
        path, domain = pathlib.Path(target), None
        if not path.exists() and target in SPECS:  # a domain name: its file in the data directory
            path, domain = pathlib.Path(args.data_dir) / SPECS[target].file_name, target
        report = verify_file(path, domain, full=not args.fast, log=None if args.json else _stderr)
        reports.append(report)
        if not args.json:
            print(report.text(), flush=True)
    ok = all(r.ok for r in reports)
    if args.json:
        print(json.dumps({"ok": ok, "files": [r.as_json() for r in reports]}, indent=2))
    return 0 if ok else 1


def cmd_export(args) -> int:
    from builders.lifecycle import LifecycleError
    from builders.lifecycle.export import export_domain

    try:
        export_domain(args.domain, pathlib.Path(args.db), pathlib.Path(args.to), log=_stderr)
    except LifecycleError as exc:
        return _failed("export", exc)
    return 0


def cmd_restore(args) -> int:
    from builders.lifecycle import LifecycleError
    from builders.lifecycle.restore import restore

    try:
        restore(pathlib.Path(args.source), pathlib.Path(args.output), log=_stderr)
    except LifecycleError as exc:
        return _failed("restore", exc)
    return 0


def cmd_split(args) -> int:
    from builders.lifecycle import LifecycleError
    from builders.lifecycle.split import split

    try:
        split(pathlib.Path(args.legacy), pathlib.Path(args.output), args.unassigned_to, log=_stderr)
    except LifecycleError as exc:
        return _failed("split", exc)
    return 0


def cmd_diff(args) -> int:
    """Exit 0: no changes; 1: changes; 2: a file could not be read (as diff(1))."""
    from builders.lifecycle import LifecycleError
    from builders.lifecycle.diff import diff_files, render

    try:
        diff = diff_files(pathlib.Path(args.old), pathlib.Path(args.new))
    except LifecycleError as exc:
        _failed("diff", exc)
        return 2
    print(json.dumps(diff, indent=2) if args.json else render(diff))
    return 1 if diff["changed"] else 0


def add_parsers(sub) -> None:
    p = sub.add_parser("verify", help="check database files against their domain's spec and manifest")
    p.add_argument("targets", nargs="+", metavar="FILE|DOMAIN",
                   help="database files, or domain names (their file in --data-dir)")
    p.add_argument("--data-dir", default=os.environ.get("CYTOATLAS_DATA_DIR", "."),
                   help="where a domain name's file is [env CYTOATLAS_DATA_DIR; default .]")
    p.add_argument("--fast", action="store_true", help="only the metadata checks the services run")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="back up a domain file as Parquet (zstd) + manifest JSON + checksums")
    p.add_argument("domain", choices=DOMAINS)
    p.add_argument("--db", required=True, help="the domain's database file")
    p.add_argument("--to", required=True, help="new (or empty) directory to write the export into")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("restore", help="rebuild a database file from an export, published atomically")
    p.add_argument("--from", dest="source", required=True, help="the export directory")
    p.add_argument("--output", required=True, help="the database file to publish")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("split", help="split a legacy monolithic file into the three domain files")
    p.add_argument("legacy", help="the legacy DuckDB file (opened read-only, never changed)")
    p.add_argument("--output", required=True, help="directory to publish the domain files into")
    p.add_argument("--unassigned-to", choices=DOMAINS,
                   help="put tables no domain declares into this domain's file (default: leave them out)")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("diff", help="what changes between two builds: tables, columns, rows, sources")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--json", action="store_true", help="the differences as JSON")
    p.set_defaults(func=cmd_diff)
