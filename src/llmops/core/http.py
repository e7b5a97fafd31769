"""The one outbound HTTP client factory: explicit timeouts and pool limits.

Tests swap the transport (``transport=``) only when they cannot run a real loopback server.
"""

from __future__ import annotations

import httpx


def create_http_client(*, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, connect=10.0),
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30),
        transport=transport,
        follow_redirects=False,  # upstream URLs come only from configuration; never follow elsewhere
        trust_env=False,
    )
