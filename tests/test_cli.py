"""The `cytoatlas` client commands against the real services: machine formats are pure data,
and the command line reads the Router's spellings (`-col`, `contains`, `starts_with`) as well as
its own (`col:desc`, `~`, `^=`)."""

import csv
import io
import json
import os
import subprocess

from tests.conftest import BIN


def cli(addresses, *args):
    env = {**os.environ, **{f"CYTOATLAS_{d.upper()}_ADDR": a for d, a in addresses.items()}}
    return subprocess.run([str(BIN / "cytoatlas"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_target_json_and_csv_are_pure_data(addresses):
    out = cli(addresses, "target", "IFNG", "--top", "2", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)  # no heading line in front
    assert rows and {"domain", "table", "value"} <= set(rows[0])
    assert "most active" in out.stderr
    out = cli(addresses, "target", "IFNG", "--top", "2", "--format", "csv")
    assert out.returncode == 0, out.stderr
    parsed = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(parsed) == len(rows) and list(parsed[0]) == list(rows[0])
    out = cli(addresses, "target", "IFNG", "--top", "2")
    assert out.stdout.startswith("where IFNG (CytoSig) is most active:")


def query_json(addresses, *args):
    out = cli(addresses, "query", "tahoe_drug_effect", "--columns", "drug,activity_diff", "--limit", "5",
              "--format", "json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_order_by_minus_column_and_column_desc_are_the_same(addresses):
    minus = query_json(addresses, "--order-by", "-activity_diff")
    assert minus == query_json(addresses, "--order-by", "activity_diff:desc")
    assert minus == query_json(addresses, "--order-by=-activity_diff")
    values = [r["activity_diff"] for r in minus]
    assert values == sorted(values, reverse=True)


def test_where_takes_the_word_operators_too(addresses):
    drug = query_json(addresses, "--where", "drug!=DMSO_TF")[0]["drug"]
    part = drug[1:4]
    assert query_json(addresses, "--where", f"drug contains {part}") == query_json(addresses, "--where", f"drug~{part}")
    assert (query_json(addresses, "--where", f"drug starts_with {drug[:3]}")
            == query_json(addresses, "--where", f"drug^={drug[:3]}"))
    assert query_json(addresses, "--where", "n_treated>1.5") == query_json(addresses, "--where", "n_treated>=2")


def test_a_value_of_the_wrong_type_is_named_in_plain_words(addresses):
    out = cli(addresses, "query", "tahoe_drug_effect", "--where", "activity_diff<abc")
    assert out.returncode == 1
    assert "column 'activity_diff' is DOUBLE (numbers)" in out.stderr and "'abc'" in out.stderr
    assert "Traceback" not in out.stderr
