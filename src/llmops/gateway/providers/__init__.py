"""Provider implementations and the factory that builds deployments from configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from llmops.core.errors import ConfigError
from llmops.core.http import HttpClient
from llmops.core.settings import GatewaySettings, LocalModelSettings
from llmops.gateway.config import DeploymentConfig, GatewayConfig
from llmops.gateway.providers.embed import LocalEmbeddingProvider, OnnxEmbedder
from llmops.gateway.providers.local import LlamaCppProvider
from llmops.gateway.providers.openai import OpenAIProvider
from llmops.gateway.routing import Deployment

_DEFAULT_BASE = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


class ProviderFactory:
    """Builds one provider per deployment; the embedded models are shared (loaded once)."""

    def __init__(self, http: HttpClient, local: LocalModelSettings, embedder: OnnxEmbedder) -> None:
        self._http = http
        self._local = local
        self._embedder = embedder
        self._shared: dict[str, Any] = {}
        self.providers: list[Any] = []

    def build(self, dep: DeploymentConfig) -> tuple[Any, str | None]:
        if dep.provider == "local":
            key = f"local:{dep.model_path or self._local.model_path}"
            if key not in self._shared:
                path = dep.model_path or self._local.model_path
                self._shared[key] = LlamaCppProvider(
                    None if path is None else Path(path),
                    threads=self._local.threads,
                    context_size=dep.context_window or self._local.context_size,
                    queue_size=self._local.queue_size,
                )
                self.providers.append(self._shared[key])
            return self._shared[key], None
        if dep.provider == "local-embed":
            if "embed" not in self._shared:
                self._shared["embed"] = LocalEmbeddingProvider(self._embedder)
                self.providers.append(self._shared["embed"])
            return self._shared["embed"], None
        base = dep.base_url or _DEFAULT_BASE[dep.provider]
        secret = dep.api_key.get_secret_value() if dep.api_key else None
        provider: Any
        if dep.provider == "openai":
            host = urlparse(base).hostname or ""
            name = "openai" if host.endswith("openai.com") else _guess_name(host)
            provider = OpenAIProvider(
                self._http, base_url=base, api_key=secret, provider_name=name, supports_tools=dep.supports_tools
            )
        else:
            from llmops.gateway.providers.anthropic import AnthropicProvider

            provider = AnthropicProvider(self._http, base_url=base, api_key=secret)
        self.providers.append(provider)
        return provider, urlparse(base).hostname


def _guess_name(host: str) -> str:
    """OTel has no well-known value for self-hosted OpenAI-compatible servers; we emit a lower-case custom one."""
    return "openai_compatible" if host not in ("localhost", "127.0.0.1") else "openai_compatible_local"


def build_routes(
    config: GatewayConfig, factory: ProviderFactory, settings: GatewaySettings
) -> dict[str, list[Deployment]]:
    routes: dict[str, list[Deployment]] = {}
    for model in config.models:
        if model.name in routes:
            raise ConfigError(f"model alias {model.name!r} is defined twice", param="models")
        deployments = []
        for i, dep in enumerate(model.deployments):
            provider, address = factory.build(dep)
            deployments.append(
                Deployment(
                    name=dep.name or f"{model.name}#{i + 1}:{dep.provider}",
                    alias=model.name,
                    kind=dep.provider,
                    upstream_model=dep.model or model.name,
                    provider=provider,
                    timeout_s=dep.timeout_s or settings.default_timeout_s,
                    retries=dep.retries if dep.retries is not None else config.router.retries,
                    server_address=address,
                )
            )
        routes[model.name] = deployments
    return routes
