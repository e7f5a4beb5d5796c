"""Close names to suggest when a name is not found; the server's errors and the Router both use it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` of `choices` that look like `name` (difflib ratio >= 0.6), best first."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
