"""Pure translation between the OpenAI Chat Completions shape and the Anthropic Messages API.

The gateway speaks plain OpenAI dicts internally; these functions turn an OpenAI chat request into an
Anthropic Messages request, an Anthropic message into an OpenAI ``chat.completion``, and an Anthropic
SSE event sequence into OpenAI ``chat.completion.chunk`` dicts. No I/O, stdlib only.

Anthropic rules honoured on the way out:

- ``system``/``developer`` messages become the top-level ``system`` string (joined with a blank line);
- roles strictly alternate starting with ``user``: consecutive same-role turns are merged, ``tool``
  results travel as ``tool_result`` blocks in a user turn (placed before any text), and a conversation
  that would start with ``assistant`` gets a one-character placeholder user turn in front;
- empty or whitespace-only text blocks (which Anthropic rejects) are dropped.

Bad input raises :class:`TranslationError` whose ``param`` names the offending OpenAI request field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = [
    "JSON_ONLY_INSTRUCTION",
    "PLACEHOLDER_USER_TEXT",
    "AnthropicStreamError",
    "AnthropicStreamTranslator",
    "TranslationError",
    "from_anthropic_response",
    "map_finish_reason",
    "to_anthropic_request",
    "usage_from_anthropic",
]

JSON_ONLY_INSTRUCTION = "Respond only with valid JSON: no prose, no explanations and no Markdown code fences."
PLACEHOLDER_USER_TEXT = "."  # stands in front of a conversation that would otherwise start with assistant

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}

Block = dict[str, Any]


class TranslationError(ValueError):
    """The OpenAI request cannot be expressed as an Anthropic request; ``param`` names the field."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class AnthropicStreamError(Exception):
    """Anthropic sent an in-band ``error`` event mid-stream (e.g. ``overloaded_error``)."""

    def __init__(self, message: str, error_type: str = "api_error") -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


def map_finish_reason(stop_reason: str | None) -> str:
    """Anthropic ``stop_reason`` → OpenAI ``finish_reason`` (unknown or missing → ``"stop"``)."""
    return _FINISH_REASONS.get(stop_reason or "", "stop")


# --------------------------------------------------------------------------------------------- request


def to_anthropic_request(body: dict[str, Any], *, model: str, default_max_tokens: int = 4096) -> dict[str, Any]:
    """OpenAI chat completion request → Anthropic Messages request for ``model``."""
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object")
    if body.get("n") not in (None, 1):
        raise TranslationError("this model supports only n=1", param="n")
    system, messages = _translate_messages(body.get("messages"))
    instruction = _format_instruction(body.get("response_format"))
    if instruction:
        system.append(instruction)
    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body, default_max_tokens)}
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = messages
    out.update(_sampling(body))
    tools = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if tools:
        out["tools"] = tools
        if tool_choice is not None:
            out["tool_choice"] = tool_choice
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    return out


def _translate_messages(raw: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """OpenAI ``messages`` → (system texts, alternating Anthropic turns)."""
    if not isinstance(raw, list) or not raw:
        raise TranslationError("messages must be a non-empty array", param="messages")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(raw):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            text = "\n".join(_text_parts(msg.get("content"), i))
            if text.strip():
                system.append(text)
        elif role == "user":
            turns.append({"role": "user", "content": _user_blocks(msg.get("content"), i)})
        elif role == "assistant":
            turns.append({"role": "assistant", "content": _assistant_blocks(msg, i)})
        elif role == "tool":
            turns.append({"role": "user", "content": [_tool_result(msg, i)]})
        else:
            raise TranslationError(f"messages[{i}]: role {role!r} is not supported", param="messages")
    return system, _alternate(turns)


def _alternate(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop empty turns, merge consecutive same-role turns, and make the first turn a user turn."""
    merged: list[dict[str, Any]] = []
    for turn in turns:
        if not turn["content"]:
            continue
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"].extend(turn["content"])
        else:
            merged.append({"role": turn["role"], "content": list(turn["content"])})
    for turn in merged:
        if turn["role"] == "user":  # Anthropic wants tool results before any other content of the turn
            turn["content"].sort(key=lambda block: block.get("type") != "tool_result")
    if not merged or merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": _text_blocks(PLACEHOLDER_USER_TEXT)})
    return merged


def _text_blocks(text: str) -> list[Block]:
    return [{"type": "text", "text": text}] if text.strip() else []


def _text_parts(content: Any, i: int) -> list[str]:
    """The texts of a string / text-part-array content (``refusal`` parts count as text)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise TranslationError(f"messages[{i}].content must be a string or an array", param="messages")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get(kind) if kind in ("text", "refusal") else None
        if not isinstance(text, str):
            raise TranslationError(f"messages[{i}]: content part {kind!r} is not supported here", param="messages")
        texts.append(text)
    return texts


def _user_blocks(content: Any, i: int) -> list[Block]:
    if not isinstance(content, list):
        return [block for text in _text_parts(content, i) for block in _text_blocks(text)]
    blocks: list[Block] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), i))
        else:
            blocks.extend(block for text in _text_parts([part], i) for block in _text_blocks(text))
    return blocks


def _image_block(image_url: Any, i: int) -> Block:
    """An ``image_url`` part → an Anthropic image block (base64 for data: URLs, url for http(s))."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise TranslationError(f"messages[{i}]: image_url.url must be a string", param="messages")
    if url[:5].lower() == "data:":
        header, _, data = url[5:].partition(",")
        media_type, *params = header.split(";")
        if "base64" not in params or not media_type or not data:
            raise TranslationError(f"messages[{i}]: image data URLs must be base64-encoded", param="messages")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.lower().startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(f"messages[{i}]: image URLs must be http(s) or base64 data URLs", param="messages")


def _assistant_blocks(msg: dict[str, Any], i: int) -> list[Block]:
    blocks = [block for text in _text_parts(msg.get("content"), i) for block in _text_blocks(text)]
    calls = msg.get("tool_calls") or []
    if not isinstance(calls, list):
        raise TranslationError(f"messages[{i}].tool_calls must be an array", param="messages")
    blocks.extend(_tool_use(call, i) for call in calls)
    return blocks


def _tool_use(call: Any, i: int) -> Block:
    """An OpenAI assistant tool call → an Anthropic ``tool_use`` block (arguments JSON-parsed)."""
    fn = call.get("function") if isinstance(call, dict) and call.get("type", "function") == "function" else None
    name = fn.get("name") if isinstance(fn, dict) else None
    call_id = call.get("id") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(name, str) or not name or not isinstance(call_id, str):
        raise TranslationError(f"messages[{i}]: each tool call needs an id and a function name", param="messages")
    args = fn.get("arguments") or "{}"
    try:
        parsed = json.loads(args) if isinstance(args, str) else args
    except json.JSONDecodeError as exc:
        raise TranslationError(
            f"messages[{i}]: the arguments of tool call {call_id!r} are not valid JSON", param="messages"
        ) from exc
    if not isinstance(parsed, dict):
        raise TranslationError(
            f"messages[{i}]: the arguments of tool call {call_id!r} must be a JSON object", param="messages"
        )
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def _tool_result(msg: dict[str, Any], i: int) -> Block:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise TranslationError(f"messages[{i}]: tool messages need a tool_call_id", param="messages")
    block: Block = {"type": "tool_result", "tool_use_id": call_id}
    text = "\n".join(_text_parts(msg.get("content"), i))
    if text:
        block["content"] = text
    return block


def _max_tokens(body: dict[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TranslationError(f"{key} must be a positive integer", param=key)
        return value
    return default


def _number(body: dict[str, Any], key: str) -> float | int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TranslationError(f"{key} must be a number", param=key)
    return value


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    """temperature (clamped to Anthropic's [0, 1]), top_p, stop → stop_sequences, stream."""
    out: dict[str, Any] = {}
    temperature = _number(body, "temperature")
    if temperature is not None:
        out["temperature"] = min(1, max(0, temperature))
    top_p = _number(body, "top_p")
    if top_p is not None:
        out["top_p"] = top_p
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise TranslationError("stop must be a string or an array of strings", param="stop")
    if stop:
        out["stop_sequences"] = stop
    stream = body.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise TranslationError("stream must be a boolean", param="stream")
        out["stream"] = stream
    return out


def _tools(raw: Any) -> list[dict[str, Any]]:
    """OpenAI function tools → Anthropic tools (``parameters`` becomes ``input_schema``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TranslationError("tools must be an array", param="tools")
    out: list[dict[str, Any]] = []
    for tool in raw:
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise TranslationError("only function tools with a name are supported", param="tools")
        item: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            item["description"] = fn["description"]
        item["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
        out.append(item)
    return out


def _tool_choice(choice: Any, parallel_tool_calls: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        result = {"type": _TOOL_CHOICES[choice]}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise TranslationError("tool_choice.function.name is required", param="tool_choice")
        result = {"type": "tool", "name": name}
    elif choice is not None:
        raise TranslationError("tool_choice must be auto, required, none or a function", param="tool_choice")
    if parallel_tool_calls is False:
        result = result or {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result


def _format_instruction(fmt: Any) -> str | None:
    """``response_format`` json_object / json_schema → a system-prompt instruction (Anthropic has no JSON mode)."""
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_ONLY_INSTRUCTION
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            return JSON_ONLY_INSTRUCTION
        return f"{JSON_ONLY_INSTRUCTION} The JSON must conform to this JSON Schema:\n{json.dumps(schema)}"
    raise TranslationError("response_format.type must be text, json_object or json_schema", param="response_format")


# -------------------------------------------------------------------------------------------- response


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_anthropic(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic usage → OpenAI usage; cache reads and writes count as prompt tokens."""
    u = usage or {}
    cached = _count(u.get("cache_read_input_tokens"))
    prompt = _count(u.get("input_tokens")) + cached + _count(u.get("cache_creation_input_tokens"))
    completion = _count(u.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def from_anthropic_response(resp: dict[str, Any], *, created: int) -> dict[str, Any]:
    """Anthropic message → OpenAI ``chat.completion`` dict with one choice."""
    blocks = [b for b in resp.get("content") or [] if isinstance(b, dict)]
    texts = [str(b.get("text") or "") for b in blocks if b.get("type") == "text"]
    calls = [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})},
        }
        for b in blocks
        if b.get("type") == "tool_use"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{resp.get('id', '')}",
        "object": "chat.completion",
        "created": created,
        "model": resp.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": map_finish_reason(resp.get("stop_reason"))}],
        "usage": usage_from_anthropic(resp.get("usage")),
    }


# ------------------------------------------------------------------------------------------- streaming


class AnthropicStreamTranslator:
    """Feeds on Anthropic SSE events (type + parsed data) and returns OpenAI chunks to emit.

    A tool_use block that ends without any argument text gets an ``"{}"`` arguments chunk so clients that
    concatenate the argument deltas always end up with valid JSON.
    """

    def __init__(self, *, created: int, include_usage: bool) -> None:
        self._created = created
        self._include_usage = include_usage
        self._id = "chatcmpl-anthropic"
        self._model = ""
        self._raw_usage: dict[str, Any] = {}
        self._tools: dict[Any, int] = {}  # content block index → ordinal among tool_use blocks
        self._tools_with_args: set[Any] = set()
        self._finished = False
        self.usage: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self._finished

    def feed(self, event_type: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        handlers: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
            "message_start": self._on_message_start,
            "content_block_start": self._on_block_start,
            "content_block_delta": self._on_block_delta,
            "content_block_stop": self._on_block_stop,
            "message_delta": self._on_message_delta,
            "message_stop": self._on_message_stop,
            "error": self._on_error,
        }
        handler = handlers.get(event_type)
        if handler is None or self._finished:
            return []
        return handler(data if isinstance(data, dict) else {})

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            "usage": None,
        }

    def _update_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._raw_usage.update({k: v for k, v in usage.items() if v is not None})
            self.usage = usage_from_anthropic(self._raw_usage)

    def _on_message_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        msg = _obj(data, "message")
        if msg.get("id"):
            self._id = f"chatcmpl-{msg['id']}"
        self._model = str(msg.get("model") or "")
        self._update_usage(msg.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = _obj(data, "content_block")
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        ordinal = self._tools[data.get("index")] = len(self._tools)
        call = {"index": ordinal, "id": block.get("id"), "type": "function"}
        call["function"] = {"name": block.get("name"), "arguments": ""}
        return [self._chunk({"tool_calls": [call]})]

    def _on_block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = _obj(data, "delta")
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        index = data.get("index")
        if delta.get("type") == "input_json_delta" and delta.get("partial_json") and index in self._tools:
            self._tools_with_args.add(index)
            return [self._args_chunk(index, delta["partial_json"])]
        return []

    def _args_chunk(self, index: Any, arguments: str) -> dict[str, Any]:
        return self._chunk({"tool_calls": [{"index": self._tools[index], "function": {"arguments": arguments}}]})

    def _on_block_stop(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        index = data.get("index")
        if index in self._tools and index not in self._tools_with_args:
            self._tools_with_args.add(index)
            return [self._args_chunk(index, "{}")]
        return []

    def _on_message_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self._update_usage(data.get("usage"))
        delta = _obj(data, "delta")
        return [self._chunk({}, finish_reason=map_finish_reason(delta.get("stop_reason")))]

    def _on_message_stop(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self._finished = True
        if not self._include_usage:
            return []
        usage = self.usage or usage_from_anthropic(None)
        base = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}
        return [{**base, "choices": [], "usage": usage}]

    def _on_error(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        err = _obj(data, "error")
        raise AnthropicStreamError(
            str(err.get("message") or "Anthropic reported a stream error"), str(err.get("type") or "api_error")
        )
