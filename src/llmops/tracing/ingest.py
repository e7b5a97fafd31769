"""OTLP/HTTP trace ingest: ``POST /v1/traces`` bodies in, committed spans out.

Durability: a batch is acknowledged only after it is committed. :meth:`IngestService.export` decodes,
maps (``semconv``), redacts and inserts in one worker-thread call through the app's
:class:`~llmops.tracing.store.SpanWriter`, and returns only after that transaction committed; it does not
go through the fire-and-forget :class:`~llmops.tracing.recorder.SpanRecorder`. A crash before the commit
loses nothing acknowledged (the client retries the same ids); span ids are idempotent in the store, so a
retried batch stores each span once.

Outcomes (the HTTP adapter turns them into the OTLP responses):

- every span stored, or some rejected and the rest stored -> :class:`IngestResult` (200; ``partial_success``
  names the rejected count and why);
- every span of a non-empty batch rejected, or the body undecodable -> :class:`InvalidInputError` (400);
- body larger than ``max_body_bytes`` after decompression -> :class:`PayloadTooLargeError` (413);
- an unknown Content-Type or Content-Encoding -> :class:`UnsupportedMediaTypeError` (415);
- the database unreachable -> :class:`StorageUnavailableError` (503 + Retry-After; nothing was stored).
"""

from __future__ import annotations

import asyncio
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from llmops.core.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from llmops.tracing._otlp import JSON, PROTOBUF, DecodeContext, Decoded, decode_json, decode_protobuf, export_response
from llmops.tracing.store import SpanWriter

MediaType = str  # PROTOBUF or JSON


@dataclass(frozen=True)
class IngestResult:
    body: bytes
    media_type: MediaType
    accepted: int
    rejected: int
    stored: int  # new rows (accepted minus spans already stored by an earlier try)


@dataclass
class IngestStats:
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    failed_requests: int = 0


def media_type(content_type: str | None) -> MediaType:
    """The OTLP encoding of a request from its Content-Type; raises :class:`UnsupportedMediaTypeError`."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base == PROTOBUF:
        return PROTOBUF
    if base == JSON:
        return JSON
    raise UnsupportedMediaTypeError(
        f"Content-Type {base or 'missing'!r} is not supported; send {PROTOBUF!r} or {JSON!r}", param="content-type"
    )


def error_media_type(content_type: str | None) -> MediaType:
    """The encoding an error answer uses: the request's when it is JSON, else protobuf."""
    return JSON if "json" in (content_type or "").lower() else PROTOBUF


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after ``Content-Encoding`` (gzip, deflate or none), never more than ``limit`` bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        return body
    if enc not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {enc!r} is not supported; use gzip", param="content-encoding"
        )
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"body is not valid {enc} data: {exc}", code="invalid_encoding") from exc
    if len(out) > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes after decompression")
    if not inflater.eof:
        raise InvalidInputError(f"{enc} body is truncated", code="invalid_encoding")
    return out


class IngestService:
    """Batches are decoded and written by one worker thread, in arrival order. One, because the work is
    CPU-bound Python: several threads would only contend for the GIL (measured slower: the SQLite calls that
    release it wait a whole switch interval to get it back), and one writer never waits on another."""

    def __init__(self, writer: SpanWriter, *, max_body_bytes: int, max_value_chars: int) -> None:
        self._writer = writer
        self.max_body_bytes = max_body_bytes
        self._max_value_chars = max_value_chars
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmops-ingest")
        self.stats = IngestStats()

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    async def export(
        self, project_id: str, key_id: str | None, body: bytes, *, media: MediaType, encoding: str | None
    ) -> IngestResult:
        """Store one ``ExportTraceServiceRequest``; returns after the commit (see the module docstring)."""
        self.stats.requests += 1
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._worker, self._export_sync, project_id, key_id, body, media, encoding
            )
        except Exception:
            self.stats.failed_requests += 1
            raise
        self.stats.accepted += result.accepted
        self.stats.rejected += result.rejected
        return result

    def _export_sync(
        self, project_id: str, key_id: str | None, body: bytes, media: MediaType, encoding: str | None
    ) -> IngestResult:
        raw = decompress(body, encoding, self.max_body_bytes)
        ctx = DecodeContext(project_id, key_id, self._max_value_chars)
        decoded: Decoded = decode_protobuf(raw, ctx) if media == PROTOBUF else decode_json(raw, ctx)
        if decoded.rejected and not decoded.spans:
            self.stats.rejected += decoded.rejected
            raise InvalidInputError(f"every span was rejected: {decoded.error_message}", code="invalid_spans")
        stored = self._writer.insert_spans(decoded.spans) if decoded.spans else 0
        return IngestResult(export_response(decoded, media), media, len(decoded.spans), decoded.rejected, stored)
