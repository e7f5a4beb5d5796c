"""Plausible one-line bugs in the query path, applied one at a time by tests/mutation/run.py.

Each is a (file, exact text, replacement): the text must occur exactly once, so a mutation that
no longer applies (the code moved on) fails the run loudly instead of silently testing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str
    find: str
    replace: str
    description: str

    def check(self, root: Path) -> None:
        count = (root / self.file).read_text().count(self.find)
        if count != 1:
            raise SystemExit(f"mutation {self.id}: {self.find!r} occurs {count} times in {self.file}, not once")

    def apply(self, root: Path) -> None:
        path = root / self.file
        path.write_text(path.read_text().replace(self.find, self.replace, 1))


C, P, T, R = ("cytoatlas/serving/compiler.py", "cytoatlas/serving/paging.py", "cytoatlas/serving/typed_rpc.py",
              "cytoatlas/requests.py")
MUTATIONS: list[Mutation] = [
    Mutation("op-gt", C, 'pb.OP_GT: ">"', 'pb.OP_GT: ">="', "OP_GT compiled as >="),
    Mutation("op-le", C, 'pb.OP_LE: "<="', 'pb.OP_LE: "<"', "OP_LE compiled as <"),
    Mutation("op-lt", C, 'pb.OP_LT: "<"', 'pb.OP_LT: "<="', "OP_LT compiled as <="),
    Mutation("op-ge", C, 'pb.OP_GE: ">="', 'pb.OP_GE: ">"', "OP_GE compiled as >"),
    Mutation("op-ne", C, 'pb.OP_NE: "<>"', 'pb.OP_NE: "="', "OP_NE compiled as ="),
]
MUTATIONS += [
    Mutation("top-n-default", T, "DEFAULT_TOP_N, MAX_TOP_N = 10, 100", "DEFAULT_TOP_N, MAX_TOP_N = 11, 100",
             "GetTargetProfile's default top_n off by one"),
    Mutation("page-token-fingerprint", P, '    shape.ClearField("page_token")\n', "",
             "the fingerprint covers the page token, so every next page is refused"),
]
