"""OTLP/HTTP trace payloads: decoding ``ExportTraceServiceRequest`` (protobuf or JSON) into spans, and the
response bodies the spec asks for.

- Protobuf is decoded by the native decoder (``_otlpc.c``, built at install; see its header) when it is built and
  the body is in the plain encoding exporters write, else parsed by ``opentelemetry-proto`` (upb), which also
  decides every error; both give the same spans (tests compare them). JSON is walked as a dict, never through
  ``json_format.Parse``, because OTLP/JSON ids are hex (not base64), 64-bit integers may be strings, and
  unknown fields must be ignored. A base64 id (plain proto3 JSON, 24 characters) is accepted too.
- A malformed *envelope* (not protobuf, not a JSON object, ``resourceSpans`` not a list) raises
  :class:`InvalidInputError` (the caller answers 400). A bad *span* (ids of the wrong length or all
  zero, missing or reversed times, an attribute value longer than ``max_value_chars``) is rejected alone:
  it is counted in :class:`Decoded` with a message, and the rest of the batch goes on.
- ``google.rpc.Status`` is written by hand (two fields) so the server needs no googleapis dependency;
  a test checks the bytes against ``googleapis-common-protos``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmops.core.errors import InvalidInputError
from llmops.tracing._native import native
from llmops.tracing.models import Span
from llmops.tracing.semconv import build_span

log = logging.getLogger("llmops.tracing")
MAX_ERRORS_REPORTED = 5
MAX_DEPTH = 32  # nested arrays/maps in one attribute value (the JSON encoder stops at 255)
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1
_MAX_NS = 2**63 - 1  # BIGINT
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class SpanRejected(ValueError):
    """One span of a batch is invalid; the others are kept."""


@dataclass(frozen=True)
class DecodeContext:
    project_id: str
    key_id: str | None
    max_value_chars: int


@dataclass
class Decoded:
    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, make: Callable[[], Span], span_id: Callable[[], str]) -> None:
        try:
            self.spans.append(make())
        except SpanRejected as exc:
            self.reject(span_id(), str(exc))
        except Exception:  # ingest boundary: a mapping bug rejects one span, never the batch
            log.exception("mapping an OTLP span failed")
            self.reject(span_id(), "the span could not be mapped (server error, logged)")

    def reject(self, span_id: str, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(f"span {span_id or '?'}: {reason}")

    @property
    def error_message(self) -> str:
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")


def _check_ids(trace_id: str, span_id: str, parent: str | None) -> None:
    if len(trace_id) != 32 or trace_id == _ZERO_TRACE:
        raise SpanRejected("trace_id must be 16 bytes, not all zero")
    if len(span_id) != 16 or span_id == _ZERO_SPAN:
        raise SpanRejected("span_id must be 8 bytes, not all zero")
    if parent is not None and len(parent) != 16:
        raise SpanRejected("parent_span_id must be 8 bytes or empty")


def _check_times(start_ns: int, end_ns: int) -> None:
    if start_ns <= 0 or start_ns > _MAX_NS or end_ns > _MAX_NS:
        raise SpanRejected("start_time_unix_nano is missing or out of range")
    if end_ns < start_ns:
        raise SpanRejected("end_time_unix_nano is before start_time_unix_nano")


def _too_long(limit: int) -> SpanRejected:
    return SpanRejected(f"an attribute value is longer than {limit} characters")


# --- protobuf -----------------------------------------------------------------------------------------


def _pb_value(v: Any, limit: int, depth: int = 0) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        s = v.string_value
        if len(s) > limit:
            raise _too_long(limit)
        return s
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if depth > MAX_DEPTH:
        raise SpanRejected(f"an attribute value nests deeper than {MAX_DEPTH} levels")
    if which == "array_value":
        return [_pb_value(x, limit, depth + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value, limit, depth + 1) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        if len(v.bytes_value) > limit:
            raise _too_long(limit)
        return base64.b64encode(v.bytes_value).decode()
    return None


def _pb_attrs(kvs: Any, limit: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:  # the hottest code of ingest: each upb accessor call allocates, so as few as possible
        v = kv.value
        text = v.string_value  # non-empty only when the value is a string: no WhichOneof for most values
        if text:
            if len(text) > limit:
                raise _too_long(limit)
            out[kv.key] = text
        elif v.WhichOneof("value") == "int_value":
            out[kv.key] = v.int_value
        else:
            out[kv.key] = _pb_value(v, limit)
    return out


def _check_span(ids: tuple[str, str, str | None], start: int, end: int, name: str, limit: int) -> None:
    """The checks of a span's own fields, in the order their rejection messages take precedence."""
    _check_ids(*ids)
    _check_times(start, end)
    if len(name) > limit:
        raise _too_long(limit)


def _span(
    ctx: DecodeContext,
    resource: dict[str, Any] | None,
    scope: tuple[str, str],
    ids: tuple[str, str, str | None],
    name: str,
    times: tuple[int, int],
    status: tuple[int, str],
    kind: int,
    attrs: dict[str, Any],
    events: list[dict[str, Any]] | None,
    links: list[dict[str, Any]] | None,
) -> Span:
    """The canonical span of one decoded OTLP span (each decoder's last step)."""
    return build_span(
        project_id=ctx.project_id,
        key_id=ctx.key_id,
        ids=ids,
        name=name,
        start_ns=times[0],
        end_ns=times[1],
        status=status,
        otel_kind=kind,
        attrs=attrs,
        resource=resource,
        scope=scope,
        events=events,
        links=links,
    )


def _pb_span(sp: Any, ctx: DecodeContext, resource: dict[str, Any] | None, scope: tuple[str, str]) -> Span:
    ids = (sp.trace_id.hex(), sp.span_id.hex(), sp.parent_span_id.hex() or None)
    start, end, name, limit = sp.start_time_unix_nano, sp.end_time_unix_nano, sp.name, ctx.max_value_chars
    _check_span(ids, start, end, name, limit)
    events = links = None
    pb_events, pb_links = sp.events, sp.links
    if pb_events:
        events = [
            {"name": e.name, "time_ns": e.time_unix_nano, "attributes": _pb_attrs(e.attributes, limit)}
            for e in pb_events
        ]
    if pb_links:
        links = [{"trace_id": lk.trace_id.hex(), "span_id": lk.span_id.hex()} for lk in pb_links]
    status, attrs = sp.status, _pb_attrs(sp.attributes, limit)
    return _span(
        ctx, resource, scope, ids, name, (start, end), (status.code, status.message), sp.kind, attrs, events, links
    )


def decode_protobuf(body: bytes, ctx: DecodeContext) -> Decoded:
    """The spans of an ``ExportTraceServiceRequest`` body: through the native decoder when it is built and takes the
    body, else through upb (:func:`decode_protobuf_upb`)."""
    if native is not None:
        groups = native.decode(body, ctx.max_value_chars)
        if groups is not None:
            return _decode_native(groups, ctx)
    return decode_protobuf_upb(body, ctx)


def _decode_native(groups: list[Any], ctx: DecodeContext) -> Decoded:
    """Spans from the native decoder's tuples (see ``_otlpc.c``): the same checks and mapping as the upb path."""
    out = Decoded()
    keep = out.spans.append
    limit = ctx.max_value_chars
    for resource_attrs, scopes in groups:
        resource = resource_attrs or None
        for scope_name, scope_version, spans in scopes:
            scope = (scope_name, scope_version)
            for trace_id, span_id, parent, name, kind, start, end, code, message, attrs, events, links in spans:
                ids = (trace_id, span_id, parent or None)
                try:
                    _check_span(ids, start, end, name, limit)
                    keep(
                        _span(
                            ctx, resource, scope, ids, name, (start, end), (code, message), kind, attrs, events, links
                        )
                    )
                except SpanRejected as exc:
                    out.reject(span_id, str(exc))
                except Exception:  # ingest boundary, as in decode_protobuf_upb
                    log.exception("mapping an OTLP span failed")
                    out.reject(span_id, "the span could not be mapped (server error, logged)")
    return out


def decode_protobuf_upb(body: bytes, ctx: DecodeContext) -> Decoded:
    """The spans of an ``ExportTraceServiceRequest`` body, parsed by upb: any body, and every error."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError) as exc:
        raise InvalidInputError(
            f"body is not a protobuf ExportTraceServiceRequest: {exc}", code="invalid_otlp"
        ) from exc
    out = Decoded()
    keep = out.spans.append
    for rs in request.resource_spans:
        try:
            resource = _pb_attrs(rs.resource.attributes, ctx.max_value_chars) or None
        except SpanRejected as exc:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    out.reject(sp.span_id.hex(), f"resource: {exc}")
            continue
        for ss in rs.scope_spans:
            scope = (ss.scope.name, ss.scope.version)
            for sp in ss.spans:  # Decoded.add, inlined: no partials per span
                try:
                    keep(_pb_span(sp, ctx, resource, scope))
                except SpanRejected as exc:
                    out.reject(sp.span_id.hex(), str(exc))
                except Exception:  # ingest boundary: a mapping bug rejects one span, never the batch
                    log.exception("mapping an OTLP span failed")
                    out.reject(sp.span_id.hex(), "the span could not be mapped (server error, logged)")
    return out


# --- JSON ---------------------------------------------------------------------------------------------


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def _json_id(value: Any, size: int, what: str) -> str:
    """Hex id (OTLP/JSON), or base64 (plain proto3 JSON) as a fallback; '' when absent."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise SpanRejected(f"{what} must be a hex string")
    if len(value) == size * 2:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise SpanRejected(f"{what} must be {size * 2} hex characters")
    return raw.hex()


def _json_int(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SpanRejected(f"{what} must be an integer (or a decimal string)")
    try:
        number = int(value)
    except ValueError:
        raise SpanRejected(f"{what} must be an integer (or a decimal string)") from None
    if not _MIN_INT <= number <= _MAX_INT:
        raise SpanRejected(f"{what} is out of the 64-bit range")
    return number


def _json_value(v: Any, limit: int, depth: int = 0) -> Any:
    if not isinstance(v, dict):
        raise SpanRejected("an attribute value is not an AnyValue object")
    if depth > MAX_DEPTH:
        raise SpanRejected(f"an attribute value nests deeper than {MAX_DEPTH} levels")
    for key, val in v.items():
        if key in ("stringValue", "string_value"):
            if not isinstance(val, str) or len(val) > limit:
                raise _too_long(limit) if isinstance(val, str) else SpanRejected("stringValue must be a string")
            return val
        if key in ("intValue", "int_value"):
            return _json_int(val, "intValue")
        if key in ("doubleValue", "double_value"):
            return float(val) if isinstance(val, int | float | str) and not isinstance(val, bool) else None
        if key in ("boolValue", "bool_value"):
            return bool(val)
        if key in ("arrayValue", "array_value"):
            return [_json_value(x, limit, depth + 1) for x in _list(_values(val))]
        if key in ("kvlistValue", "kvlist_value"):
            return _json_attrs(_values(val), limit, depth + 1)
        if key in ("bytesValue", "bytes_value"):
            if not isinstance(val, str) or len(val) > limit:
                raise SpanRejected("bytesValue must be base64 within the size limit")
            return val
    return None  # empty AnyValue, or only unknown fields


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpanRejected("expected a list")
    return value


def _values(container: Any) -> Any:
    return container.get("values") if isinstance(container, dict) else None


def _json_attrs(kvs: Any, limit: int, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in _list(kvs):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise SpanRejected("an attribute is not a {key, value} object")
        out[kv["key"]] = _json_value(kv.get("value") or {}, limit, depth)
    return out


def _json_events(sp: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    events = [
        {
            "name": str(e.get("name", "")),
            "time_ns": _json_int(_get(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
            "attributes": _json_attrs(e.get("attributes"), limit),
        }
        for e in _list(sp.get("events"))
        if isinstance(e, dict)
    ]
    links = [
        {
            "trace_id": _json_id(_get(lk, "traceId", "trace_id"), 16, "link traceId"),
            "span_id": _json_id(_get(lk, "spanId", "span_id"), 8, "link spanId"),
        }
        for lk in _list(sp.get("links"))
        if isinstance(lk, dict)
    ]
    return events or None, links or None


def _json_span(sp: Any, ctx: DecodeContext, resource: dict[str, Any] | None, scope: tuple[str, str]) -> Span:
    if not isinstance(sp, dict):
        raise SpanRejected("a span is not an object")
    trace_id = _json_id(_get(sp, "traceId", "trace_id"), 16, "traceId")
    span_id = _json_id(_get(sp, "spanId", "span_id"), 8, "spanId")
    parent = _json_id(_get(sp, "parentSpanId", "parent_span_id"), 8, "parentSpanId") or None
    _check_ids(trace_id, span_id, parent)
    start = _json_int(_get(sp, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _json_int(_get(sp, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    _check_times(start, end)
    name = sp.get("name") or ""
    if not isinstance(name, str) or len(name) > ctx.max_value_chars:
        raise SpanRejected("name must be a string within the size limit")
    status = sp.get("status") or {}
    code = status.get("code", 0) if isinstance(status, dict) else 0
    message = status.get("message", "") if isinstance(status, dict) else ""
    kind = sp.get("kind", 0)
    events, links = _json_events(sp, ctx.max_value_chars)
    return _span(
        ctx,
        resource,
        scope,
        (trace_id, span_id, parent),
        name,
        (start, end),
        (code if isinstance(code, int) else 0, message if isinstance(message, str) else str(message)),
        kind if isinstance(kind, int) else 0,
        _json_attrs(sp.get("attributes"), ctx.max_value_chars),
        events,
        links,
    )


def _envelope_list(d: Any, camel: str, snake: str) -> list[Any]:
    value = _get(d, camel, snake) if isinstance(d, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInputError(f"{camel} must be a list", code="invalid_otlp")
    return value


def _json_span_id(sp: Any) -> str:
    return str(sp.get("spanId", ""))[:32] if isinstance(sp, dict) else ""


def _json_scope(ss: dict[str, Any]) -> tuple[str, str]:
    scope = ss.get("scope")
    if not isinstance(scope, dict):
        return "", ""
    return str(scope.get("name") or ""), str(scope.get("version") or "")


def decode_json(body: bytes, ctx: DecodeContext) -> Decoded:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"body is not valid JSON: {exc}", code="invalid_otlp") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError("body must be a JSON ExportTraceServiceRequest object", code="invalid_otlp")
    out = Decoded()
    for rs in _envelope_list(doc, "resourceSpans", "resource_spans"):
        scopes = _envelope_list(rs, "scopeSpans", "scope_spans")
        try:
            res = rs.get("resource") if isinstance(rs, dict) else None
            resource = _json_attrs(res.get("attributes"), ctx.max_value_chars) if isinstance(res, dict) else {}
        except SpanRejected as exc:
            for ss in scopes:
                for sp in _envelope_list(ss, "spans", "spans"):
                    out.reject(_json_span_id(sp), f"resource: {exc}")
            continue
        for ss in scopes:
            scope = _json_scope(ss) if isinstance(ss, dict) else ("", "")
            for sp in _envelope_list(ss, "spans", "spans"):
                out.add(partial(_json_span, sp, ctx, resource or None, scope), partial(_json_span_id, sp))
    return out


# --- responses ----------------------------------------------------------------------------------------

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def export_response(decoded: Decoded, media_type: str) -> bytes:
    """``ExportTraceServiceResponse``: empty on full success, ``partial_success`` when spans were rejected."""
    if media_type == JSON:
        if not decoded.rejected:
            return b"{}"
        partial = {"rejectedSpans": str(decoded.rejected), "errorMessage": decoded.error_message}
        return orjson.dumps({"partialSuccess": partial})
    response = ExportTraceServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = decoded.error_message
    return response.SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def status_body(code: int, message: str, media_type: str) -> bytes:
    """A ``google.rpc.Status`` (``code`` is a gRPC status code, e.g. 3 INVALID_ARGUMENT)."""
    if media_type == JSON:
        return orjson.dumps({"code": code, "message": message})
    text = message.encode()  # proto3: fields at their default value are not written
    return (b"\x08" + _varint(code) if code else b"") + (b"\x12" + _varint(len(text)) + text if text else b"")
