"""Generate the Python gRPC code from protos/ into the `cytoatlas` package: `make protos`.

Output paths mirror the proto packages (cytoatlas.table.v1 -> cytoatlas/table/v1/), so the
generated imports work as they are. The output is not checked in (see .gitignore); `make`
regenerates it whenever a .proto is newer.
"""

import pathlib
import shutil
import sys

import grpc_tools
from grpc_tools import protoc

PROTOS = pathlib.Path(__file__).resolve().parent
ROOT = PROTOS.parent
PACKAGES = ("table", "atlas", "perturbation", "spatial", "search")


def main() -> int:
    for package in PACKAGES:
        shutil.rmtree(ROOT / "cytoatlas" / package, ignore_errors=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={ROOT}",
        f"--pyi_out={ROOT}",
        f"--grpc_python_out={ROOT}",
        *sources,
    ])
    if code != 0:
        return code
    for source in sources:
        package_dir = ROOT / pathlib.Path(source).parent
        while package_dir != ROOT / "cytoatlas":
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent
    print(f"generated Python code for {len(sources)} proto files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
