"""The native OTLP protobuf decoder (``_otlpc.c``) gives exactly what the upb path gives, and hands every body it
does not take (malformed, unusual or rejected) back to upb: spans from the real OpenTelemetry SDK encoder, every
attribute value kind, the fallback cases one by one, and randomly corrupted bodies."""

from __future__ import annotations

import random
import struct

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from llmops.core.errors import InvalidInputError
from llmops.tracing._native import native
from llmops.tracing._otlp import DecodeContext, Decoded, _varint, decode_protobuf, decode_protobuf_upb
from tests.support import otlp

CTX = DecodeContext("p", "k", 1_000)
needs_native = pytest.mark.skipif(native is None, reason="native helpers not built")


def _outcome(body: bytes, decode: object) -> tuple[str, ...]:
    """What decoding ``body`` gives, comparable across decoders (repr: a NaN attribute equals itself)."""
    try:
        out: Decoded = decode(body, CTX)  # type: ignore[operator]
    except InvalidInputError as exc:
        return ("invalid", exc.code or "")
    return ("ok", repr(out.spans), str(out.rejected), repr(out.errors))


def _same(body: bytes) -> None:
    assert _outcome(body, decode_protobuf) == _outcome(body, decode_protobuf_upb)


def _takes(body: bytes) -> bool:
    assert native is not None
    return native.decode(body, CTX.max_value_chars) is not None


def test_the_native_decoder_is_built_by_the_install() -> None:
    """`make test` installs with a C compiler: a missing decoder would silently cost ingest its speed."""
    assert native is not None


def _sdk_body() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "replicas": 3, "ratio": 0.5}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.agent", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26.0")
    with tracer.start_as_current_span("agent", attributes={"session.id": "s-1", "tags": ["a", "b"]}) as root:
        root.add_event("gen_ai.user.message", {"content": "hi ünïcödé ✓", "role": "user"})
        with tracer.start_as_current_span("chat gpt", attributes={"gen_ai.request.model": "m", "ok": True}) as child:
            child.set_attribute("gen_ai.usage.input_tokens", -(2**63))
            child.set_attribute("floats", [0.1, -2.5])
            child.set_status(Status(StatusCode.ERROR, "upstream 500"))
            child.record_exception(ValueError("boom"))
        linked = tracer.start_span("retrieve", links=[Link(root.get_span_context(), {"why": "follows"})])
        linked.end()
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


@needs_native
def test_spans_from_the_opentelemetry_sdk_decode_the_same() -> None:
    body = _sdk_body()
    assert _takes(body)
    out = decode_protobuf(body, CTX)
    assert [s.name for s in out.spans] == ["chat gpt", "retrieve", "agent"] and out.rejected == 0
    _same(body)


def _every_kind_body() -> bytes:
    trace_id, span_id = otlp.new_ids()
    values = {
        "s": "text",
        "empty": "",
        "unicode": "naïve ✓ 日本",
        "i": 7,
        "neg": -(2**63),
        "big": 2**63 - 1,
        "f": -1.25,
        "b": False,
        "t": True,
        "raw": b"\x00\xffbytes",
        "arr": [1, "two", 3.0, [True, {"k": "v"}]],
        "map": {"inner": {"deeper": [1, 2]}, "x": None or "y"},
        "dup": "first",
    }
    req = otlp.request(
        [
            otlp.span(trace_id, span_id, "root", attrs=values, status=(2, "failed"), events=[{"name": "e"}]),
            otlp.span(trace_id, otlp.new_ids()[1], "child", parent=span_id, kind=3, attrs={"k": 1}),
            otlp.span("00" * 16, otlp.new_ids()[1], "bad ids"),  # rejected alone, by the shared checks
            otlp.span(trace_id, otlp.new_ids()[1], "x" * 1_001),  # name too long: rejected alone
        ],
        resource={"service.name": "svc", "host": {"cores": 2}},
    )
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="dup").value.string_value = "second"  # a later duplicate key wins
    span.attributes.add(key="unset")  # a KeyValue without a value: None
    return req.SerializeToString()


@needs_native
def test_every_attribute_kind_and_per_span_rejections_decode_the_same() -> None:
    body = _every_kind_body()
    assert _takes(body)
    out = decode_protobuf(body, CTX)
    assert out.rejected == 2
    root = out.spans[0].attributes
    assert root["dup"] == "second" and root["unset"] is None and root["raw"] == "AP9ieXRlcw=="
    _same(body)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    tag = _varint(number << 3 | wire)
    return tag + (_varint(len(payload)) + payload if wire == 2 else payload)


def _wrap_span(span_bytes: bytes) -> bytes:
    """ExportTraceServiceRequest { resource_spans { scope_spans { spans: span_bytes } } }"""
    return _field(1, 2, _field(2, 2, _field(2, 2, span_bytes)))


def _span_bytes(*extra: bytes) -> bytes:
    return (
        _field(1, 2, bytes(range(1, 17)))
        + _field(2, 2, bytes(range(1, 9)))
        + _field(5, 2, b"op")
        + _field(7, 1, struct.pack("<Q", 10**18))
        + _field(8, 1, struct.pack("<Q", 10**18 + 5))
        + b"".join(extra)
    )


def _attr(key: bytes, value: bytes) -> bytes:
    return _field(9, 2, _field(1, 2, key) + _field(2, 2, value))


def _nested_array(depth: int, leaf: bytes = _field(1, 2, b"leaf")) -> bytes:
    value = leaf
    for _ in range(depth):
        value = _field(5, 2, _field(1, 2, value))
    return value


@needs_native
@pytest.mark.parametrize("depth", [31, 32, 33, 34])
@pytest.mark.parametrize(
    "leaf",
    [
        _field(1, 2, b"s"),
        _field(3, 0, b"\x07"),
        _field(7, 2, b"\x01"),
        b"",
        _field(6, 2, b""),
        _field(6, 2, _field(1, 2, _field(1, 2, b"k"))),  # a map holding a key without a value
    ],
    ids=repr,
)
def test_values_at_the_nesting_limit_decode_the_same(depth: int, leaf: bytes) -> None:
    """Around MAX_DEPTH the Python mapping keeps scalars but rejects bytes, unset values and containers."""
    _same(_wrap_span(_span_bytes(_attr(b"k", _nested_array(depth, leaf)))))


FALLBACKS = {
    "invalid UTF-8 in a value": _wrap_span(_span_bytes(_attr(b"k", _field(1, 2, b"\xff\xfe")))),
    "invalid UTF-8 in trace_state": _wrap_span(_span_bytes(_field(3, 2, b"\xc3"))),
    "a value longer than the limit": _wrap_span(_span_bytes(_attr(b"k", _field(1, 2, b"x" * 1_001)))),
    "bytes longer than the limit": _wrap_span(_span_bytes(_attr(b"k", _field(7, 2, b"x" * 1_001)))),
    "nesting deeper than the limit": _wrap_span(_span_bytes(_attr(b"k", _nested_array(40)))),
    "status twice (merged)": _wrap_span(_span_bytes(_field(15, 2, _field(3, 0, b"\x02")), _field(15, 2, b""))),
    "a KeyValue with two values": _wrap_span(_span_bytes(_field(9, 2, _field(2, 2, b"") + _field(2, 2, b"")))),
    "a value with two members": _wrap_span(_span_bytes(_attr(b"k", _field(5, 2, b"\x0a\x01") + _field(1, 2, b"x")))),
    "a span name twice": _wrap_span(_span_bytes(_field(5, 2, b"\xff"))),  # upb checks the first one too
    "a group wire type": _wrap_span(_span_bytes(_varint(99 << 3 | 3), _varint(99 << 3 | 4))),
    "a known field with another wire type": _wrap_span(_span_bytes(_field(6, 2, b"x"))),
    "a truncated body": _wrap_span(_span_bytes())[:-3],
    "a length beyond the body": _field(1, 2, b"")[:-1] + b"\x7f",
    "a varint of 11 bytes": _varint(1 << 3 | 0) + b"\xff" * 10 + b"\x01",
    "a varint beyond 64 bits": _wrap_span(_span_bytes(_attr(b"k", _field(3, 0, b"\xff" * 9 + b"\x7f")))),
    "field number zero": b"\x02\x00",
}


@needs_native
@pytest.mark.parametrize("case", list(FALLBACKS))
def test_unusual_bodies_fall_back_to_upb(case: str) -> None:
    body = FALLBACKS[case]
    assert not _takes(body)
    _same(body)


@needs_native
def test_unknown_fields_of_newer_versions_are_skipped() -> None:
    unknown = _field(99, 2, b"future") + _field(98, 0, b"\x05") + _field(97, 5, b"\x00\x00\x00\x00")
    body = _wrap_span(_span_bytes(unknown, _attr(b"k", _field(2, 0, b"\x01") + _field(99, 1, b"\x00" * 8))))
    assert _takes(body)
    assert decode_protobuf(body, CTX).spans[0].attributes["k"] is True
    _same(body)


@needs_native
def test_randomly_corrupted_bodies_decode_the_same_or_fall_back() -> None:
    """Flipped, inserted and cut bytes: never a crash, and the native answer always equals upb's."""
    rng = random.Random(20261129)
    deep = [_wrap_span(_span_bytes(_attr(b"k", _nested_array(d, _field(7, 2, b"x"))))) for d in (31, 33)]
    seeds = [_sdk_body(), _every_kind_body(), *deep]
    for _ in range(3_000):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body))
            action = rng.random()
            if action < 0.6:
                body[at] = rng.randrange(256)
            elif action < 0.8:
                body.insert(at, rng.randrange(256))
            else:
                del body[at:]
                if not body:
                    break
        _same(bytes(body))
