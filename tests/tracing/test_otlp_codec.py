"""OTLP payload decoding and encoding (``llmops.tracing._otlp``, ``llmops.tracing.ingest``) without a server:
the JSON quirks of the spec, per-span rejection, response bodies and decompression limits."""

from __future__ import annotations

import base64
import gzip
import zlib

import orjson
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmops.core.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from llmops.tracing._otlp import (
    JSON,
    PROTOBUF,
    DecodeContext,
    decode_json,
    decode_protobuf,
    export_response,
    status_body,
)
from llmops.tracing.ingest import decompress, media_type
from tests.support import otlp

CTX = DecodeContext("p", "k", 1_000)


def _json_span(**kw: object) -> dict[str, object]:
    span = {
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "name": "chat",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000,
        "kind": 3,
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "9007199254740993"}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}}},
            {"key": "obj", "value": {"kvlistValue": {"values": [{"key": "x", "value": {"doubleValue": 1.5}}]}}},
            {"key": "flag", "value": {"boolValue": True}},
            {"key": "empty", "value": {}},
        ],
        "futureField": {"ignored": True},
    }
    return {**span, **kw}


def _doc(*spans: object) -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}], "droppedAttributesCount": 0}
    return orjson.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]})


def test_json_hex_ids_int64_strings_and_unknown_fields() -> None:
    """Hex ids (any case), 64-bit integers as strings, every AnyValue kind; unknown fields are ignored."""
    out = decode_json(_doc(_json_span()), CTX)
    assert out.rejected == 0
    s = out.spans[0]
    assert (s.trace_id, s.span_id) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    assert s.start_ns == 1544712660000000000 and s.end_ns == 1544712661000000000
    assert s.input_tokens == 9007199254740993  # beyond a double's precision: parsed as an integer
    assert s.attributes["tags"] == ["a", 2] and s.attributes["obj"] == {"x": 1.5}
    assert s.attributes["flag"] is True and s.attributes["empty"] is None
    assert s.attributes["resource"] == {"service.name": "svc"}


def test_json_from_the_protobuf_json_mapping_matches_protobuf() -> None:
    """A request encoded as OTLP/JSON (MessageToDict + hex ids) decodes to the same spans as its protobuf."""
    tid, sid = otlp.new_ids()
    req = otlp.request([otlp.span(tid, sid, "x", attrs={"a": 1, "b": [1.5, "z"], "c": {"d": True}})])
    from_pb = decode_protobuf(req.SerializeToString(), CTX).spans
    from_json = decode_json(orjson.dumps(otlp.to_json(req)), CTX).spans
    assert from_pb == from_json and from_pb[0].attributes["c"] == {"d": True}


def test_base64_ids_are_accepted_as_a_fallback() -> None:
    """Plain proto3 JSON (base64 ids, as json_format would write them) is understood too."""
    tid, sid = bytes(range(1, 17)), bytes(range(1, 9))
    span = _json_span(traceId=base64.b64encode(tid).decode(), spanId=base64.b64encode(sid).decode())
    assert decode_json(_doc(span), CTX).spans[0].trace_id == tid.hex()


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"traceId": "zz" * 16}, "traceId"),
        ({"traceId": "00" * 16}, "trace_id"),
        ({"spanId": "abc"}, "spanId"),
        ({"parentSpanId": "12"}, "parentSpanId"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano"),
        ({"startTimeUnixNano": "0"}, "start_time"),
        ({"endTimeUnixNano": "1"}, "before"),
        ({"startTimeUnixNano": str(2**70)}, "64-bit"),
        ({"attributes": [{"key": "big", "value": {"stringValue": "x" * 1001}}]}, "longer than 1000"),
        ({"attributes": [{"value": {"stringValue": "no key"}}]}, "key"),
        ({"attributes": "nope"}, "list"),
        ({"name": 42}, "name"),
    ],
)
def test_a_bad_span_is_rejected_alone(patch: dict[str, object], reason: str) -> None:
    """One invalid span is counted and explained; the valid span of the same batch is kept."""
    good = _json_span(spanId="0102030405060708")
    out = decode_json(_doc(_json_span(**patch), good), CTX)
    assert [s.span_id for s in out.spans] == ["0102030405060708"]
    assert out.rejected == 1 and reason in out.error_message


def test_deeply_nested_values_are_rejected_not_crashing() -> None:
    """An attribute nested past the storable depth rejects its span (never a server error)."""
    value: dict[str, object] = {"stringValue": "leaf"}
    for _ in range(40):
        value = {"arrayValue": {"values": [value]}}
    out = decode_json(_doc(_json_span(attributes=[{"key": "deep", "value": value}])), CTX)
    assert out.rejected == 1 and "deeper" in out.error_message


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"not json", b'{"resourceSpans": 5}', b'{"resourceSpans": [{"scopeSpans": {}}]}']
)
def test_malformed_json_envelopes_are_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInputError):
        decode_json(body, CTX)


def test_malformed_protobuf_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        decode_protobuf(b"\xff\xff\xff\xff garbage", CTX)
    assert decode_protobuf(b"", CTX).spans == []  # an empty request is valid (nothing to store)


def test_responses_follow_the_spec() -> None:
    """Full success: an empty ExportTraceServiceResponse; partial: rejected count + message; Status bytes are
    exactly what googleapis' google.rpc.Status serializes."""
    out = decode_json(_doc(_json_span(), _json_span(traceId="xx")), CTX)
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(export_response(out, PROTOBUF))
    assert parsed.partial_success.rejected_spans == 1 and "traceId" in parsed.partial_success.error_message
    assert orjson.loads(export_response(out, JSON))["partialSuccess"]["rejectedSpans"] == "1"
    ok = decode_json(_doc(_json_span()), CTX)
    assert export_response(ok, PROTOBUF) == b"" and export_response(ok, JSON) == b"{}"
    for code, message in [(3, "bad"), (16, "é" * 300), (14, ""), (0, "x")]:
        assert status_body(code, message, PROTOBUF) == Status(code=code, message=message).SerializeToString()
        assert orjson.loads(status_body(code, message, JSON)) == {"code": code, "message": message}


def test_content_types_and_encodings() -> None:
    assert media_type("application/x-protobuf") == PROTOBUF
    assert media_type("Application/JSON; charset=utf-8") == JSON
    for bad in (None, "text/plain", "application/grpc"):
        with pytest.raises(UnsupportedMediaTypeError):
            media_type(bad)
    data = b"x" * 5000
    assert decompress(gzip.compress(data), "gzip", 5000) == data
    assert decompress(zlib.compress(data), "deflate", 5000) == data
    assert decompress(data, None, 5000) == data
    with pytest.raises(UnsupportedMediaTypeError):
        decompress(data, "br", 5000)
    with pytest.raises(InvalidInputError):
        decompress(b"not gzip", "gzip", 5000)
    with pytest.raises(InvalidInputError):
        decompress(gzip.compress(data)[:-20], "gzip", 5000)


def test_the_size_limit_applies_after_decompression() -> None:
    """A small gzip bomb (10 MB of zeros in ~10 kB) is refused without inflating it all."""
    bomb = gzip.compress(b"\0" * 10_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooLargeError):
        decompress(bomb, "gzip", 1_000_000)
    with pytest.raises(PayloadTooLargeError):
        decompress(b"x" * 11, None, 10)
