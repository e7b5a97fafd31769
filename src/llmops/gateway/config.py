"""The gateway's configuration (the ``models:`` / ``router:`` / ``prices:`` sections of llmops.yaml).

Model aliases map to ordered deployments. Upstream URLs and keys come only from here (no request
can point the gateway at another host). Keys are references: ``env:NAME`` reads the environment at
start-up; the value is held as ``SecretStr`` and never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from llmops.core.errors import ConfigError

ProviderKind = Literal["local", "local-embed", "openai", "anthropic"]
Strategy = Literal["ordered", "weighted", "least-busy", "lowest-latency"]


class DeploymentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: ProviderKind
    name: str | None = None
    model: str | None = Field(None, description="Model name sent upstream (default: the alias).")
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float | None = Field(None, gt=0)
    retries: int | None = Field(None, ge=0, le=5)
    supports_tools: bool = True
    model_path: str | None = None
    context_window: int | None = None
    # --- load balancing (gateway/balancing.py); rpm/tpm are enforced by the limits helper ---
    weight: float = Field(1.0, gt=0, description="Share of traffic under strategy: weighted.")
    rpm: int | None = Field(None, gt=0, description="Requests per minute this deployment accepts.")
    tpm: int | None = Field(None, gt=0, description="Tokens per minute this deployment accepts.")

    @field_validator("api_key", mode="before")
    @classmethod
    def _resolve_env(cls, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("env:"):
            resolved = os.environ.get(value[4:])
            return resolved if resolved else None
        return value

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value


# --- response caches (gateway/cache.py, gateway/semantic_cache.py): the `cache:` section of a model alias ---
class ExactCacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Serve identical requests from the cache by default on this route.")
    ttl_s: int = Field(3600, ge=1, le=30 * 86400, description="How long an entry is served.")
    allow_sampled: bool = Field(False, description="Also cache requests with temperature > 0 or unset.")


class SemanticCacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Serve near-duplicate questions (same context) from the cache.")
    threshold: float | None = Field(None, gt=0, le=1, description="Cosine similarity; default: the evaluated one.")
    ttl_s: int = Field(3600, ge=1, le=30 * 86400)
    guard: bool = Field(True, description="Refuse near-duplicates that differ in negation, numbers, dates, names.")
    nli: bool = Field(False, description="Also refuse when the local NLI model finds a contradiction.")


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exact: ExactCacheConfig = Field(default_factory=ExactCacheConfig)
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)


# --- end response caches ---


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    deployments: list[DeploymentConfig] = Field(min_length=1)
    description: str | None = None
    cache: CacheConfig = Field(default_factory=CacheConfig)  # response caches (gateway/cache.py)
    strategy: Strategy = Field("ordered", description="How a request picks among the deployments.")


class RouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retries: int = Field(1, ge=0, le=5, description="Extra tries of one deployment before falling back.")
    backoff_ms: float = Field(100, ge=0)
    max_retry_after_s: float = Field(10, ge=0, description="Longest upstream Retry-After honoured.")
    # --- load balancing: cooldown of failing deployments, latency average (gateway/balancing.py) ---
    cooldown_failures: int = Field(3, ge=1, description="Failures within cooldown_window_s that cool a deployment.")
    cooldown_window_s: float = Field(60, gt=0)
    cooldown_s: float = Field(30, ge=0, description="How long a cooled deployment is skipped before a probe.")
    latency_alpha: float = Field(0.3, gt=0, le=1, description="EWMA weight of the newest latency sample.")
    latency_stale_s: float = Field(60, gt=0, description="An average older than this is re-measured.")


class PriceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    models: list[ModelConfig] = Field(default_factory=list)
    router: RouterConfig = Field(default_factory=RouterConfig)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)

    def with_defaults(self) -> GatewayConfig:
        """The embedded models are always served unless the config names those aliases itself."""
        names = {m.name for m in self.models}
        extra = [m for m in default_models() if m.name not in names]
        return self.model_copy(update={"models": [*self.models, *extra]})


def default_models() -> list[ModelConfig]:
    return [
        ModelConfig(
            name="local",
            deployments=[DeploymentConfig(provider="local")],
            description="SmolLM2-135M-Instruct (Q4_1 GGUF) on llama.cpp, in process",
        ),
        ModelConfig(
            name="local-embed",
            deployments=[DeploymentConfig(provider="local-embed")],
            description="all-MiniLM-L6-v2 (int8 ONNX, 384 dims) on onnxruntime, in process",
        ),
    ]


def load_gateway_config(path: Path | None) -> GatewayConfig:
    if path is None:
        return GatewayConfig().with_defaults()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config {str(path)!r} must be a mapping")
    try:
        return GatewayConfig.model_validate(raw).with_defaults()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid config {str(path)!r} at {loc}: {first['msg']}", param=loc) from exc
