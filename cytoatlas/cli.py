"""The `cytoatlas` command line: demo data, builds, serving, and querying through the Router."""

from __future__ import annotations

import argparse
import pathlib
import sys

from cytoatlas import lifecycle_cli
from cytoatlas.requests import OPERATORS
from cytoatlas.serving import config

DOMAINS = ("atlas", "perturbation", "spatial")
WHERE_HELP = (f"filter as 'COLUMN OP VALUE' with OP one of {OPERATORS}, e.g. cytokine=IL-6, "
              "activity_diff<-1, 'drug contains tinib'; COLUMN=a,b,c matches any of a list; "
              "COLUMN=null / COLUMN!=null test for NULL; values are converted to the column's type; "
              "repeat to AND several")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_demo_data(args) -> int:
    from builders import demo_data

    written = demo_data.generate(pathlib.Path(args.output), scale=args.scale, seed=args.seed,
                                 domains=args.domains.split(","), log=_stderr)
    total = sum(len(files) for files in written.values())
    _stderr(f"wrote {total} source files under {args.output} (scale {args.scale}, seed {args.seed})")
    return 0


def cmd_build(args) -> int:
    from builders import engine

    if args.list:
        print(engine.describe_specs())
        return 0
    if not (args.domain and args.source and args.output):
        _stderr("cytoatlas build: give DOMAIN (atlas, perturbation, spatial or all), --source and "
                "--output, or --list")
        return 2
    try:
        if args.domain == "all":
            if args.tables:
                _stderr("cytoatlas build: --tables needs one domain, not 'all'")
                return 2
            engine.build_all(pathlib.Path(args.source), pathlib.Path(args.output), log=_stderr)
        else:
            tables = args.tables.split(",") if args.tables else None
            engine.build_domain(args.domain, pathlib.Path(args.source), pathlib.Path(args.output),
                                tables=tables, log=_stderr)
    except engine.BuildError as exc:
        _stderr(f"build failed: {exc}")
        return 1
    return 0


def cmd_serve(args) -> int:
    settings = config.from_sources(args)
    if settings.processes > 1:  # the supervisor imports none of what its workers serve with: they start sooner
        from cytoatlas.serving.processes import supervise

        return supervise(args.domain, settings)
    from cytoatlas.serving.server import serve

    return serve(args.domain, settings)


def _router(args):
    from cytoatlas.client import Router

    # The command is its own process: large results may reuse heap buffers (cytoatlas/memory.py).
    return Router({d: getattr(args, f"{d}_addr") for d in DOMAINS if getattr(args, f"{d}_addr")},
                  keep_large_buffers=True)


def cmd_tables(args) -> int:
    import pyarrow as pa

    from cytoatlas.formatting import write_table

    with _router(args) as router:
        tables = router.tables()
        listing = pa.table({
            "table": [t.name for t in tables.values()],
            "domain": [t.domain for t in tables.values()],
            "rows": [t.row_count for t in tables.values()],
            "description": [t.description for t in tables.values()],
        }).sort_by([("domain", "ascending"), ("table", "ascending")])
        write_table(listing, args.format)
        for domain, error in router.unavailable().items():
            _stderr(f"warning: {error}")
        return 1 if router.unavailable() else 0


def cmd_describe(args) -> int:
    with _router(args) as router:
        table = router.describe(args.table)
    print(f"{table.name}  ({table.domain}, {table.row_count:,} rows)\n{table.description}\n")
    width = max(len(c.name) for c in table.columns)
    for c in table.columns:
        flags = ("key " if c.name in table.key_columns else "") + ("" if c.nullable else "not null")
        print(f"  {c.name.ljust(width)}  {c.type.ljust(8)} {flags.ljust(12)} {c.description}")
    print(f"\nkey (default order): {', '.join(table.key_columns)}")
    return 0


def cmd_query(args) -> int:
    from cytoatlas.formatting import write_table

    with _router(args) as router:
        # The Router reads the same spellings: 'col op value' conditions (converted to the
        # column's type), 'col:desc' / '-col' ordering, 'function:column' aggregates.
        result = router.query(
            args.table, columns=args.columns, where=args.where, order_by=args.order_by,
            limit=None if args.all else args.limit, group_by=args.group_by, aggregates=args.aggregate)
    write_table(result, args.format, args.output)
    return 0


def cmd_status(args) -> int:
    from cytoatlas.client import CytoAtlasError

    healthy = True
    with _router(args) as router:
        for domain in DOMAINS:
            address = router.addresses[domain]
            try:
                health = router.health(domain)
                info = router.database_info(domain)
            except CytoAtlasError as exc:
                healthy = False
                print(f"{domain:13} {address:22} DOWN  {exc}")
                continue
            rows = sum(t.row_count for t in info.table_row_counts)
            healthy &= health == "SERVING"
            print(f"{domain:13} {address:22} {health:8} build {info.build_id[:12]} built {info.built_at}  "
                  f"{len(info.table_row_counts)} tables, {rows:,} rows, {info.file_size_bytes / 1e6:.1f} MB  "
                  f"{info.file_path}")
    return 0 if healthy else 1


def cmd_target(args) -> int:
    from cytoatlas.formatting import write_table

    with _router(args) as router:
        profile = router.target_profile(args.signature, args.signature_type, args.top)
    heading = f"where {profile.signature} ({profile.signature_type}) is most active:"
    if args.format == "table":
        print(heading)
    else:  # csv and json stay parseable: only the data on stdout
        _stderr(heading)
    write_table(profile.to_table(), args.format)
    for domain, error in profile.errors.items():
        _stderr(f"warning: {domain}: {error}")
    return 1 if profile.errors else 0


def cmd_search(args) -> int:
    import json

    from cytoatlas.formatting import write_table

    with _router(args) as router:
        found = router.search(args.term, args.type, args.limit)
    if args.format == "json":  # the contract: {"results": [{"name", "type", "domain", ...}, ...], ...}
        json.dump(found.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"{len(found.results)} of {sum(found.totals.values())} matches for {args.term!r}"
              + (f" ({args.type})" if args.type else "") + ", best first:")
        write_table(found.to_table(), "table")
    for domain, error in found.errors.items():
        _stderr(f"warning: {domain}: {error}")
    return 1 if found.errors else 0


def _attach_dash_values(argv: list[str]) -> list[str]:
    """`--order-by -activity_diff` as `--order-by=-activity_diff`: argparse reads a value that
    starts with '-' as an option of its own ("expected one argument")."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--order-by" and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] != "--":
            out.append(f"--order-by={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cytoatlas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-data", help="write realistic, deterministic demo source files")
    p.add_argument("--output", required=True, help="directory to write the source files into")
    p.add_argument("--scale", type=float, default=None, help="multiplies the real cardinalities "
                   "(1 = real perturbation sizes); default: the demo scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated subset")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("build", help="build domain files from source files, published atomically")
    p.add_argument("domain", nargs="?", choices=DOMAINS + ("all",))
    p.add_argument("--source", help="directory holding the source files")
    p.add_argument("--output", help="directory to publish <domain>_data.duckdb into")
    p.add_argument("--tables", help="comma-separated tables to rebuild (others are kept)")
    p.add_argument("--list", action="store_true", help="list each domain's tables and sources")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("serve", help="serve one domain's file over gRPC")
    p.add_argument("domain", choices=DOMAINS)
    config.add_arguments(p)
    p.set_defaults(func=cmd_serve)

    def client_parser(name: str, help: str, func):
        p = sub.add_parser(name, help=help)
        for d in DOMAINS:
            p.add_argument(f"--{d}-addr", help=f"host:port of the {d} service "
                           f"[env CYTOATLAS_{d.upper()}_ADDR; default 127.0.0.1:{config.DEFAULT_PORTS[d]}]")
        p.set_defaults(func=func)
        return p

    p = client_parser("tables", "list every served table", cmd_tables)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p = client_parser("describe", "show a table's columns, key and size", cmd_describe)
    p.add_argument("table")
    p = client_parser("query", "query a table through the routing client", cmd_query)
    p.add_argument("table")
    p.add_argument("--where", action="append", help="filter: " + WHERE_HELP)
    p.add_argument("--columns", help="comma-separated output columns")
    p.add_argument("--order-by", help="comma-separated columns, COLUMN:desc or -COLUMN for descending")
    p.add_argument("--group-by", help="comma-separated columns")
    p.add_argument("--aggregate", action="append", help="FUNCTION:COLUMN, e.g. avg:activity, or count")
    p.add_argument("--limit", type=int, default=20, help="most rows to return (default 20)")
    p.add_argument("--all", action="store_true", help="return every matching row")
    p.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    p.add_argument("--output", help="write to this file instead of standard output")
    client_parser("status", "health and build manifest of all three services", cmd_status)
    p = client_parser("target", "where one signature target is most active, in every domain", cmd_target)
    p.add_argument("signature", help="signature target, e.g. IFNG")
    p.add_argument("--signature-type", default="", help="CytoSig (default), SecAct or LinCytoSig (atlas)")
    p.add_argument("--top", type=int, default=5, help="hits per list (default 5, at most 100)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p = client_parser("search", "find cytokines, proteins, genes, cell types, drugs, tissues, ... in every domain",
                      cmd_search)
    p.add_argument("term", help="a name, alias, spelled-out name or part of one, e.g. IL6, 'interleukin 6', Imatinib")
    p.add_argument("--type", help="only this entity type: cytokine, protein, gene, cell_type, disease, organ, "
                   "tissue, drug, cell_line, dataset, ...")
    p.add_argument("--limit", type=int, default=20, help="results (default 20)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    lifecycle_cli.add_parsers(sub)  # verify, export, restore, split, diff
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(_attach_dash_values(argv))
    if getattr(args, "scale", "unset") is None:
        from builders.demo_data import DEFAULT_SCALE

        args.scale = DEFAULT_SCALE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one readable line for expected failures, not a traceback
        from cytoatlas.client import CytoAtlasError

        if isinstance(exc, (CytoAtlasError, ValueError)):
            _stderr(f"cytoatlas {args.command}: {exc}")
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
