"""A fake LLM provider: a real HTTP server on loopback speaking the OpenAI and Anthropic APIs.

Faults are chosen per request: first from the FIFO queue (``enqueue``), else from the model name when
it starts with ``fault:`` (e.g. ``fault:status:code=500``), else ``ok``. Grammar: ``name`` or
``name:k=v,k=v``. Modes:

- ``ok``: answers ``"echo: <last user text>"``; a tool call when ``tools`` are sent; JSON for json formats.
- ``status:code=N[,retry_after=S][,context=1]``: that status with an error envelope.
- ``latency:ms=N``: waits before answering.
- ``ttft:ms=N``: streaming; headers at once, first chunk after N ms.
- ``slow_stream:chunks=N,gap_ms=G``: N content chunks G ms apart.
- ``reset_after:chunks=K``: K chunks, then the connection is dropped (no finish chunk, no [DONE]).
- ``reset_before_first``: the connection is dropped before any response byte.
- ``hang_after:chunks=K``: K chunks, then silence with the socket open.
- ``inband_error``: HTTP 200, one chunk, then ``data: {"error": ...}``.
- ``no_done``: a complete stream that ends without ``data: [DONE]``.
- ``malformed_json``: a body / chunk that is not JSON.
- ``usage_missing``: a stream with no usage chunk.

Drops are real: the handler closes the TCP transport, so clients see a broken connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any | None


@dataclass
class Fault:
    name: str
    args: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Fault:
        name, _, rest = text.partition(":")
        args = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        return cls(name, args)

    def num(self, key: str, default: float) -> float:
        return float(self.args.get(key, default))


class _Drop(Exception):
    """Raised to make uvicorn abort the connection."""


class FakeUpstream:
    def __init__(self, require_key: str | None = None) -> None:
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.max_concurrency = 0
        self._queue: deque[str] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._require_key = require_key
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/messages", self._messages, methods=["POST"]),
        ])

    def enqueue(self, *faults: str) -> None:
        with self._lock:
            self._queue.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.max_concurrency = 0

    def _next_fault(self, model: str) -> Fault:
        with self._lock:
            if self._queue:
                return Fault.parse(self._queue.popleft())
        return Fault.parse(model[6:]) if model.startswith("fault:") else Fault("ok")

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.url.path, dict(request.headers), data))
        return data

    def _authorised(self, request: Request) -> bool:
        if self._require_key is None:
            return True
        auth = request.headers.get("authorization", "")
        return auth == f"Bearer {self._require_key}" or request.headers.get("x-api-key") == self._require_key

    async def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        if not self._authorised(request):
            return _openai_error(401, "bad key", "invalid_api_key")
        await self._enter()
        try:
            return await self._chat_with_fault(request, body, self._next_fault(str(body.get("model", ""))))
        finally:
            self._leave()

    async def _chat_with_fault(self, request: Request, body: dict[str, Any], fault: Fault) -> Response:
        early = await _early_fault(request, fault, openai_shape=True)
        if early is not None:
            return early
        if body.get("stream"):
            return _sse(_openai_stream(body, fault, request))
        if fault.name == "reset_after":
            _drop(request)
        if fault.name == "malformed_json":
            return Response(b"{not json", media_type="application/json")
        return JSONResponse(_completion(body))

    async def _embeddings(self, request: Request) -> Response:
        body = await self._record(request)
        fault = self._next_fault(str(body.get("model", "")))
        early = await _early_fault(request, fault, openai_shape=True)
        if early is not None:
            return early
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = int(body.get("dimensions") or 8)
        data = [{"object": "embedding", "index": i, "embedding": _vector(str(t), dims)} for i, t in enumerate(inputs)]
        tokens = sum(len(str(t).split()) for t in inputs)
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0,
                                                         "owned_by": "fake"}]})

    async def _messages(self, request: Request) -> Response:
        body = await self._record(request)
        if not self._authorised(request):
            return _anthropic_error(401, "authentication_error")
        await self._enter()
        try:
            fault = self._next_fault(str(body.get("model", "")))
            early = await _early_fault(request, fault, openai_shape=False)
            if early is not None:
                return early
            if body.get("stream"):
                return _sse(_anthropic_stream(body, fault, request))
            return JSONResponse(_anthropic_message(body))
        finally:
            self._leave()


# ---- shared fault handling -------------------------------------------------------------------------


def _drop(request: Request) -> None:
    """Abort the TCP connection under the request (a real reset, not an HTTP answer)."""
    transport = request.scope.get("extensions", {}).get("llmops.transport")
    if transport is not None:
        transport.abort()
    raise _Drop("dropped on purpose")


async def _early_fault(request: Request, fault: Fault, *, openai_shape: bool) -> Response | None:
    if fault.name == "latency":
        await asyncio.sleep(fault.num("ms", 0) / 1000)
    elif fault.name == "reset_before_first":
        _drop(request)
    elif fault.name == "status":
        code = int(fault.num("code", 500))
        headers = {"retry-after": fault.args["retry_after"]} if "retry_after" in fault.args else {}
        if openai_shape:
            err_code = "context_length_exceeded" if fault.args.get("context") else f"fake_{code}"
            msg = "This model's maximum context length is 10 tokens" if fault.args.get("context") else f"fake {code}"
            return _openai_error(code, msg, err_code, headers)
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(code, "api_error")
        return _anthropic_error(code, kind, headers)
    return None


def _openai_error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": "fake_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _anthropic_error(status: int, kind: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}
    return JSONResponse(body, status_code=status, headers=headers)


def _sse(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream")


def _last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return str(c or "")[:200]
    return ""


def _words(body: dict[str, Any]) -> int:
    total = 0
    for m in body.get("messages") or []:
        c = m.get("content")
        total += len(str(c).split()) if c else 0
    return total + len(str(body.get("system") or "").split())


def _reply(body: dict[str, Any]) -> str:
    text = _last_user_text(body)
    fmt = (body.get("response_format") or {}).get("type")
    if fmt in ("json_object", "json_schema"):
        return json.dumps({"echo": text})
    return f"echo: {text}"


def _wants_tool(body: dict[str, Any]) -> bool:
    return bool(body.get("tools")) and body.get("tool_choice") != "none"


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    content = _reply(body)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    finish = "stop"
    if _wants_tool(body):
        name = body["tools"][0]["function"]["name"]
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_fake1", "type": "function", "function": {"name": name, "arguments": "{}"}}]}
        finish = "tool_calls"
    prompt, completion = _words(body), len(content.split())
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model"), "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": None}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def _openai_stream(body: dict[str, Any], fault: Fault, request: Request) -> AsyncIterator[bytes]:
    if fault.name == "ttft":
        await asyncio.sleep(fault.num("ms", 0) / 1000)
    words = _reply(body).split(" ")
    if fault.name == "slow_stream":
        words = [f"w{i}" for i in range(int(fault.num("chunks", 5)))]
    gap = fault.num("gap_ms", 0) / 1000 if fault.name == "slow_stream" else 0
    yield _chunk(body, {"role": "assistant", "content": ""})
    for i, word in enumerate(words):
        if fault.name in ("reset_after", "hang_after") and i >= int(fault.num("chunks", 1)):
            if fault.name == "hang_after":
                await asyncio.sleep(60)
            _drop(request)
        if fault.name == "malformed_json" and i == 1:
            yield b"data: {not json\n\n"
        if fault.name == "inband_error" and i == 1:
            yield b'data: {"error": {"message": "fake in-band failure", "type": "server_error"}}\n\n'
            return
        yield _chunk(body, {"content": word if i == 0 else " " + word})
        if gap:
            await asyncio.sleep(gap)
    yield _chunk(body, {}, "stop")
    include = (body.get("stream_options") or {}).get("include_usage")
    if include and fault.name != "usage_missing":
        prompt, completion = _words(body), len(words)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model"), "choices": [], "usage": usage}
        yield b"data: " + json.dumps(data).encode() + b"\n\n"
    if fault.name != "no_done":
        yield b"data: [DONE]\n\n"


def _vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(dims)]


def _anthropic_message(body: dict[str, Any]) -> dict[str, Any]:
    text = f"echo: {_last_user_text(body)}"
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    stop = "end_turn"
    if body.get("tools"):
        content.append({"type": "tool_use", "id": "toolu_fake1", "name": body["tools"][0]["name"], "input": {"q": 1}})
        stop = "tool_use"
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"), "content": content,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": _words(body), "output_tokens": len(text.split())}}


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


async def _anthropic_stream(body: dict[str, Any], fault: Fault, request: Request) -> AsyncIterator[bytes]:
    msg = _anthropic_message(body)
    start = {**msg, "content": [], "stop_reason": None, "usage": {"input_tokens": msg["usage"]["input_tokens"],
                                                                   "output_tokens": 1}}
    yield _event("message_start", {"message": start})
    yield _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    yield _event("ping", {})
    for i, word in enumerate(msg["content"][0]["text"].split(" ")):
        if fault.name == "reset_after" and i >= int(fault.num("chunks", 1)):
            _drop(request)
        yield _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta",
                                                                     "text": word if i == 0 else " " + word}})
    yield _event("content_block_stop", {"index": 0})
    if len(msg["content"]) > 1:
        tool = msg["content"][1]
        yield _event("content_block_start", {"index": 1, "content_block": {**tool, "input": {}}})
        yield _event("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta",
                                                                     "partial_json": '{"q": 1}'}})
        yield _event("content_block_stop", {"index": 1})
    yield _event("message_delta", {"delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                                   "usage": {"output_tokens": msg["usage"]["output_tokens"]}})
    yield _event("message_stop", {})


# ---- serving ----------------------------------------------------------------------------------------


class _TransportExposingApp:
    """Puts the connection's transport into the scope so handlers can really drop the connection."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            transport = _current_transport.get(None)
            scope = {**scope, "extensions": {**scope.get("extensions", {}), "llmops.transport": transport}}
        try:
            await self.app(scope, receive, send)
        except _Drop:
            return


import contextvars  # noqa: E402

_current_transport: contextvars.ContextVar[Any] = contextvars.ContextVar("transport")


def _patch_protocols() -> None:
    """Record each connection's transport in a context variable (uvicorn creates one task per request)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    if getattr(H11Protocol, "_llmops_patched", False):
        return
    original = H11Protocol.handle_events

    def handle_events(self: Any) -> None:
        _current_transport.set(self.transport)
        original(self)

    H11Protocol.handle_events = handle_events  # type: ignore[method-assign]
    H11Protocol._llmops_patched = True  # type: ignore[attr-defined]


@contextmanager
def serve_in_thread(app: Any, *, http: str = "auto") -> Iterator[str]:
    """Run an ASGI app under uvicorn in a daemon thread on 127.0.0.1:<free port>; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", http=http, ws="none",  # type: ignore[arg-type]
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def serve_fake_upstream(require_key: str | None = None) -> Iterator[FakeUpstream]:
    _patch_protocols()
    upstream = FakeUpstream(require_key=require_key)
    with serve_in_thread(_TransportExposingApp(upstream.app), http="h11") as base:
        upstream.base_url = base
        yield upstream
