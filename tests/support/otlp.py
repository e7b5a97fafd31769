"""Building OTLP trace requests for tests: protobuf messages, their OTLP/JSON form (hex ids), and posting them.

Spans are given as plain dicts so tests read like the wire: ``{"trace_id": "..32 hex..", "span_id": ..,
"parent": .., "name": .., "start": ns, "end": ns, "attrs": {...}, "status": (code, message)}``.
"""

from __future__ import annotations

import base64
import gzip as gzip_lib
import os
import time
from typing import Any

import httpx
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

PROTOBUF = "application/x-protobuf"


def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(key_values(v))
        return out
    out = AnyValue()
    out.array_value.values.extend(any_value(x) for x in v)
    return out


def key_values(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def new_ids() -> tuple[str, str]:
    return os.urandom(16).hex(), os.urandom(8).hex()


def span(trace_id: str, span_id: str, name: str = "op", **kw: Any) -> dict[str, Any]:
    start = kw.pop("start", time.time_ns())
    return {"trace_id": trace_id, "span_id": span_id, "name": name, "start": start, "end": start + 1_000_000, **kw}


def request(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(key_values(resource or {"service.name": "tests"}))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests.support.otlp"
    for s in spans:
        pb = PbSpan(
            trace_id=bytes.fromhex(s["trace_id"]),
            span_id=bytes.fromhex(s["span_id"]),
            parent_span_id=bytes.fromhex(s.get("parent") or ""),
            name=s["name"],
            kind=s.get("kind", 1),
            start_time_unix_nano=s["start"],
            end_time_unix_nano=s["end"],
        )
        pb.attributes.extend(key_values(s.get("attrs", {})))
        code, message = s.get("status", (0, ""))
        pb.status.code, pb.status.message = code, message
        for ev in s.get("events", []):
            e = pb.events.add(name=ev["name"], time_unix_nano=s["start"])
            e.attributes.extend(key_values(ev.get("attrs", {})))
        ss.spans.append(pb)
    return req


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def to_json(req: ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form: camelCase, 64-bit integers as strings, ids as hex (not proto3 JSON's base64)."""
    return _hex_ids(MessageToDict(req))  # type: ignore[no-any-return]


def post(
    client: httpx.Client, req: ExportTraceServiceRequest | bytes, *, gzip: bool = False, **headers: str
) -> httpx.Response:
    body = req if isinstance(req, bytes) else req.SerializeToString()
    hdrs = {"content-type": PROTOBUF, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if gzip:
        body = gzip_lib.compress(body)
        hdrs["content-encoding"] = "gzip"
    return client.post("/v1/traces", content=body, headers=hdrs)


def partial_success(resp: httpx.Response) -> tuple[int, str]:
    """(rejected_spans, error_message) of a protobuf ExportTraceServiceResponse."""
    msg = ExportTraceServiceResponse()
    msg.ParseFromString(resp.content)
    return msg.partial_success.rejected_spans, msg.partial_success.error_message
