"""The Cache page shows each route's hit rate, entries and the measured wrong-hit rate to a signed-in user."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer
from tests.gateway_cache.conftest import chat


def test_cache_page_lists_routes_with_hit_rate_and_measured_wrong_hit_rate(cache_server: RunningServer) -> None:
    """After a miss and a hit on `cached`, the page shows 50.0% for it; `semantic` shows its threshold and a
    measured wrong-hit rate; the nav links to the page; without a key the page redirects to the login."""
    chat(cache_server, text="page?")
    chat(cache_server, text="page?")
    page = httpx.get(cache_server.base_url + "/cache", cookies={"llmops_key": cache_server.key}, timeout=60)
    assert page.status_code == 200
    html = page.text
    assert 'href="/cache"' in html and 'aria-current="page"' in html
    row = html[html.index('<td class="mono">cached</td>') :].split("</tr>")[0]
    assert "50.0%" in row and "1 / 1 / 0" in row and "exact only" in row
    semantic = html[html.index('<td class="mono">semantic</td>') :].split("</tr>")[0]
    assert "on (0.9)" in semantic and "0.0%" in semantic
    anonymous = httpx.get(cache_server.base_url + "/cache", timeout=30, follow_redirects=False)
    assert anonymous.status_code in (302, 303, 307) and "/login" in anonymous.headers["location"]
