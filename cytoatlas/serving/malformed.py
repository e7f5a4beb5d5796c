"""Requests whose bytes do not parse (invalid UTF-8 in a string, wrong wire types, garbage).

gRPC answers a request it cannot deserialize with INTERNAL "Exception deserializing request!",
which blames the server for the client's bytes. The call interceptor (interceptor.py) parses with
`tolerant` instead, and `refuse_unparsable` answers INVALID_ARGUMENT naming the message type and
the parser's complaint.
"""

from __future__ import annotations

from collections.abc import Callable

from cytoatlas.serving.errors import Reason, invalid


class Unparsable:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, error: Exception):
        self.error = error


def tolerant(parse: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def tolerant_parse(data: bytes):
        try:
            return parse(data)
        except Exception as exc:  # DecodeError and friends: the client's bytes are at fault
            return Unparsable(exc)
    return tolerant_parse


def refuse_unparsable(request, method: str, context) -> None:
    if isinstance(request, Unparsable):
        invalid(Reason.INVALID_REQUEST, f"the request bytes are not a valid message for {method}: "
                f"{request.error}", "", method=method).abort(context)
