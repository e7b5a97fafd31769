"""Cost in USD of a call, from the ``genai-prices`` package data (bundled; never fetched at run time),
overridable per model in llmops.yaml (``prices:``). Local models cost 0. Unknown models cost ``None``
(shown as unknown, never as a silent 0).

``calc_price`` takes ~2 ms, too slow for the hot path, so the per-model unit prices are looked up once
and cached; tiered prices fall back to the full calculation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from llmops.gateway.config import PriceConfig

log = logging.getLogger("llmops.gateway")
FREE_PROVIDERS = frozenset({"local", "local-embed"})
PRICE_SOURCE = "genai-prices"


@dataclass(frozen=True)
class UnitPrice:
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, input_tokens) if self.cached_input_per_mtok is not None else 0
        return (
            (input_tokens - cached) * self.input_per_mtok
            + cached * (self.cached_input_per_mtok or 0.0)
            + output_tokens * self.output_per_mtok
        ) / 1e6


def _as_float(value: object) -> float | None:
    if value is None:
        return 0.0
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None  # tiered price: not a plain number


class PriceTable:
    def __init__(self, overrides: dict[str, PriceConfig] | None = None) -> None:
        self._overrides = {
            name: UnitPrice(p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
            for name, p in (overrides or {}).items()
        }
        self._cache: dict[tuple[str, str], UnitPrice | None] = {}

    def cost(
        self, *, provider_kind: str, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0
    ) -> float | None:
        if provider_kind in FREE_PROVIDERS:
            return 0.0
        price = self._overrides.get(model) or self._lookup(provider_kind, model)
        if price is None:
            return None
        return round(price.cost(input_tokens, output_tokens, cached_tokens), 10)

    def _lookup(self, provider_kind: str, model: str) -> UnitPrice | None:
        key = (provider_kind, model)
        if key not in self._cache:
            self._cache[key] = _from_genai_prices(provider_kind, model)
        return self._cache[key]


def _from_genai_prices(provider_kind: str, model: str) -> UnitPrice | None:
    from genai_prices import Usage, calc_price

    provider_id = provider_kind if provider_kind in ("openai", "anthropic") else None
    try:
        mp = calc_price(Usage(input_tokens=1, output_tokens=1), model_ref=model, provider_id=provider_id).model_price
    except LookupError:
        log.info("no price known for model %r (provider %s): cost recorded as unknown", model, provider_kind)
        return None
    inp, out, cached = _as_float(mp.input_mtok), _as_float(mp.output_mtok), mp.cache_read_mtok
    if inp is None or out is None:
        return None
    return UnitPrice(inp, out, _as_float(cached) if cached is not None else None)
