"""The one server interceptor: every call passes, in this order,

  observe     metrics and the request log (observability.py) see every call, refusals included
  authorize   the shared bearer token, when one is set (security.py)
  parse       bytes that are no valid request: INVALID_ARGUMENT, not gRPC's INTERNAL (malformed.py)
  admit       at most --max-queries query RPCs at once; the next is refused with a retry hint
              (admission.py)
  lease       the call holds the build that is current when it starts until its last message
              (swap.py), so a hot swap never changes the file under a running call

One wrapper per method, built once: what applies to a method (the token, the limit, the lease)
is decided when its handler is first wrapped, not on every call.
"""

from __future__ import annotations

import contextlib

import grpc

from cytoatlas.serving.admission import INFRASTRUCTURE_PREFIXES, Admission, limited
from cytoatlas.serving.malformed import refuse_unparsable, tolerant
from cytoatlas.serving.observability import HEALTH_PREFIX, Observer
from cytoatlas.serving.security import TokenCheck
from cytoatlas.serving.swap import ServedFile


class CallInterceptor(grpc.ServerInterceptor):
    def __init__(self, observer: Observer, token: TokenCheck | None, admission: Admission, files: ServedFile):
        self.observer, self.token, self.admission, self.files = observer, token, admission, files
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = continuation(handler_call_details)
            if handler is None:  # no such method: gRPC answers UNIMPLEMENTED
                return None
            wrapped = self._wrapped.setdefault(method, self._wrap(method, handler))
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        token = self.token if self.token is not None and self.token.applies_to(method) else None
        if handler.request_streaming:  # reflection (stream-stream): only the token applies
            return handler if token is None else _token_only(handler, token)
        observer, admission, files = self.observer, self.admission, self.files
        admit = limited(method)
        lease = not method.startswith(INFRASTRUCTURE_PREFIXES)
        rpc = method.rsplit("/", 1)[-1]
        health = method.startswith(HEALTH_PREFIX)  # counted apart from the traffic (observability.py)
        parse = tolerant(handler.request_deserializer) if handler.request_deserializer else None

        @contextlib.contextmanager
        def guarded(request, context):
            """Authorize, parse, admit and lease around the call's work."""
            if token is not None:
                token.check(context)
            refuse_unparsable(request, method, context)
            if admit:
                admission.enter(context)
            try:
                # A gRPC worker thread runs one call at a time, including the iteration of a
                # streamed response, so the lease is kept per thread for the life of the call.
                with files.hold() if lease else contextlib.nullcontext():
                    yield
            finally:
                if admit:
                    admission.leave()

        if handler.response_streaming:
            inner_stream = handler.unary_stream

            def streaming(request, context):
                call = observer.start(rpc, request, context, health)
                try:
                    with guarded(request, context):
                        for response in inner_stream(request, context):
                            call.sent(response)
                            yield response
                except GeneratorExit:  # the client went away mid-stream
                    call.code = grpc.StatusCode.CANCELLED
                    raise
                except BaseException:
                    call.code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    call.finish(context)

            return grpc.unary_stream_rpc_method_handler(streaming, parse, handler.response_serializer)
        inner = handler.unary_unary

        def unary(request, context):
            call = observer.start(rpc, request, context, health)
            try:
                with guarded(request, context):
                    response = inner(request, context)
                call.sent(response)
                return response
            except BaseException:
                call.code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                call.finish(context)

        return grpc.unary_unary_rpc_method_handler(unary, parse, handler.response_serializer)


def _token_only(handler: grpc.RpcMethodHandler, token: TokenCheck) -> grpc.RpcMethodHandler:
    inner = handler.stream_stream

    def checked(request_iterator, context):
        token.check(context)
        yield from inner(request_iterator, context)

    return grpc.stream_stream_rpc_method_handler(checked, handler.request_deserializer,
                                                 handler.response_serializer)
