"""Experiment targets: what an experiment runs each dataset item through.

A target spec is a JSON/YAML mapping with exactly one kind key:

- ``{"prompt": {"name": N, "version": V | "label": L}, "model": ALIAS?, "params": {...}?}``: the prompt version
  rendered with the item input as variables (a mapping as is; a string, or chat messages such as an item built
  from a trace, become ``{"input": <text of the last user message>}``) and sent
  through the gateway on ``model`` (default: the prompt's own model);
- ``{"model": ALIAS, "params": {...}?}``: the item input as chat messages (a string becomes one user message;
  a list of messages or ``{"messages": [...]}`` is sent as is) to a gateway model alias;
- ``{"http": {"url": U, "output_path": "a.b.0", "timeout_s": 30, "headers": {...}}}``: POST
  ``{"id", "input", "metadata"}`` as JSON; the output is the answer's value at ``output_path`` (dotted keys and
  list indexes; the whole body when empty);
- ``{"python": "module:function"}``: called with the item input (in-process only: never over the API).

Prompt and model targets call the gateway in-process (:class:`GatewayTargets` with a principal: each call is a
traced, costed gateway call whose trace id is kept on the result), or, from the CLI without a server process, a
running llmops server through the official ``openai`` client (:class:`RemoteTargets`: ``--base-url`` /
``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from llmops.core.errors import InvalidInputError, UpstreamError
from llmops.core.http import HttpClient
from llmops.evals.datasets import DatasetItem
from llmops.evals.runner import Target, TargetOutput, python_target
from llmops.gateway import CallContext, GatewayService

KINDS = ("prompt", "model", "http", "python")
_PARAMS = {"temperature", "max_tokens", "top_p", "seed", "stop", "response_format"}
_TOP_KEYS = {"prompt", "model", "http", "python", "params"}


def kind_of(spec: Mapping[str, Any]) -> str:
    """The spec's kind (``prompt`` wins over ``model``: a prompt target may name the model it runs on)."""
    for k in KINDS:
        if k in spec:
            return k
    raise InvalidInputError(f"target must have one of {list(KINDS)}", param="target")


def validate_target(raw: Any, *, allow_python: bool = True) -> dict[str, Any]:
    """A clean copy of a target spec, or :class:`InvalidInputError` naming the bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidInputError("target must be an object", param="target")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise InvalidInputError(f"target: unknown key(s) {sorted(unknown)}", param="target")
    kind = kind_of(raw)
    present = [k for k in KINDS if k in raw and not (kind == "prompt" and k == "model")]
    if len(present) != 1:
        raise InvalidInputError(f"target must have exactly one of {list(KINDS)}, got {present}", param="target")
    params = raw.get("params") or {}
    if not isinstance(params, Mapping) or set(params) - _PARAMS:
        raise InvalidInputError(f"target.params may hold only {sorted(_PARAMS)}", param="target.params")
    out: dict[str, Any] = {"params": dict(params)} if params else {}
    if "model" in raw and (not isinstance(raw["model"], str) or not raw["model"]):
        raise InvalidInputError("target.model must be a model alias", param="target.model")
    if kind == "prompt":
        out["prompt"] = _prompt_ref(raw["prompt"])
        if "model" in raw:
            out["model"] = raw["model"]
    elif kind == "model":
        out["model"] = raw["model"]
    elif kind == "http":
        out["http"] = _http_spec(raw["http"])
    else:
        if not allow_python:
            raise InvalidInputError("python targets run only in-process (the CLI), not over the API", param="target")
        ref = raw["python"]
        if not isinstance(ref, str) or ":" not in ref:
            raise InvalidInputError("target.python must be 'module:function'", param="target.python")
        out["python"] = ref
    return out


def _prompt_ref(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):  # "name@3" or "name@label"
        name, _, at = raw.partition("@")
        raw = {"name": name, **({"version": int(at)} if at.isdigit() else {"label": at} if at else {})}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise InvalidInputError("target.prompt needs a 'name'", param="target.prompt")
    if set(raw) - {"name", "version", "label"}:
        raise InvalidInputError("target.prompt is {name, version | label}", param="target.prompt")
    if "version" in raw and "label" in raw:
        raise InvalidInputError("target.prompt takes a version or a label, not both", param="target.prompt")
    version = raw.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InvalidInputError("target.prompt.version must be a positive integer", param="target.prompt.version")
    label = raw.get("label")
    if label is not None and (not isinstance(label, str) or not label):
        raise InvalidInputError("target.prompt.label must be a string", param="target.prompt.label")
    ref: dict[str, Any] = {"name": raw["name"]}
    if version is not None:
        ref["version"] = version
    elif label is not None:
        ref["label"] = label
    else:
        ref["label"] = "production"
    return ref


def _http_spec(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("url"), str):
        raise InvalidInputError("target.http needs a 'url'", param="target.http.url")
    if set(raw) - {"url", "output_path", "timeout_s", "headers"}:
        raise InvalidInputError("target.http is {url, output_path, timeout_s, headers}", param="target.http")
    url = raw["url"]
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError("target.http.url must be an http(s) URL", param="target.http.url")
    timeout = raw.get("timeout_s", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise InvalidInputError("target.http.timeout_s must be in (0, 600]", param="target.http.timeout_s")
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidInputError("target.http.headers must map names to strings", param="target.http.headers")
    path = raw.get("output_path") or ""
    if not isinstance(path, str):
        raise InvalidInputError("target.http.output_path must be a dotted path", param="target.http.output_path")
    return {"url": url, "output_path": path, "timeout_s": float(timeout), "headers": dict(headers)}


def describe(spec: Mapping[str, Any]) -> str:
    """A short human label: ``prompt greet@2 on local``, ``model local``, ``http URL``, ``python m:f``."""
    kind = kind_of(spec)
    if kind == "prompt":
        p = spec["prompt"]
        ref = p.get("version", p.get("label"))
        return f"prompt {p['name']}@{ref}" + (f" on {spec['model']}" if spec.get("model") else "")
    if kind == "http":
        return f"http {spec['http']['url']}"
    return f"{kind} {spec[kind]}"


# --- building callables ------------------------------------------------------------------------------------------
def messages_of(value: Any) -> list[dict[str, Any]]:
    """Chat messages from an item input: a string, a list of messages or ``{"messages": [...]}``."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and all(isinstance(m, Mapping) and "role" in m for m in value):
        return [dict(m) for m in value]
    raise InvalidInputError("a model target needs an input string or a list of chat messages", param="input")


def variables_of(value: Any) -> dict[str, Any]:
    """Prompt variables from an item input: a mapping as is (without ``messages``); a string, or chat messages
    (e.g. an item built from a trace), as ``{"input": <the text of the last user message>}``."""
    if isinstance(value, Mapping) and "messages" not in value:
        return dict(value)
    if isinstance(value, str):
        return {"input": value}
    users = [m for m in messages_of(value) if m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if isinstance(content, list):  # content parts
        content = "".join(str(p.get("text") or "") for p in content if isinstance(p, Mapping))
    return {"input": str(content or "")}


def chat_body(spec: Mapping[str, Any], item: DatasetItem) -> dict[str, Any]:
    """The OpenAI chat body (with ``llmops_prompt`` for prompt targets) for one item."""
    body: dict[str, Any] = dict(spec.get("params") or {})
    if "prompt" in spec:
        body["model"] = spec.get("model") or "prompt"
        body["llmops_prompt"] = {**spec["prompt"], "variables": variables_of(item.input)}
    else:
        body["model"] = spec["model"]
        body["messages"] = messages_of(item.input)
    return body


def reply_output(body: Mapping[str, Any]) -> tuple[str, int]:
    """(text of the first choice, total tokens)."""
    choices = body.get("choices") or []
    msg = (choices[0].get("message") or {}) if choices else {}
    usage = body.get("usage") or {}
    return str(msg.get("content") or ""), int(usage.get("total_tokens") or 0)


def json_path(value: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            raise InvalidInputError(f"output_path {path!r}: no {part!r} in the response", param="output_path")
    return value


class ChatCaller(Protocol):
    async def __call__(self, body: dict[str, Any]) -> TargetOutput: ...


@dataclass
class GatewayTargets:
    """In-process gateway calls as ``principal`` (a traced, costed call per item, tagged ``experiment``)."""

    gateway: GatewayService
    principal: Any
    run_id: str = ""

    async def __call__(self, body: dict[str, Any]) -> TargetOutput:
        ctx = CallContext.internal(
            self.principal,
            attributes={"llmops.experiment.run_id": self.run_id} if self.run_id else {},
            tags=["experiment"],
        )
        reply = await self.gateway.chat(ctx, body)
        text, tokens = reply_output(getattr(reply, "body", {}))
        return TargetOutput(text, tokens, float(getattr(reply, "cost_usd", None) or 0.0), ctx.trace_id)


@dataclass
class RemoteTargets:
    """Calls to a running llmops server (or any OpenAI-compatible one) with the official openai client."""

    base_url: str
    api_key: str
    timeout_s: float = 60.0

    async def __call__(self, body: dict[str, Any]) -> TargetOutput:
        import openai

        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0, timeout=self.timeout_s)
        try:
            extra = {"llmops_prompt": body.pop("llmops_prompt")} if "llmops_prompt" in body else None
            messages = body.pop("messages", [])
            raw = await client.chat.completions.with_raw_response.create(messages=messages, extra_body=extra, **body)
        except openai.APIError as e:
            raise UpstreamError(f"{self.base_url}: {e}", provider="llmops") from None
        finally:
            await client.close()
        data = orjson.loads(raw.http_response.content)
        text, tokens = reply_output(data)
        return TargetOutput(text, tokens, 0.0, raw.headers.get("x-llmops-trace-id"))


def build_target(spec: Mapping[str, Any], *, chat: ChatCaller | None, http: HttpClient | None = None) -> Target:
    """A runner :data:`Target` for a validated spec; ``chat`` serves prompt and model targets."""
    kind = kind_of(spec)
    if kind == "python":
        return python_target(spec["python"])
    if kind == "http":
        return _http_target(spec["http"], http)
    if chat is None:
        raise InvalidInputError(
            f"a {kind} target needs the gateway: run it on a server (API) or give --base-url", param="target"
        )
    caller = chat

    async def call(item: DatasetItem) -> TargetOutput:
        return await caller(chat_body(spec, item))

    return call


def _http_target(h: Mapping[str, Any], http: HttpClient | None) -> Target:
    client = http or HttpClient(max_connections=64)
    headers = {"content-type": "application/json", **h["headers"]}

    async def call(item: DatasetItem) -> TargetOutput:
        body = orjson.dumps({"id": item.id, "input": item.input, "metadata": dict(item.metadata)})
        resp = await client.post(h["url"], body, headers, timeout_s=h["timeout_s"], provider="http target")
        if resp.status >= 400:
            raise UpstreamError(f"http target answered {resp.status}: {resp.body[:200]!r}", provider="http target")
        try:
            data = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            if h["output_path"]:
                raise InvalidInputError("http target did not answer JSON", param="output_path") from None
            return TargetOutput(resp.body.decode(errors="replace"))
        value = json_path(data, h["output_path"])
        return TargetOutput(value if isinstance(value, str) else orjson.dumps(value).decode())

    return call
