"""Requests whose bytes do not parse (invalid UTF-8 in a string, wrong wire types, garbage).

gRPC answers a request it cannot deserialize with INTERNAL "Exception deserializing request!",
which blames the server for the client's bytes. This interceptor parses inside the call instead
and answers INVALID_ARGUMENT naming the message type and the parser's complaint.
"""

from __future__ import annotations

import grpc

from cytoatlas.serving.errors import Reason, invalid


class _Unparsable:
    def __init__(self, error: Exception):
        self.error = error


class MalformedRequestInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer
        method = handler_call_details.method

        def tolerant_parse(data: bytes):
            try:
                return parse(data)
            except Exception as exc:  # DecodeError and friends: the client's bytes are at fault
                return _Unparsable(exc)

        def check(request, context):
            if isinstance(request, _Unparsable):
                invalid(Reason.INVALID_REQUEST,
                        f"the request bytes are not a valid message for {method}: {request.error}",
                        "", method=method).abort(context)

        if handler.response_streaming:
            inner = handler.unary_stream

            def streaming(request, context):
                check(request, context)
                yield from inner(request, context)

            return grpc.unary_stream_rpc_method_handler(streaming, tolerant_parse, handler.response_serializer)
        inner = handler.unary_unary

        def unary(request, context):
            check(request, context)
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, tolerant_parse, handler.response_serializer)
