"""Chat completions from registered prompts: ``model: "prompt:NAME@LABEL"`` or an ``llmops_prompt`` object.

Forms a request may take (the openai SDK sends ``llmops_prompt`` through ``extra_body``)::

    {"model": "prompt:support-reply@production", "llmops_prompt": {"variables": {...}}, ...}
    {"model": "prompt:support-reply@3", ...}                # a version number
    {"model": "prompt:support-reply", ...}                  # label `production`
    {"model": "local", "llmops_prompt": {"name": "support-reply", "label": "staging", "variables": {...}}}

The prompt is rendered on the server. Its messages come first, the request's ``messages`` (optional) after
them. The prompt's model and parameters apply unless the request sets them: a ``model`` other than
``prompt:...`` (or ``prompt``) overrides the prompt's model. The call's span names the prompt, version,
label and canary side (``llmops.prompt.*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops.core.errors import InvalidInputError
from llmops.gateway.recording import CallContext
from llmops.prompts import PromptService, parse_ref

PREFIX = "prompt:"
DEFAULT_LABEL = "production"
BODY_KEY = "llmops_prompt"


def wants_prompt(raw: Any) -> bool:
    if not isinstance(raw, dict):
        return False
    model = raw.get("model")
    return BODY_KEY in raw or (isinstance(model, str) and (model.startswith(PREFIX) or model == "prompt"))


@dataclass(frozen=True)
class PromptCall:
    name: str
    ref: str | int
    variables: dict[str, Any]
    model: str | None  # the request's own model (overrides the prompt's), or None
    param: str  # the request field that named the prompt, for errors


def _from_model(model: str) -> tuple[str, str | int]:
    name, _, ref = model[len(PREFIX) :].partition("@")
    if not name:
        raise InvalidInputError("model 'prompt:NAME@LABEL' needs a prompt name", param="model")
    return name, parse_ref(ref or DEFAULT_LABEL, param="model")


def _from_body(spec: dict[str, Any]) -> tuple[str, str | int]:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError("llmops_prompt.name is required", param=f"{BODY_KEY}.name")
    label, version = spec.get("label"), spec.get("version")
    if label is not None and version is not None:
        raise InvalidInputError("give llmops_prompt.label or .version, not both", param=f"{BODY_KEY}.version")
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInputError("llmops_prompt.version must be a positive integer", param=f"{BODY_KEY}.version")
        return name, version
    return name, parse_ref(label if isinstance(label, str) else DEFAULT_LABEL, param=f"{BODY_KEY}.label")


def parse_call(raw: dict[str, Any]) -> PromptCall:
    spec = raw.get(BODY_KEY) or {}
    if not isinstance(spec, dict) or set(spec) - {"name", "label", "version", "variables"}:
        raise InvalidInputError(
            "llmops_prompt is an object {name, label | version, variables}", param=BODY_KEY, code="invalid_value"
        )
    variables = spec.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidInputError("llmops_prompt.variables must be an object", param=f"{BODY_KEY}.variables")
    model = raw.get("model")
    if isinstance(model, str) and model.startswith(PREFIX):
        if "name" in spec:
            raise InvalidInputError("name the prompt in `model` or in llmops_prompt, not both", param=BODY_KEY)
        name, ref = _from_model(model)
        return PromptCall(name, ref, variables, None, "model")
    name, ref = _from_body(spec)
    own = model if isinstance(model, str) and model and model != "prompt" else None
    return PromptCall(name, ref, variables, own, f"{BODY_KEY}.name")


async def apply_prompt(prompts: PromptService, ctx: CallContext, raw: dict[str, Any]) -> dict[str, Any]:
    """The upstream request body for a prompt call; records the prompt on ``ctx`` for the span."""
    call = parse_call(raw)
    sticky = ctx.user_id or ctx.session_id
    res = await prompts.resolve(ctx.principal.project_id, call.name, call.ref, sticky_key=sticky, param=call.param)
    ctx.attributes.update(res.attributes())
    try:
        rendered = res.prompt.messages(**call.variables)
    except InvalidInputError as exc:
        param = f"{BODY_KEY}.{exc.param}" if exc.param and exc.param.startswith("variables") else exc.param
        raise type(exc)(exc.message, param=param, code=exc.code) from exc
    extra = raw.get("messages")
    if extra is not None and not isinstance(extra, list):
        raise InvalidInputError("messages must be a list", param="messages")
    model = call.model or res.prompt.model
    if not model:
        raise InvalidInputError(f"prompt {call.name!r} sets no model: send `model`", param="model")
    body = {**res.prompt.content.params, **{k: v for k, v in raw.items() if k != BODY_KEY}}
    body["model"], body["messages"] = model, rendered + (extra or [])
    return body
