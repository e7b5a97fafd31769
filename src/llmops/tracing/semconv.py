"""The one mapping from what senders emit to our canonical span: OTel GenAI (``gen_ai.*``) columns and attributes.

Every rename lives here, so when a convention changes one module changes. Precedence per field follows
Langfuse's documented mapping: our own namespace, then current ``gen_ai.*``, then older ``gen_ai.*`` names,
then OpenInference (``llm.*``, ``input.value``, ...) and OpenLLMetry (``gen_ai.prompt.N.*``, ``llm.usage.*``).

- **Nothing is lost.** Every attribute a sender set is kept under its own name; canonical ``gen_ai.*`` names
  are *added* when missing (``llm.model_name`` also yields ``gen_ai.request.model``). The one exception is
  message content: attributes that became the span's ``input``/``output`` (``gen_ai.input.messages``,
  ``llm.input_messages.N.*``, ``input.value``, ...) move there instead of being stored twice.
- **Content** is normalised to the conventions' "parts" format
  (``[{"role": "user", "parts": [{"type": "text", "content": "..."}]}]``) when it is chat messages;
  retrieval documents become ``[{"id", "score", "content", "metadata"}]``; anything else (a tool's
  ``input.value``) is kept as sent, parsed when its mime type says JSON.
- **The ``operation`` column** is set only for model calls (kinds ``llm`` and ``embedding``): metrics count
  rows with an operation as LLM requests, so a tool or agent span must not inflate them. Their
  ``gen_ai.operation.name`` still goes into the attributes.
- **Cost** is what the sender says (``llmops.cost_usd``, ``gen_ai.usage.cost``, ``llm.cost.total``), else
  null: tracing does not price calls (prices belong to the gateway, which tracing must not import).

Pure functions, no I/O: the OTLP decoder (``_otlp.py``) calls :func:`build_span` once per span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from llmops.tracing.models import Span

# --- canonical names (OTel GenAI) ----------------------------------------------------------------------
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CONVERSATION = "gen_ai.conversation.id"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TTFC = "gen_ai.response.time_to_first_chunk"

# field -> attribute names, first present wins
PROVIDER_KEYS = (PROVIDER, "gen_ai.system", "llm.provider", "llm.system")
REQUEST_MODEL_KEYS = (REQUEST_MODEL, "llm.request.model_name", "llm.model_name", "embedding.model_name")
RESPONSE_MODEL_KEYS = (RESPONSE_MODEL, "llm.response.model_name", "llm.model_name")  # OI: the model that answered
INPUT_TOKEN_KEYS = (INPUT_TOKENS, "gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens")
OUTPUT_TOKEN_KEYS = (
    OUTPUT_TOKENS,
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
COST_KEYS = ("llmops.cost_usd", "gen_ai.usage.cost", "llm.cost.total")
USER_KEYS = ("user.id", "enduser.id")
SESSION_KEYS = ("session.id", CONVERSATION)
# OpenInference attribute -> canonical attribute, added when the canonical one is missing
ALIASES = {
    "llm.token_count.prompt_details.cache_read": "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_write": "gen_ai.usage.cache_creation.input_tokens",
    "llm.token_count.completion_details.reasoning": "gen_ai.usage.reasoning.output_tokens",
    "tool.name": "gen_ai.tool.name",
    "tool.description": "gen_ai.tool.description",
}
INVOCATION_PARAMS = {
    "model": REQUEST_MODEL,  # OpenInference: the requested model (llm.model_name is the one that answered)
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
}

# span kinds
OPENINFERENCE_KINDS = {
    "LLM": "llm",
    "CHAIN": "chain",
    "TOOL": "tool",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
    "EMBEDDING": "embedding",
    "AGENT": "agent",
    "EVALUATOR": "evaluator",
    "GUARDRAIL": "chain",
    "PROMPT": "chain",
    "UNKNOWN": "internal",
}
OPERATION_KINDS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "retrieval": "retrieval",
    "invoke_workflow": "chain",
    "evaluation": "evaluator",
}
KIND_OPERATIONS = {
    "llm": "chat",
    "embedding": "embeddings",
    "tool": "execute_tool",
    "agent": "invoke_agent",
    "retrieval": "retrieval",
    "chain": "invoke_workflow",
}
MODEL_CALL_KINDS = frozenset({"llm", "embedding"})
OTLP_SPAN_KINDS = {2: "server", 3: "client", 4: "producer", 5: "consumer"}  # internal/unspecified: not stored
# legacy (<= v1.36) content events, still sent by OpenLLMetry / OpenLIT
LEGACY_INPUT_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}

# column widths of the spans table (PostgreSQL enforces them)
MAX_NAME = 300
MAX_SHORT = 64
MAX_ID = 200
MAX_JSON_DEPTH = 64  # parsed content deeper than this stays a string (the JSON encoder stops at 255)


def clip(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = (value if isinstance(value, str) else str(value))[:limit]
    return text.replace("\x00", "") if "\x00" in text else text  # PostgreSQL text cannot hold NUL


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def span_kind(attrs: dict[str, Any], best: dict[str, tuple[int, Any]] | None = None) -> str:
    """The span's kind. ``best`` is :func:`_scan`'s pick per field (computed here when not given)."""
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str):
        found = OPENINFERENCE_KINDS.get(oi.upper())
        if found is not None:
            return found
    op = attrs.get(OPERATION)
    if isinstance(op, str) and op in OPERATION_KINDS:
        return OPERATION_KINDS[op]
    if best is None:
        best = _scan(attrs)[0]
    model = best.get("request_model")
    if (model is not None and model[0] < 3) or "provider" in best:  # REQUEST_MODEL_KEYS[:3], any provider key
        return "llm"
    return "internal"


# --- content -------------------------------------------------------------------------------------------
_INDEXED = (
    "llm.input_messages.",
    "llm.output_messages.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "retrieval.documents.",
)
_PLAIN_MESSAGE_KEYS = frozenset({"message.role", "message.content", "role", "content"})


def unflatten(flat: dict[str, Any]) -> Any:
    """Dotted keys to nested values; numeric segments become list indices (``0.message.role`` ->
    ``[{"message": {"role": ...}}]``). A key that clashes with a shorter one (``a`` and ``a.b``) is dropped."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node: Any = root
        *path, leaf = key.split(".")
        for part in path:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[leaf] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and next(iter(node)).isdigit() and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _take_indexed(attrs: dict[str, Any], indexed: Sequence[tuple[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Move the ``prefix.N.rest`` attributes :func:`_scan` found out of ``attrs``: {prefix: {N: {rest: value}}}."""
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for key, (prefix, index, rest) in indexed:
        group = groups.get(prefix)
        if group is None:
            group = groups[prefix] = {}
        fields = group.get(index)
        if fields is None:
            fields = group[index] = {}
        fields[rest] = attrs.pop(key)
    return groups


def _shallow(value: Any, depth: int = 0) -> bool:
    if depth > MAX_JSON_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_shallow(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_shallow(v, depth + 1) for v in value)
    return True


def _parse_json(value: Any) -> Any:
    """A JSON-looking string attribute parsed (kept as the string when invalid or nested too deep to store)."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if value.count("[") + value.count("{") <= MAX_JSON_DEPTH:  # cannot nest deeper: skip the walk
            return parsed
        return parsed if _shallow(parsed) else value
    if isinstance(value, list):
        return [_parse_json(v) for v in value]
    return value


def _message(item: Any, finish_reason: Any = None) -> dict[str, Any]:
    """An OpenInference (``{"message": {...}}``) or OpenLLMetry (``{"role", "content"}``) message as parts."""
    m = item.get("message", item) if isinstance(item, dict) else {"content": item}
    if not isinstance(m, dict):
        m = {"content": m}
    role, content, parts = m.get("role"), m.get("content"), []
    if content is not None and content != "":
        if role == "tool":
            parts.append({"type": "tool_call_response", "id": m.get("tool_call_id"), "response": content})
        else:
            parts.append({"type": "text", "content": content})
    for c in m.get("contents") or []:
        mc = c.get("message_content", c) if isinstance(c, dict) else {"text": c}
        if isinstance(mc, dict) and mc.get("type", "text") == "text":
            parts.append({"type": "text", "content": mc.get("text", "")})
        elif isinstance(mc, dict):
            parts.append({"type": str(mc.get("type")), "content": mc.get("image") or mc.get("text")})
    for tc in m.get("tool_calls") or []:
        t = tc.get("tool_call", tc) if isinstance(tc, dict) else {}
        fn = t.get("function") or {}
        name, args = fn.get("name", t.get("name")), fn.get("arguments", t.get("arguments"))
        parts.append({"type": "tool_call", "id": t.get("id"), "name": name, "arguments": args})
    out: dict[str, Any] = {"role": role or "user", "parts": parts}
    if m.get("name"):
        out["name"] = m["name"]
    reason = m.get("finish_reason", finish_reason)
    if reason is not None:
        out["finish_reason"] = reason
    return out


def _flat_message(fields: dict[str, Any], finish_reason: Any) -> dict[str, Any]:
    """One message from its flattened fields (``message.role``, ``message.content``, ``message.tool_calls.0…``)."""
    if fields.keys() <= _PLAIN_MESSAGE_KEYS:  # the common case: role and text only
        role = fields.get("message.role", fields.get("role"))
        content = fields.get("message.content", fields.get("content"))
        out: dict[str, Any] = {"role": role or "user", "parts": []}
        if content is not None and content != "":
            kind = "tool_call_response" if role == "tool" else "text"
            out["parts"].append({"type": kind, "response" if role == "tool" else "content": content})
        if finish_reason is not None:
            out["finish_reason"] = finish_reason
        return out
    return _message(unflatten(fields), finish_reason)


def _messages(items: dict[int, dict[str, Any]] | None, finish_reason: Any = None) -> list[dict[str, Any]] | None:
    if not items:
        return None
    return [_flat_message(items[i], finish_reason) for i in sorted(items)]


def _documents(items: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    docs = []
    for i in sorted(items):
        d = items[i]
        doc = {k[9:]: v for k, v in d.items() if k.startswith("document.")} or d
        if "metadata" in doc:
            doc["metadata"] = _parse_json(doc["metadata"])
        docs.append(doc)
    return docs


def _value(attrs: dict[str, Any], key: str) -> Any:
    value = attrs.pop(key)
    mime = attrs.pop(key.replace(".value", ".mime_type"), None)
    if isinstance(value, str) and isinstance(mime, str) and "json" in mime:
        return _parse_json(value.strip())
    return value


def _event_messages(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """Messages from the legacy content events (``gen_ai.user.message``, ``gen_ai.choice``, ...)."""
    inp: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for e in events:
        role = LEGACY_INPUT_EVENTS.get(e["name"])
        attrs = e.get("attributes") or {}
        if role is not None:
            inp.append(_message({"role": attrs.get("role", role), **attrs}))
        elif e["name"] == "gen_ai.choice":
            msg = attrs.get("message")
            body = msg if isinstance(msg, dict) else {"content": msg}
            out.append(_message({"role": "assistant", **body}, attrs.get("finish_reason")))
    return inp or None, out or None


def extract_content(
    attrs: dict[str, Any], events: list[dict[str, Any]] | None, indexed: Sequence[tuple[str, Any]] | None = None
) -> tuple[Any, Any]:
    """(input, output) of a span, taking the attributes they came from out of ``attrs``. ``indexed`` is
    :func:`_scan`'s list of ``prefix.N.rest`` attributes (computed here when not given)."""
    inp = _parse_json(attrs.pop(INPUT_MESSAGES)) if INPUT_MESSAGES in attrs else None
    out = _parse_json(attrs.pop(OUTPUT_MESSAGES)) if OUTPUT_MESSAGES in attrs else None
    if indexed is None:
        indexed = _scan(attrs)[1]
    if indexed:
        groups = _take_indexed(attrs, indexed)
        finish = attrs.get("llm.finish_reason")
        inp = inp or _messages(groups.get("llm.input_messages.")) or _messages(groups.get("gen_ai.prompt."))
        out = (
            out or _messages(groups.get("llm.output_messages."), finish) or _messages(groups.get("gen_ai.completion."))
        )
        if "retrieval.documents." in groups:
            docs = _documents(groups["retrieval.documents."])
            if out is None:
                out = docs
            else:
                attrs["retrieval.documents"] = docs
    if events and (inp is None or out is None):
        ev_in, ev_out = _event_messages(events)
        inp, out = inp or ev_in, out or ev_out
    if inp is None and "input.value" in attrs:
        inp = _value(attrs, "input.value")
    if out is None and "output.value" in attrs:
        out = _value(attrs, "output.value")
    return inp, out


# --- canonical attributes and columns ------------------------------------------------------------------


def _invocation_params(attrs: dict[str, Any]) -> Any:
    """Add the ``gen_ai.request.*`` names of ``llm.invocation_parameters``; returns the request model it added
    (None if it added none)."""
    params = _parse_json(attrs.get("llm.invocation_parameters"))
    if not isinstance(params, dict):
        return None
    added = None
    for src, dst in INVOCATION_PARAMS.items():
        value = params.get(src)
        if value is not None and dst not in attrs:
            attrs[dst] = [value] if dst.endswith("stop_sequences") and isinstance(value, str) else value
            if dst == REQUEST_MODEL:
                added = value
    return added


_FIELD_SOURCES = {
    "provider": PROVIDER_KEYS,
    "request_model": REQUEST_MODEL_KEYS,
    "response_model": RESPONSE_MODEL_KEYS,
    "input_tokens": INPUT_TOKEN_KEYS,
    "output_tokens": OUTPUT_TOKEN_KEYS,
    "cost_usd": COST_KEYS,
    "user_id": USER_KEYS,
    "session_id": SESSION_KEYS,
}
_SOURCE_OF: dict[str, list[tuple[str, int]]] = {}  # attribute -> [(field, rank)], built from the tables above
for _field, _keys in _FIELD_SOURCES.items():
    for _rank, _key in enumerate(_keys):
        _SOURCE_OF.setdefault(_key, []).append((_field, _rank))

# What build_span reads of a span's attributes depends only on their keys, and senders emit the same key set
# span after span (one per instrumentation and span type). So the work per key is done once per key set (a
# "plan"): the candidates of each column field in rank order, and the indexed content attributes. Per span
# that leaves tuple(attrs) and a dict lookup (C code) plus a few value checks. Memo sizes are capped.
_MAX_PLANS = 4_096


# add_canonical's column values, in Span field order: operation .. session_id (see _SPAN_FIELDS)
_Columns = tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]
# The order in which build_span passes Span's fields positionally; import fails if Span's order ever changes.
_SPAN_FIELDS = (
    *("trace_id", "span_id", "project_id", "name", "kind", "start_ns", "end_ns", "status", "parent_span_id", "error"),
    *("operation", "provider", "request_model", "response_model", "input_tokens", "output_tokens", "cost_usd"),
    *("ttft_ms", "user_id", "session_id", "key_id", "attributes", "input", "output"),
)
assert tuple(Span.__dataclass_fields__) == _SPAN_FIELDS  # noqa: S101


@dataclass(frozen=True, slots=True)
class _Plan:
    fields: tuple[tuple[str, tuple[tuple[int, str], ...]], ...]  # (field, ((rank, attribute), ...) by rank)
    indexed: tuple[tuple[str, tuple[str, int, str]], ...] | None  # (attribute, (prefix, N, rest)) in key order


_PLANS: dict[tuple[str, ...], _Plan] = {}


def _indexed_role(key: str) -> tuple[str, int, str] | None:
    if not key.startswith(_INDEXED):
        return None
    cut = key.index(".", key.index(".") + 1) + 1  # every indexed prefix has two dotted segments
    index, _, rest = key[cut:].partition(".")
    return (key[:cut], int(index), rest) if index.isdigit() else None


def _plan(shape: tuple[str, ...]) -> _Plan:
    candidates: dict[str, list[tuple[int, str]]] = {}
    indexed = []
    for key in shape:
        sources = _SOURCE_OF.get(key)
        if sources is not None:
            for name, rank in sources:
                candidates.setdefault(name, []).append((rank, key))
            continue
        role = _indexed_role(key)
        if role is not None:
            indexed.append((key, role))
    plan = _Plan(tuple((name, tuple(sorted(c))) for name, c in candidates.items()), tuple(indexed) or None)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[shape] = plan
    return plan


def _scan(attrs: dict[str, Any]) -> tuple[dict[str, tuple[int, Any]], Sequence[tuple[str, Any]] | None]:
    """For each column field of ``_FIELD_SOURCES`` its best-ranked attribute present (not None or ""), as
    {field: (rank, value)}, and the indexed content attributes (``llm.input_messages.0.…``) as
    [(key, (prefix, N, rest))] (None when there is none)."""
    shape = tuple(attrs)
    plan = _PLANS.get(shape)
    if plan is None:
        plan = _plan(shape)
    best: dict[str, tuple[int, Any]] = {}
    for name, candidates in plan.fields:
        for rank, key in candidates:
            value = attrs[key]
            if value is not None and value != "":
                best[name] = (rank, value)
                break
    return best, plan.indexed


def pick_fields(attrs: dict[str, Any]) -> dict[str, Any]:
    """For each field of ``_FIELD_SOURCES`` the value of its best-ranked attribute present."""
    return {name: value for name, (_, value) in _scan(attrs)[0].items()}


def _clip_short(value: Any) -> str | None:
    return None if value is None else clip(value, MAX_SHORT)


def add_canonical(kind: str, attrs: dict[str, Any], best: dict[str, tuple[int, Any]] | None = None) -> _Columns:
    """Add the ``gen_ai.*`` names a sender left out; return the values the span columns need, in ``Span`` field
    order (``operation`` .. ``session_id``). ``best`` is :func:`_scan`'s pick (of the attributes before
    ``llm.invocation_parameters`` was expanded)."""
    if best is None:
        best = _scan(attrs)[0]
    if "llm.invocation_parameters" in attrs:
        model = _invocation_params(attrs)
        if model is not None and model != "":  # it became gen_ai.request.model: the best-ranked source
            best["request_model"] = (0, model)
    op = attrs.get(OPERATION) or KIND_OPERATIONS.get(kind)
    no = (0, None)
    provider = best.get("provider", no)[1]
    if isinstance(provider, str):
        provider = provider.lower()
    request_model = best.get("request_model", no)[1]
    response_model = best.get("response_model", no)[1]
    input_tokens, output_tokens = as_int(best.get("input_tokens", no)[1]), as_int(best.get("output_tokens", no)[1])
    session_id = best.get("session_id", no)[1]
    user_id = best.get("user_id", no)[1]
    canonical = (
        (OPERATION, op),
        (PROVIDER, provider),
        (REQUEST_MODEL, request_model),
        (RESPONSE_MODEL, response_model),
        (INPUT_TOKENS, input_tokens),
        (OUTPUT_TOKENS, output_tokens),
        (CONVERSATION, session_id),
    )
    for key, value in canonical:  # the gen_ai.* names a sender left out
        if value is not None and key not in attrs:
            attrs[key] = value
    for src, dst in ALIASES.items():
        if src in attrs and dst not in attrs:
            attrs[dst] = attrs[src]
    if "llm.finish_reason" in attrs and FINISH_REASONS not in attrs:
        attrs[FINISH_REASONS] = [attrs["llm.finish_reason"]]
    ttfc = as_float(attrs[TTFC]) if TTFC in attrs else None
    cost = best.get("cost_usd")
    return (
        _clip_short(op) if kind in MODEL_CALL_KINDS else None,
        _clip_short(provider),
        None if request_model is None else clip(request_model, MAX_ID),
        None if response_model is None else clip(response_model, MAX_ID),
        input_tokens,
        output_tokens,
        None if cost is None else as_float(cost[1]),
        ttfc * 1000 if ttfc is not None else None,
        None if user_id is None else clip(user_id, MAX_ID),
        None if session_id is None else clip(session_id, MAX_ID),
    )


def _error(status_message: str, attrs: dict[str, Any], events: list[dict[str, Any]] | None) -> str:
    if status_message:
        return status_message
    for e in events or ():
        if e["name"] == "exception":
            message = (e.get("attributes") or {}).get("exception.message")
            if message:
                return str(message)
    return str(attrs.get("error.type") or "error")


def _keep_events(
    attrs: dict[str, Any], events: list[dict[str, Any]] | None, links: list[dict[str, Any]] | None
) -> None:
    kept = [e for e in events or () if e["name"] not in LEGACY_INPUT_EVENTS and e["name"] != "gen_ai.choice"]
    if kept:
        attrs["otel.events"] = kept
    if links:
        attrs["otel.links"] = links


def build_span(
    *,
    project_id: str,
    key_id: str | None,
    ids: tuple[str, str, str | None],
    name: str,
    start_ns: int,
    end_ns: int,
    status: tuple[int, str],
    otel_kind: int,
    attrs: dict[str, Any],
    resource: dict[str, Any] | None = None,
    scope: tuple[str, str] | None = None,
    events: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None,
) -> Span:
    """One canonical span from one decoded OTLP span. ``attrs`` is the span's own (fresh) dict: it is
    completed in place and becomes ``Span.attributes``. ``ids`` = (trace_id, span_id, parent_span_id)."""
    best, indexed = _scan(attrs)
    kind = span_kind(attrs, best)
    inp, out = extract_content(attrs, events, indexed if indexed is not None else ())
    cols = add_canonical(kind, attrs, best)
    if events or links:
        _keep_events(attrs, events, links)
    if otel_kind in OTLP_SPAN_KINDS:
        attrs["otel.span_kind"] = OTLP_SPAN_KINDS[otel_kind]
    if scope is not None and scope[0]:
        attrs["otel.scope.name"] = scope[0]
        if scope[1]:
            attrs["otel.scope.version"] = scope[1]
    if resource:
        attrs["resource"] = resource
    failed = status[0] == 2
    return Span(  # positional, in field order: half the cost of keywords, once per ingested span
        ids[0],  # trace_id
        ids[1],  # span_id
        project_id,
        clip(name, MAX_NAME) or "",
        kind,
        start_ns,
        end_ns,
        "error" if failed else "ok",
        ids[2],  # parent_span_id
        _error(status[1], attrs, events) if failed else None,
        *cols,  # operation .. session_id
        key_id,
        attrs,
        inp,
        out,
    )
