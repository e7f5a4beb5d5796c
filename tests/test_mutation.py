"""The mutation run over the query path (tests/mutation/run.py), in `make test-reliability`: at
least 90% of the checked-in plausible bugs must fail the suite; the run prints the kill rate and
every survivor."""

import subprocess
import sys

import pytest

from tests.mutation.run import ROOT


@pytest.mark.reliability
@pytest.mark.timeout(3600)
def test_the_suite_kills_at_least_90_percent_of_the_query_path_mutants():
    result = subprocess.run([sys.executable, "-m", "tests.mutation.run"], cwd=ROOT, capture_output=True, text=True)
    print(result.stdout[-20_000:], result.stderr[-2_000:])
    summary = next(line for line in result.stdout.splitlines() if line.startswith("MUTATION"))
    assert result.returncode == 0, summary
