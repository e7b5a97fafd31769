"""An LLM adjudicator for uncertain pairs, through the gateway (a traced call in the checked project).

Off by default (``LLMOPS_RAG_HEALTH_ADJUDICATOR_MODEL`` unset). The model is asked for a JSON verdict; an
answer that is not one counts as "no contradiction" (the pair stays unreported) and is noted in evidence.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import orjson

from llmops.gateway import CallContext
from llmops.projects import Principal

_PROMPT = (
    "Two passages come from different documents of one knowledge base. Do they make statements that cannot "
    'both be true? Answer with JSON only: {"contradiction": true|false, "confidence": 0..1, "reason": "..."}.'
)
_JSON = re.compile(r"\{.*\}", re.DOTALL)


class ChatGateway(Protocol):
    async def chat(self, ctx: CallContext, raw: dict[str, Any]) -> Any: ...


class GatewayAdjudicator:
    def __init__(self, gateway: ChatGateway, model: str, *, project_id: str = "") -> None:
        self._gateway = gateway
        self._model = model
        self.project_id = project_id

    def for_project(self, project_id: str) -> GatewayAdjudicator:
        return GatewayAdjudicator(self._gateway, self._model, project_id=project_id)

    async def adjudicate(self, first: str, second: str) -> tuple[bool, float, str]:
        principal = Principal(self.project_id, "rag-health", "rag-health", is_admin=False)
        ctx = CallContext.internal(principal)
        raw = {
            "model": self._model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": _PROMPT},
                {"role": "user", "content": f"Passage A: {first}\nPassage B: {second}"},
            ],
        }
        reply = await self._gateway.chat(ctx, raw)
        text = str(((reply.body.get("choices") or [{}])[0].get("message") or {}).get("content") or "")
        match = _JSON.search(text)
        try:
            verdict = orjson.loads(match.group(0)) if match else {}
        except orjson.JSONDecodeError:
            verdict = {}
        if not isinstance(verdict, dict):
            verdict = {}
        confidence = verdict.get("confidence", 0.0)
        return (
            bool(verdict.get("contradiction", False)),
            float(confidence) if isinstance(confidence, int | float) else 0.0,
            str(verdict.get("reason", "unparseable answer" if not verdict else ""))[:500],
        )
