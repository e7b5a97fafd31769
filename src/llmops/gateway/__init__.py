"""The OpenAI-compatible gateway: providers, routing with retries and fallbacks, cost, recording.

Owns ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``. Imports ``llmops.core``,
``llmops.projects`` (who is calling) and ``llmops.tracing`` (recording spans); nothing imports it but the
composition root, the CLI and the web pages. Tested against a real fake upstream on loopback
(``tests/support/fake_upstream.py``) and the real embedded models.
"""

from llmops.gateway.config import GatewayConfig, load_gateway_config
from llmops.gateway.http import create_gateway_router
from llmops.gateway.pricing import PriceTable
from llmops.gateway.providers import ProviderFactory, build_routes
from llmops.gateway.providers.embed import OnnxEmbedder
from llmops.gateway.recording import CallContext
from llmops.gateway.retrieval import Passage, Retriever
from llmops.gateway.routing import Router
from llmops.gateway.service import GatewayService

__all__ = [
    "CallContext",
    "Passage",
    "Retriever",
    "GatewayConfig",
    "GatewayService",
    "OnnxEmbedder",
    "PriceTable",
    "ProviderFactory",
    "Router",
    "build_routes",
    "create_gateway_router",
    "load_gateway_config",
]
