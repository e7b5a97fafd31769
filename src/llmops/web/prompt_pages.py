"""Pages for the prompt registry: the list, one prompt (versions, diffs, labels and their history, moving a
label), and a playground that runs one or two versions on any model the gateway serves, side by side.

Same rules as ``pages.py``: handlers parse, call services and render; another project's prompt renders the 404
page. Forms post with the session cookie (SameSite=Strict) and are refused cross-origin. Playground runs go
through :meth:`GatewayService.chat` in process with the signed-in key, so each run is traced like any call
(session ``playground``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from llmops.core.errors import InvalidInputError, LlmopsError, NotFoundError
from llmops.gateway.http import call_context
from llmops.gateway.service import Reply
from llmops.projects import Principal
from llmops.prompts import PromptVersion, dump_file
from llmops.web.pages import WebUI  # pages.py mounts these routes lazily, so no import cycle

PLAYGROUND_SESSION = "playground"


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, line) of a unified diff."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            cls = "meta"
        elif line.startswith("@@"):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        else:
            cls = "ctx"
        out.append((cls, line))
    return out


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def prompt_routes(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    _list_and_detail(router, ui)
    _label_form(router, ui, same_origin)
    _playground(router, ui, same_origin)


async def _detail_context(ui: WebUI, who: Principal, name: str, request: Request) -> dict[str, Any]:
    svc = ui.services.prompts
    prompt = await svc.get_prompt(who.project_id, name)
    versions = await svc.list_versions(who.project_id, name)
    labels = await svc.list_labels(who.project_id, name)
    by_version: dict[int, list[str]] = {}
    for lb in labels:
        by_version.setdefault(lb.state.version, []).append(lb.label)
        if lb.state.canary_version is not None:
            by_version.setdefault(lb.state.canary_version, []).append(f"{lb.label} (canary)")
    q = request.query_params
    shown = next((v for v in versions if v.version == _int(q.get("v"))), versions[0])
    a, b = _int(q.get("a")), _int(q.get("b"))
    diff = None
    if a is not None and b is not None:
        diff = diff_lines(await svc.diff(who.project_id, name, a, b)) or [("ctx", "(no differences)")]
    return {
        "prompt": prompt,
        "versions": versions,
        "labels": labels,
        "by_version": by_version,
        "shown": shown,
        "shown_file": dump_file(name, shown.content),
        "diff": diff,
        "diff_ab": (a, b),
        "history": await svc.label_history(who.project_id, name),
    }


def _list_and_detail(router: APIRouter, ui: WebUI) -> None:
    @router.get("/prompts")
    async def prompts(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        items = await ui.services.prompts.list_prompts(who.project_id)
        return await ui.page(request, who, "prompts.html", nav="prompts", prompts=items)

    @router.get("/prompts/{name}")
    async def prompt(name: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        try:
            context = await _detail_context(ui, who, name, request)
        except (NotFoundError, InvalidInputError):
            return await ui.page(request, who, "not_found.html", status_code=404)
        return await ui.page(request, who, "prompt.html", nav="prompts", **context)


def _label_form(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    @router.post("/prompts/{name}/labels")
    async def move_label(name: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        form = await request.form()
        label, action = str(form.get("label") or "").strip(), str(form.get("action") or "move")
        message, error = None, None
        try:
            if not same_origin(request):
                raise InvalidInputError("cross-site form refused")
            if action == "rollback":
                moved = await ui.services.prompts.rollback(who, name, label)
            else:
                version = _int(str(form.get("version") or ""))
                if version is None:
                    raise InvalidInputError("choose a version", param="version")
                moved = await ui.services.prompts.move_label(who, name, label, version)
            message = f"{label} → {moved.state.describe()}"
        except NotFoundError as exc:
            error = exc.message
        except LlmopsError as exc:  # refused (protected label, bad input): say why on the page
            error = exc.message[:1].upper() + exc.message[1:]
        try:
            context = await _detail_context(ui, who, name, request)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        context.update(label_message=message, label_error=error)
        status = 200 if error is None else 400
        if request.headers.get("hx-request"):
            return ui.render(request, "_prompt_labels.html", status_code=200, principal=who, **context)
        return await ui.page(request, who, "prompt.html", nav="prompts", status_code=status, **context)


@dataclass
class Side:
    """One column of the playground: a version on a model (None: the prompt's own model)."""

    version: int
    model: str | None


async def _run(ui: WebUI, who: Principal, name: str, side: Side, texts: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {"side": side, "messages": None, "error": None}
    try:
        compiled = await ui.services.prompts.compiled(who.project_id, name, side.version)
        declared = {v.name: v.required for v in compiled.variables}  # the two sides may declare different ones
        variables = compiled.coerce({k: v for k, v in texts.items() if k in declared and (v != "" or declared[k])})
        result["messages"] = compiled.messages(**variables)
        spec: dict[str, Any] = {"variables": variables}
        if side.model:
            spec.update(name=name, version=side.version)
        body = {"model": side.model or f"prompt:{name}@{side.version}", "llmops_prompt": spec, "stream": False}
        ctx = call_context({"x-llmops-session": PLAYGROUND_SESSION}, who, body)
        started = time.perf_counter()
        reply = await ui.services.gateway.chat(ctx, body)
        assert isinstance(reply, Reply)
        result["latency_ms"] = (time.perf_counter() - started) * 1000
    except LlmopsError as exc:
        result["error"] = exc.message
        return result
    usage = reply.body.get("usage") or {}
    choice = (reply.body.get("choices") or [{}])[0]
    result.update(
        output=(choice.get("message") or {}).get("content") or "",
        model=reply.body.get("model") or side.model,
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        cost_usd=reply.cost_usd,
        trace_id=reply.headers.get("x-llmops-trace-id"),
    )
    return result


def _sides(form: Any, latest: int) -> list[Side]:
    sides = [Side(_int(str(form.get("version_a") or "")) or latest, str(form.get("model_a") or "") or None)]
    b = _int(str(form.get("version_b") or ""))
    if b is not None:
        sides.append(Side(b, str(form.get("model_b") or "") or None))
    return sides


async def _playground_context(ui: WebUI, who: Principal, name: str, a: int | None) -> dict[str, Any]:
    versions: list[PromptVersion] = await ui.services.prompts.list_versions(who.project_id, name)
    first = next((v for v in versions if v.version == a), versions[0])
    models = [m["id"] for m in ui.services.gateway.list_models()]
    return {"name": name, "versions": versions, "first": first, "models": models}


def _playground(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    @router.get("/prompts/{name}/playground")
    async def playground(name: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        try:
            context = await _playground_context(ui, who, name, _int(request.query_params.get("a")))
        except (NotFoundError, InvalidInputError):
            return await ui.page(request, who, "not_found.html", status_code=404)
        b = _int(request.query_params.get("b"))
        return await ui.page(
            request, who, "prompt_playground.html", nav="prompts", results=None, form={"version_b": b}, **context
        )

    @router.post("/prompts/{name}/playground")
    async def run(name: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        form = await request.form()
        try:
            context = await _playground_context(ui, who, name, _int(str(form.get("version_a") or "")))
        except (NotFoundError, InvalidInputError):
            return await ui.page(request, who, "not_found.html", status_code=404)
        if not same_origin(request):
            results: list[dict[str, Any]] = [{"side": None, "error": "cross-site form refused", "messages": None}]
        else:
            texts = {k[4:]: str(v) for k, v in form.items() if k.startswith("var_")}
            sides = _sides(form, context["versions"][0].version)
            results = list(await asyncio.gather(*(_run(ui, who, name, s, texts) for s in sides)))
        if request.headers.get("hx-request"):
            return ui.render(request, "_playground_results.html", results=results, name=name)
        return await ui.page(
            request, who, "prompt_playground.html", nav="prompts", results=results, form=dict(form), **context
        )
