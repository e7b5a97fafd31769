"""A fake LLM provider: a real HTTP server on loopback speaking the OpenAI and Anthropic APIs.

Used by the gateway tests in place of remote providers. Nothing is mocked: requests cross a real TCP socket
served by uvicorn in a background thread (see :func:`serve_fake_upstream` and :func:`serve_in_thread`).

Routes: ``POST /v1/chat/completions``, ``POST /v1/messages`` (Anthropic), ``POST /v1/embeddings``,
``GET /v1/models``. Every request (any path) is recorded in ``FakeUpstream.requests``.

Fault selection, per chat/messages request: the next string from the FIFO queue (``enqueue``), else the
model name when it starts with ``fault:`` (``model="fault:status:code=500"``), else ``ok``. Embeddings never
consume the queue; they only honour a ``fault:`` model name. Grammar: ``name`` or ``name:k=v,k=v``; the
shorthand ``name=v`` sets the mode's main argument (``status=500`` is ``status:code=500``).

Modes:

- ``ok``: ``"echo: <last user text>"`` (text cut to 200 chars); ``{"echo": "<text>"}`` for JSON response
  formats. When ``tools`` are sent (and ``tool_choice`` is not none): OpenAI answers one tool call to the first
  tool (``arguments`` ``"{}"``, finish ``tool_calls``); Anthropic answers the echo text block then a ``tool_use``
  block for the first tool with input ``{"q": 1}`` (stop ``tool_use``), as Claude typically does.
  Usage counts whitespace words: prompt = all messages (and Anthropic ``system``), completion = reply.
- ``status:code=N[,retry_after=S][,context=1]``: HTTP N with the provider's error envelope (and
  ``Retry-After``); ``context=1`` on a 400 gives ``context_length_exceeded`` (Anthropic: "prompt is too long").
- ``latency:ms=N``: sleep before the response headers.
- ``ttft:ms=N``: streaming: headers at once, first chunk after N ms (non-streaming: same as latency).
- ``slow_stream:chunks=N,gap_ms=G``: N content chunks (the reply's words, repeated as needed) G ms apart.
- ``reset_after:chunks=K``: streaming: K chunks, then the TCP connection is closed mid-body (no finish chunk,
  no ``[DONE]``; the chunked body is left incomplete). Non-streaming: headers with a Content-Length, then the
  connection is closed before any body byte.
- ``reset_before_first``: the connection is reset (RST, ``SO_LINGER`` 0) before any response byte.
- ``hang_after:chunks=K``: K chunks, then silence with the socket open (until the client leaves, max 60 s).
- ``inband_error``: HTTP 200, the role chunk and one content chunk, then a ``data: {"error": ...}`` frame, then
  a clean end (Anthropic: one delta, then an ``event: error`` overloaded_error).
- ``no_done``: a complete stream without ``data: [DONE]`` (Anthropic: without ``message_stop``).
- ``malformed_json``: non-streaming: 200 with body ``{not json``; streaming: a ``data: {not json`` frame after
  the first content chunk (the stream then goes on normally).
- ``usage_missing``: no usage chunk even when ``stream_options.include_usage`` is set (OpenAI only).

"Chunks" are the counted frames of a stream: for OpenAI every ``chat.completion.chunk`` (the first one is
the role chunk, with empty content); for Anthropic the ``content_block_delta`` events (``message_start``,
``content_block_start`` and ``ping`` always go first; the block stop/start between the text and the tool_use
block travel with the next delta).

How drops work: uvicorn does not expose the socket to the app, so :func:`serve_fake_upstream` runs uvicorn
with a small subclass of its h11 protocol that puts each connection's transport in the request scope
(``scope["extensions"]["fake_upstream.transport"]``). A drop closes (``reset_after``) or aborts with RST
(``reset_before_first``) that transport, then waits for uvicorn to notice the disconnect, so uvicorn neither
answers 500 nor finishes the chunked body.

Stream-only modes (``ttft`` aside) are ignored by non-streaming requests. A request rejected by the key check
(``require_key``) or with a body that is not JSON does not consume a queued fault.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

TRANSPORT_KEY = "fake_upstream.transport"
HANG_SECONDS = 60.0
REPLY_TEXT_LIMIT = 200
DEFAULT_EMBEDDING_DIMS = 8

Json = dict[str, Any]


# ---- faults ---------------------------------------------------------------------------------------------

_MAIN_ARG = {
    "status": "code",
    "latency": "ms",
    "ttft": "ms",
    "slow_stream": "chunks",
    "reset_after": "chunks",
    "hang_after": "chunks",
}
MODES = frozenset(
    {"ok", "reset_before_first", "inband_error", "no_done", "malformed_json", "usage_missing", *_MAIN_ARG}
)


@dataclass(frozen=True)
class Fault:
    """A parsed fault string: mode name plus integer arguments."""

    name: str
    args: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse ``name``, ``name:k=v,k=v`` or the shorthand ``name=v``; raise ValueError if unknown."""
        name, sep, rest = text.strip().partition(":")
        if not sep and "=" in name:
            name, value = name.split("=", 1)
            rest = f"{_MAIN_ARG.get(name, name)}={value}"
        if name not in MODES:
            raise ValueError(f"unknown fault mode {name!r} in {text!r}")
        try:
            args = {k.strip(): int(v) for k, v in (p.split("=", 1) for p in rest.split(",") if p.strip())}
        except ValueError as exc:
            raise ValueError(f"bad fault arguments in {text!r} (want k=<int>,...)") from exc
        return cls(name, args)

    def arg(self, key: str, default: int = 0) -> int:
        return self.args.get(key, default)

    def seconds(self, key: str = "ms") -> float:
        return self.arg(key) / 1000


OK = Fault("ok")


class _Drop(Exception):
    """Raised inside a stream to close the connection mid-body."""


class _Hang(Exception):
    """Raised inside a stream to stop sending while keeping the connection open."""


# ---- request helpers ------------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """Plain text of an OpenAI/Anthropic message content (a string or a list of parts/blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text"))
    return ""


def _last_user_text(body: Json) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))[:REPLY_TEXT_LIMIT]
    return ""


def _prompt_words(body: Json) -> int:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [_text(m.get("content")) for m in messages] + [_text(body.get("system"))]
    return sum(len(t.split()) for t in texts)


def _reply_text(body: Json) -> str:
    text = _last_user_text(body)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return json.dumps({"echo": text})
    return f"echo: {text}"


def _pieces(text: str, fault: Fault) -> list[str]:
    """The text as word chunks that concatenate back to it; ``slow_stream`` cycles the words to N chunks."""
    words = text.split(" ")
    if fault.name == "slow_stream":
        words = [words[i % len(words)] for i in range(fault.arg("chunks", 5))] or [""]
    return [words[0], *(" " + w for w in words[1:])]


def _tool_name(body: Json, *, anthropic: bool) -> str | None:
    """Name of the tool to call, or None when no tool call is wanted."""
    tools = body.get("tools")
    if not tools or not isinstance(tools, list):
        return None
    choice = body.get("tool_choice")
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    first = tools[0]
    return str(first.get("name") if anthropic else (first.get("function") or {}).get("name"))


def _usage(prompt: int, completion: int) -> Json:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# ---- OpenAI bodies --------------------------------------------------------------------------------------


def _openai_completion(body: Json, response_id: str) -> Json:
    tool = _tool_name(body, anthropic=False)
    if tool is not None:
        call = {"id": f"call_{response_id[-6:]}", "type": "function", "function": {"name": tool, "arguments": "{}"}}
        message: Json = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish, completion = "tool_calls", 2
    else:
        content = _reply_text(body)
        message = {"role": "assistant", "content": content}
        finish, completion = "stop", len(content.split())
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(_prompt_words(body), completion),
    }


def _openai_error_body(status: int, message: str, code: str | None) -> Json:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "invalid_request_error",
        429: "requests",
    }.get(status, "server_error")
    if code is None and status == 429:
        code = "rate_limit_exceeded"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _openai_status(fault: Fault) -> Response:
    code = fault.arg("code", 500)
    if code == 400 and fault.arg("context"):
        body = _openai_error_body(
            code,
            "This model's maximum context length is 16 tokens. However, your messages resulted in 99 tokens.",
            "context_length_exceeded",
        )
    else:
        body = _openai_error_body(code, f"fake upstream error {code}", None)
    return JSONResponse(body, status_code=code, headers=_retry_after(fault))


def _retry_after(fault: Fault) -> dict[str, str]:
    return {"retry-after": str(fault.args["retry_after"])} if "retry_after" in fault.args else {}


# ---- Anthropic bodies -----------------------------------------------------------------------------------


ANTHROPIC_TOOL_INPUT: Json = {"q": 1}


def _anthropic_message(body: Json, response_id: str) -> Json:
    """A Messages API reply: the echo text block, then a ``tool_use`` block when tools are offered."""
    text = f"echo: {_last_user_text(body)}"
    content: list[Json] = [{"type": "text", "text": text}]
    stop, output = "end_turn", len(text.split())
    tool = _tool_name(body, anthropic=True)
    if tool is not None:
        use = {"type": "tool_use", "id": f"toolu_{response_id[-6:]}", "name": tool, "input": ANTHROPIC_TOOL_INPUT}
        content.append(use)
        stop, output = "tool_use", output + 2
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": _prompt_words(body), "output_tokens": output},
    }


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _anthropic_error_body(status: int, message: str) -> Json:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


def _anthropic_status(fault: Fault) -> Response:
    code = fault.arg("code", 500)
    text = (
        "prompt is too long: 99 tokens > 16 maximum"
        if code == 400 and fault.arg("context")
        else ("Overloaded" if code == 529 else f"fake upstream error {code}")
    )
    return JSONResponse(_anthropic_error_body(code, text), status_code=code, headers=_retry_after(fault))


# ---- stream plans ---------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """The frames of a stream: ``head`` always, ``chunks`` counted by faults, ``tail`` to finish."""

    head: list[bytes]
    chunks: list[bytes]
    tail: list[bytes]
    error: bytes  # the in-band error frame
    mark: int  # inband_error / malformed_json strike after this many chunks


def _data(payload: Json) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _event(kind: str, payload: Json) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


def _openai_plan(body: Json, fault: Fault, response_id: str) -> _Plan:
    done = _openai_completion(body, response_id)
    base = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": done["created"],
        "model": body.get("model"),
        "system_fingerprint": None,
    }

    def chunk(delta: Json, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data({**base, "choices": [choice], "usage": None})

    message = done["choices"][0]["message"]
    deltas: list[Json]
    if message["content"] is None:
        call = message["tool_calls"][0]
        deltas = [
            {"tool_calls": [{"index": 0, **call, "function": {"name": call["function"]["name"], "arguments": ""}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
        ]
    else:
        deltas = [{"content": p} for p in _pieces(message["content"], fault)]
    chunks = [chunk({"role": "assistant", "content": "" if message["content"] is not None else None})]
    chunks += [chunk(d) for d in deltas]
    tail = [chunk({}, done["choices"][0]["finish_reason"])]
    if (body.get("stream_options") or {}).get("include_usage") and fault.name != "usage_missing":
        completion = len(deltas) if fault.name == "slow_stream" else done["usage"]["completion_tokens"]
        tail.append(_data({**base, "choices": [], "usage": _usage(done["usage"]["prompt_tokens"], completion)}))
    if fault.name != "no_done":
        tail.append(b"data: [DONE]\n\n")
    error = _data({"error": {"message": "fake in-band failure", "type": "server_error", "param": None, "code": None}})
    return _Plan([], chunks, tail, error, mark=2)


def _anthropic_chunks(content: list[Json], fault: Fault) -> list[bytes]:
    """One counted chunk per ``content_block_delta``; block stop/start events ride with the next delta."""
    text = [{"type": "text_delta", "text": p} for p in _pieces(content[0]["text"], fault)]
    chunks = [_event("content_block_delta", {"index": 0, "delta": d}) for d in text]
    if len(content) > 1:
        arguments = json.dumps(content[1]["input"])
        cut = arguments.find(" ") + 1
        opening = _event("content_block_stop", {"index": 0})
        opening += _event("content_block_start", {"index": 1, "content_block": {**content[1], "input": {}}})
        for i, part in enumerate([arguments[:cut], arguments[cut:]]):
            delta = {"index": 1, "delta": {"type": "input_json_delta", "partial_json": part}}
            chunks.append((opening if i == 0 else b"") + _event("content_block_delta", delta))
    return chunks


def _anthropic_plan(body: Json, fault: Fault, response_id: str) -> _Plan:
    done = _anthropic_message(body, response_id)
    chunks = _anthropic_chunks(done["content"], fault)
    output = done["usage"]["output_tokens"]
    if fault.name == "slow_stream":
        output = fault.arg("chunks", 5) + (2 if len(done["content"]) > 1 else 0)
    usage = {"input_tokens": done["usage"]["input_tokens"], "output_tokens": 1}
    head = [
        _event("message_start", {"message": {**done, "content": [], "stop_reason": None, "usage": usage}}),
        _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        _event("ping", {}),
    ]
    end = {"delta": {"stop_reason": done["stop_reason"], "stop_sequence": None}, "usage": {"output_tokens": output}}
    tail = [_event("content_block_stop", {"index": len(done["content"]) - 1}), _event("message_delta", end)]
    if fault.name != "no_done":
        tail.append(_event("message_stop", {}))
    error = b"event: error\ndata: " + json.dumps(_anthropic_error_body(529, "Overloaded")).encode() + b"\n\n"
    return _Plan(head, chunks, tail, error, mark=1)


async def _frames(plan: _Plan, fault: Fault) -> AsyncIterator[bytes]:
    """Yield the plan's frames, applying the stream-shaping faults."""
    if fault.name == "ttft":
        await asyncio.sleep(fault.seconds())
    for frame in plan.head:
        yield frame
    count = len(plan.chunks)
    limit = min(fault.arg("chunks", 1), count) if fault.name in ("reset_after", "hang_after") else None
    mark = min(plan.mark, count)
    gap = fault.seconds("gap_ms") if fault.name == "slow_stream" else 0.0
    for i in range(count + 1):
        if i == limit:
            raise _Drop() if fault.name == "reset_after" else _Hang()
        if i == mark and fault.name == "inband_error":
            yield plan.error
            return
        if i == mark and fault.name == "malformed_json":
            yield b"data: {not json\n\n"
        if i == count:
            break
        if i and gap:
            await asyncio.sleep(gap)
        yield plan.chunks[i]
    for frame in plan.tail:
        yield frame


# ---- raw responses: streams and dropped connections -----------------------------------------------------


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close_connection(scope: Scope, receive: Receive, *, reset: bool) -> None:
    """Close (FIN after flushing) or reset (RST) the request's TCP connection; return once uvicorn saw it."""
    transport: asyncio.Transport = scope["extensions"][TRANSPORT_KEY]
    if reset:
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    await _until_disconnect(receive)


class _EventStream(Response):
    """A ``text/event-stream`` response whose iterator may raise :class:`_Drop` or :class:`_Hang`."""

    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        super().__init__(status_code=200)
        self.frames = frames
        self.raw_headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        try:
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        except _Drop:
            await _close_connection(scope, receive, reset=False)
            return
        except _Hang:
            try:
                await asyncio.wait_for(_until_disconnect(receive), HANG_SECONDS)
            except TimeoutError:
                await _close_connection(scope, receive, reset=False)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _DroppedResponse(Response):
    """No answer at all (RST), or headers announcing ``body`` followed by a closed connection."""

    def __init__(self, body: bytes | None = None) -> None:
        super().__init__(content=body or b"", media_type="application/json")
        self.headers_first = body is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.headers_first:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await _close_connection(scope, receive, reset=not self.headers_first)


# ---- the fake provider ----------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as received: method, path, lower-cased headers and the JSON body (None if not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any | None


class FakeUpstream:
    """The fake provider's state and ASGI app (record → count → route). Serve it with serve_fake_upstream."""

    def __init__(self, require_key: str | None = None) -> None:
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.max_concurrency = 0
        self.require_key = require_key
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._ids = itertools.count(1)
        self._router = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def enqueue(self, *faults: str) -> None:
        """Queue faults for the next chat/messages requests, one each, in order (validated now)."""
        parsed = [Fault.parse(f) for f in faults]
        with self._lock:
            self._queue.extend(parsed)

    def reset(self) -> None:
        """Forget queued faults, recorded requests and the concurrency high-water mark."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.max_concurrency = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._router(scope, receive, send)
            return
        body = await _read_body(receive)
        self._record(scope, body)
        self._count(+1)
        try:
            await self._router(scope, _replay(body, receive), send)
        finally:
            self._count(-1)

    def _record(self, scope: Scope, body: bytes) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request = RecordedRequest(scope["method"], scope["path"], headers, _parse_json(body))
        with self._lock:
            self.requests.append(request)

    def _count(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self.max_concurrency = max(self.max_concurrency, self._in_flight)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _fault(self, body: Json, *, use_queue: bool) -> Fault:
        with self._lock:
            if use_queue and self._queue:
                return self._queue.popleft()
        model = str(body.get("model") or "")
        return Fault.parse(model.removeprefix("fault:")) if model.startswith("fault:") else OK

    def _denied(self, request: Request, *, anthropic: bool) -> Response | None:
        """401 in the provider's shape when ``require_key`` is set and the request does not carry it."""
        key = request.headers.get("x-api-key") if anthropic else None
        key = key or request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.require_key is None or key == self.require_key:
            return None
        if anthropic:
            return JSONResponse(_anthropic_error_body(401, "invalid x-api-key"), 401)
        return JSONResponse(_openai_error_body(401, "Incorrect API key provided", "invalid_api_key"), 401)

    async def _admit(self, request: Request, *, anthropic: bool, use_queue: bool) -> tuple[Json, Fault] | Response:
        """Check the key, parse the body and pick the fault; or return the error response to send instead."""
        denied = self._denied(request, anthropic=anthropic)
        if denied is not None:
            return denied
        body = _parse_json(await request.body())
        try:
            if not isinstance(body, dict):
                raise ValueError("request body is not a JSON object")
            return body, self._fault(body, use_queue=use_queue)
        except ValueError as exc:
            if anthropic:
                return JSONResponse(_anthropic_error_body(400, str(exc)), 400)
            return JSONResponse(_openai_error_body(400, str(exc), None), 400)

    async def _chat(self, request: Request) -> Response:
        admitted = await self._admit(request, anthropic=False, use_queue=True)
        if isinstance(admitted, Response):
            return admitted
        body, fault = admitted
        stream = bool(body.get("stream"))
        early = await _before_headers(fault, stream, _openai_status)
        if early is not None:
            return early
        response_id = self._next_id("chatcmpl")
        if stream:
            return _EventStream(_frames(_openai_plan(body, fault, response_id), fault))
        return _plain(_openai_completion(body, response_id), fault)

    async def _messages(self, request: Request) -> Response:
        admitted = await self._admit(request, anthropic=True, use_queue=True)
        if isinstance(admitted, Response):
            return admitted
        body, fault = admitted
        stream = bool(body.get("stream"))
        early = await _before_headers(fault, stream, _anthropic_status)
        if early is not None:
            return early
        response_id = self._next_id("msg")
        if stream:
            return _EventStream(_frames(_anthropic_plan(body, fault, response_id), fault))
        return _plain(_anthropic_message(body, response_id), fault)

    async def _embeddings(self, request: Request) -> Response:
        admitted = await self._admit(request, anthropic=False, use_queue=False)
        if isinstance(admitted, Response):
            return admitted
        body, fault = admitted
        early = await _before_headers(fault, False, _openai_status)
        if early is not None:
            return early
        return _plain(_embedding_response(body), fault)

    async def _models(self, request: Request) -> Response:
        denied = self._denied(request, anthropic=False)
        if denied is not None:
            return denied
        model = {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake-upstream"}
        return JSONResponse({"object": "list", "data": [model]})


async def _before_headers(fault: Fault, stream: bool, status: Callable[[Fault], Response]) -> Response | None:
    """Apply the faults that act before any response byte; return the response that replaces the answer."""
    if fault.name == "latency" or (fault.name == "ttft" and not stream):
        await asyncio.sleep(fault.seconds())
    elif fault.name == "status":
        return status(fault)
    elif fault.name == "reset_before_first":
        return _DroppedResponse()
    return None


def _plain(payload: Json, fault: Fault) -> Response:
    """A non-streaming answer, broken as the fault says."""
    if fault.name == "reset_after":
        return _DroppedResponse(json.dumps(payload).encode())
    if fault.name == "malformed_json":
        return Response(b"{not json", media_type="application/json")
    return JSONResponse(payload)


def _embedding_vector(item: Any, dims: int, as_base64: bool) -> list[float] | str:
    """A deterministic unit vector derived from a hash of the input."""
    raw = hashlib.shake_256(json.dumps(item).encode()).digest(2 * dims)
    values = [v / 32768 - 1 for v in struct.unpack(f"<{dims}H", raw)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    vector = [v / norm for v in values]
    return base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector


def _embedding_response(body: Json) -> Json:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    dims = int(body.get("dimensions") or DEFAULT_EMBEDDING_DIMS)
    as_base64 = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": _embedding_vector(item, dims, as_base64)}
        for i, item in enumerate(inputs)
    ]
    tokens = sum(len(item) if isinstance(item, list) else len(str(item).split()) for item in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _parse_json(raw: bytes) -> Any | None:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields the already-read body once, then the real channel (disconnects)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


# ---- serving --------------------------------------------------------------------------------------------


class _TransportInScopeH11(H11Protocol):
    """uvicorn's h11 protocol, plus ``scope["extensions"][TRANSPORT_KEY]`` = this connection's transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        inner = self.app

        async def with_transport(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})[TRANSPORT_KEY] = transport
            await inner(scope, receive, send)  # type: ignore[arg-type]

        self.app = with_transport  # type: ignore[assignment]


@contextmanager
def serve_in_thread(app: ASGIApp, **config: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn in a daemon thread on 127.0.0.1 (free port); yield ``http://127.0.0.1:<port>``.

    ``config`` overrides ``uvicorn.Config`` options. The server is stopped (and the thread joined) on exit.
    """
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "log_level": "warning",
        "log_config": None,
        "ws": "none",
        "lifespan": "auto",
        "timeout_graceful_shutdown": 5,
        **config,
    }
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, name="uvicorn-test-server", daemon=True)
    thread.start()
    try:
        _wait_started(server, thread)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=options["timeout_graceful_shutdown"] + 10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=10)


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during startup (see its log above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {timeout} s")
        time.sleep(0.005)


@contextmanager
def serve_fake_upstream(require_key: str | None = None) -> Iterator[FakeUpstream]:
    """Start a :class:`FakeUpstream` on loopback; yield it with ``base_url`` set; stop it on exit."""
    upstream = FakeUpstream(require_key=require_key)
    with serve_in_thread(upstream, http=_TransportInScopeH11, loop="asyncio", timeout_graceful_shutdown=1) as base:
        upstream.base_url = base
        yield upstream
