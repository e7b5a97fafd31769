"""SDK client of the prompt registry: ``llmops.get_prompt(name, label="production")``.

No server imports (no FastAPI, no SQLAlchemy): it fetches a version over HTTP (``GET
/api/prompts/{name}/versions/{ref}``) and compiles it locally in the same sandbox the server uses.

Caching, per (name, label or version), in memory:

- within ``ttl_s`` of the last fetch, ``get_prompt`` answers from memory (a dict lookup, no I/O);
- past it, the cached prompt is returned at once flagged ``stale=True`` while one background thread
  re-fetches it (stale-while-revalidate); if the server is unreachable the last good version keeps being
  served, ``stale=True``;
- with nothing cached and the server unreachable (or the prompt missing), an explicit ``fallback=``
  (a template string, or a list of ``{role, content}`` messages) is compiled and returned flagged
  ``is_fallback=True``; without one the error is raised.

Server and key: arguments, else ``LLMOPS_BASE_URL`` / ``LLMOPS_API_KEY``, else ``OPENAI_BASE_URL`` (its ``/v1``
dropped) / ``OPENAI_API_KEY``, else ``http://127.0.0.1:4100``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from llmops.core.errors import (
    AuthenticationError,
    InvalidInputError,
    LlmopsError,
    NotFoundError,
    PermissionDeniedError,
    UpstreamError,
)
from llmops.prompts.rendering import CompiledPrompt, fallback_prompt
from llmops.prompts.spec import parse_content

log = logging.getLogger("llmops.prompts.client")
DEFAULT_TTL_S = 60.0
RETRY_AFTER_FAILURE_S = 1.0
Fallback = str | list[dict[str, str]]
_ERRORS: dict[int, type[LlmopsError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
}


def _base_url(value: str | None) -> str:
    url = value or os.environ.get("LLMOPS_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:4100"
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


@dataclass
class _Cached:
    prompt: CompiledPrompt
    stale: CompiledPrompt  # the same, flagged stale
    expires_at: float
    retry_at: float = 0.0


class PromptClient:
    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        key = api_key or os.environ.get("LLMOPS_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self._http = httpx.Client(
            base_url=_base_url(base_url),
            headers={"authorization": f"Bearer {key}"} if key else {},
            timeout=timeout_s,
            transport=transport,
        )
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str | int], _Cached] = {}
        self._lock = threading.Lock()
        self._refreshing: set[tuple[str, str | int]] = set()

    def close(self) -> None:
        self._http.close()

    def get_prompt(
        self,
        name: str,
        label: str = "production",
        *,
        version: int | None = None,
        fallback: Fallback | None = None,
        ttl_s: float | None = None,
    ) -> CompiledPrompt:
        """The prompt ``name`` at ``label`` (default ``production``) or at ``version``, compiled."""
        key = (name, version if version is not None else label)
        hit = self._cache.get(key)
        if hit is not None:
            now = time.monotonic()
            if now < hit.expires_at:
                return hit.prompt
            if now >= hit.retry_at:
                self._revalidate(key, ttl_s)
            return hit.stale
        try:
            return self._fetch(key, ttl_s).prompt
        except LlmopsError as exc:
            if fallback is None:
                raise
            log.warning("prompt %r: using the fallback (%s)", name, exc.message)
            return fallback_prompt(name, fallback).flagged(is_fallback=True)

    def invalidate(self, name: str | None = None) -> None:
        """Forget cached prompts (all, or those of ``name``)."""
        with self._lock:
            for key in [k for k in self._cache if name is None or k[0] == name]:
                del self._cache[key]

    def _fetch(self, key: tuple[str, str | int], ttl_s: float | None) -> _Cached:
        name, ref = key
        try:
            resp = self._http.get(f"/api/prompts/{quote(name, safe='')}/versions/{quote(str(ref), safe='')}")
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the prompt server is unreachable: {exc}", code="prompt_server_unreachable") from exc
        if resp.status_code != 200:
            raise _error(resp)
        data = resp.json()
        label = ref if isinstance(ref, str) else None
        prompt = CompiledPrompt(parse_content(data["content"]), name=name, version=data["version"], label=label)
        ttl = self._ttl_s if ttl_s is None else ttl_s
        entry = _Cached(prompt, prompt.flagged(stale=True), time.monotonic() + ttl)
        with self._lock:
            self._cache[key] = entry
        return entry

    def _revalidate(self, key: tuple[str, str | int], ttl_s: float | None) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
        threading.Thread(target=self._refresh, args=(key, ttl_s), name="llmops-prompt-refresh", daemon=True).start()

    def _refresh(self, key: tuple[str, str | int], ttl_s: float | None) -> None:
        try:
            self._fetch(key, ttl_s)
        except LlmopsError as exc:  # keep serving the last good version, flagged stale
            log.warning("prompt %r: refresh failed, serving the cached version (%s)", key[0], exc.message)
            hit = self._cache.get(key)
            if hit is not None:
                hit.retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
        finally:
            with self._lock:
                self._refreshing.discard(key)


def _error(resp: httpx.Response) -> LlmopsError:
    try:
        err = resp.json()["error"]
        message, param, code = str(err.get("message")), err.get("param"), err.get("code")
    except (ValueError, KeyError, TypeError):
        message, param, code = resp.text[:300], None, None
    cls = _ERRORS.get(resp.status_code)
    if cls is None:
        return UpstreamError(message, status_code=502, upstream_status=resp.status_code, code=code)
    return cls(message, param=param, code=code)


_default: PromptClient | None = None
_default_lock = threading.Lock()


def configure(base_url: str | None = None, api_key: str | None = None, **options: Any) -> PromptClient:
    """Replace the client behind :func:`get_prompt` (server, key, ``ttl_s``, ``timeout_s``)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = PromptClient(base_url, api_key, **options)
        return _default


def _client() -> PromptClient:
    global _default
    with _default_lock:
        if _default is None:
            _default = PromptClient()
        return _default


def get_prompt(
    name: str,
    label: str = "production",
    *,
    version: int | None = None,
    fallback: Fallback | None = None,
    cache_ttl_s: float | None = None,
) -> CompiledPrompt:
    """``llmops.get_prompt``: the prompt ``name`` at ``label`` (default ``production``) or ``version``."""
    return (_default or _client()).get_prompt(name, label, version=version, fallback=fallback, ttl_s=cache_ttl_s)
