"""The exact cache end to end through a real gateway on loopback, against the fake upstream."""

from __future__ import annotations

import openai

from tests.conftest import RunningServer
from tests.gateway_cache.conftest import chat, span_attributes, upstream_calls
from tests.support.fake_upstream import FakeUpstream


def test_repeat_is_a_hit_that_costs_nothing_and_records_what_it_saved(
    cache_server: RunningServer, fake_upstream: FakeUpstream
) -> None:
    """Second identical request: served without an upstream call, same body, header hit, span cost 0 with
    llmops.cache.saved_usd equal to the first call's cost."""
    first = chat(cache_server)
    assert first.status_code == 200 and first.headers["x-llmops-cache"] == "miss"
    second = chat(cache_server)
    assert second.status_code == 200 and second.headers["x-llmops-cache"] == "hit"
    assert upstream_calls(fake_upstream) == 1
    assert second.json()["choices"] == first.json()["choices"]
    assert second.json()["usage"] == first.json()["usage"]
    miss = span_attributes(cache_server, first.headers["x-llmops-trace-id"])
    hit = span_attributes(cache_server, second.headers["x-llmops-trace-id"])
    assert miss["llmops.cache.status"] == "miss" and miss["llmops.cost_usd"] > 0
    assert hit["llmops.cache.status"] == "hit" and hit["llmops.cache.kind"] == "exact"
    assert hit["llmops.cost_usd"] == 0
    assert hit["llmops.cache.saved_usd"] == miss["llmops.cost_usd"]
    assert hit["gen_ai.usage.input_tokens"] == miss["gen_ai.usage.input_tokens"]


def test_two_projects_never_share_an_entry(cache_server: RunningServer, fake_upstream: FakeUpstream) -> None:
    """The same request from project B after project A is a miss (upstream called again), while a repeat inside
    each project is a hit: the cache is not a no-op, and it is partitioned by tenant."""
    projects = cache_server.services.projects
    other = projects.create_project("cache-tenant-b")
    key_b = projects.create_key_in(other.project_id, "b", is_admin=True).secret
    assert chat(cache_server).headers["x-llmops-cache"] == "miss"
    assert chat(cache_server, key=key_b).headers["x-llmops-cache"] == "miss"
    assert upstream_calls(fake_upstream) == 2
    assert chat(cache_server).headers["x-llmops-cache"] == "hit"
    assert chat(cache_server, key=key_b).headers["x-llmops-cache"] == "hit"
    assert upstream_calls(fake_upstream) == 2
    with cache_server.client(key_b) as c:
        assert c.delete("/api/cache").json()["deleted"] == 1
    assert chat(cache_server, key=key_b).headers["x-llmops-cache"] == "miss"  # B purged its own entry
    assert chat(cache_server).headers["x-llmops-cache"] == "hit"  # A's entry untouched


def test_streamed_hit_is_a_valid_stream_through_the_openai_sdk(
    cache_server: RunningServer, fake_upstream: FakeUpstream
) -> None:
    """A streamed miss is stored from its chunks; the repeat (streamed, include_usage) is served from the cache as
    role, content, finish and usage chunks the official SDK parses; a plain request then hits the same entry."""
    client = openai.OpenAI(base_url=cache_server.v1, api_key=cache_server.key, max_retries=0)
    msgs = [{"role": "user", "content": "Tell me a short story about a fox."}]

    def stream() -> tuple[list, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="cached", messages=msgs, temperature=0, stream=True, stream_options={"include_usage": True}
        )
        return list(raw.parse()), raw.headers["x-llmops-cache"]

    first, status1 = stream()
    second, status2 = stream()
    assert (status1, status2) == ("miss", "hit")
    assert upstream_calls(fake_upstream) == 1
    text1 = "".join(c.choices[0].delta.content or "" for c in first if c.choices)
    text2 = "".join(c.choices[0].delta.content or "" for c in second if c.choices)
    assert text2 == text1 and text1
    assert second[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in second if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert second[-1].choices == [] and second[-1].usage is not None
    assert second[-1].usage.total_tokens == first[-1].usage.total_tokens
    plain = client.chat.completions.with_raw_response.create(model="cached", messages=msgs, temperature=0)
    assert plain.headers["x-llmops-cache"] == "hit" and plain.parse().choices[0].message.content == text1


def test_header_overrides(cache_server: RunningServer, fake_upstream: FakeUpstream) -> None:
    """no-cache bypasses (no lookup, no store); no-store looks up but keeps nothing; refresh calls upstream and
    overwrites; use turns the cache on for a route whose default is off."""
    assert chat(cache_server, text="a", headers={"x-llmops-cache": "no-cache"}).headers["x-llmops-cache"] == "bypass"
    assert chat(cache_server, text="a", headers={"x-llmops-cache": "no-store"}).headers["x-llmops-cache"] == "miss"
    assert chat(cache_server, text="a").headers["x-llmops-cache"] == "miss"  # nothing was stored so far
    assert upstream_calls(fake_upstream) == 3
    assert chat(cache_server, text="a", headers={"x-llmops-cache": "no-store"}).headers["x-llmops-cache"] == "hit"
    assert chat(cache_server, text="a", headers={"x-llmops-cache": "refresh"}).headers["x-llmops-cache"] == "miss"
    assert upstream_calls(fake_upstream) == 4
    assert chat(cache_server, text="a").headers["x-llmops-cache"] == "hit"
    plain = chat(cache_server, "plain", text="b")
    assert "x-llmops-cache" not in plain.headers  # no cache configured, none asked for
    assert chat(cache_server, "plain", text="b", headers={"x-llmops-cache": "use"}).headers["x-llmops-cache"] == "miss"
    assert chat(cache_server, "plain", text="b", headers={"x-llmops-cache": "use"}).headers["x-llmops-cache"] == "hit"
    assert chat(cache_server, "plain", text="b").status_code == 200
    assert upstream_calls(fake_upstream) == 7


def test_bad_cache_headers_are_precise_400s(cache_server: RunningServer, fake_upstream: FakeUpstream) -> None:
    """An unknown directive or a bad TTL is refused in the OpenAI envelope naming the header; nothing is sent."""
    bad = chat(cache_server, headers={"x-llmops-cache": "forever"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "x-llmops-cache" and bad.json()["error"]["code"] == "invalid_value"
    for ttl in ("0", "-5", "soon", str(31 * 86400)):
        r = chat(cache_server, headers={"x-llmops-cache-ttl": ttl})
        assert r.status_code == 400 and r.json()["error"]["param"] == "x-llmops-cache-ttl", ttl
    assert upstream_calls(fake_upstream) == 0


def test_errors_are_never_cached(cache_server: RunningServer, fake_upstream: FakeUpstream) -> None:
    """An upstream failure reaches the client as an error and leaves no entry: the next try calls upstream."""
    fake_upstream.enqueue("status:code=400")
    failed = chat(cache_server, text="fails once")
    assert failed.status_code == 400
    ok = chat(cache_server, text="fails once")
    assert ok.status_code == 200 and ok.headers["x-llmops-cache"] == "miss"
    assert chat(cache_server, text="fails once").headers["x-llmops-cache"] == "hit"
    assert upstream_calls(fake_upstream) == 2


def test_sampled_requests_are_not_cached_unless_the_route_allows(
    cache_server: RunningServer, fake_upstream: FakeUpstream
) -> None:
    """temperature > 0 and unset temperature (provider default 1) bypass the cache; allow_sampled caches them."""
    for _ in range(2):
        assert chat(cache_server, text="s", temperature=0.7).headers["x-llmops-cache"] == "bypass"
        with cache_server.client() as c:
            unset = c.post(
                "/v1/chat/completions", json={"model": "cached", "messages": [{"role": "user", "content": "s"}]}
            )
        assert unset.headers["x-llmops-cache"] == "bypass"
    assert upstream_calls(fake_upstream) == 4
    assert chat(cache_server, "sampled", text="s", temperature=0.7).headers["x-llmops-cache"] == "miss"
    assert chat(cache_server, "sampled", text="s", temperature=0.7).headers["x-llmops-cache"] == "hit"
    assert upstream_calls(fake_upstream) == 5


def test_key_covers_the_whole_request(cache_server: RunningServer, fake_upstream: FakeUpstream) -> None:
    """Any parameter that changes the answer (max_tokens, seed, tools, response_format) makes a new entry; the
    stream flag and `user` do not."""
    chat(cache_server, text="k")
    variants = [
        {"max_tokens": 5},
        {"seed": 7},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
    ]
    for extra in variants:
        assert chat(cache_server, text="k", **extra).headers["x-llmops-cache"] == "miss", extra
    assert chat(cache_server, text="k", user="someone").headers["x-llmops-cache"] == "hit"
    assert upstream_calls(fake_upstream) == 1 + len(variants)


def test_stats_report_hits_entries_and_savings(cache_server: RunningServer, fake_upstream: FakeUpstream) -> None:
    """/api/cache/stats counts the caller's hits and misses per route, live entries and saved USD."""
    chat(cache_server, text="x")
    chat(cache_server, text="x")
    chat(cache_server, text="x")
    with cache_server.client() as c:
        stats = c.get("/api/cache/stats").json()["data"]
    row = next(r for r in stats if r["model"] == "cached")
    assert (row["hits"], row["misses"], row["entries"]) == (2, 1, 1)
    assert row["hit_rate"] == round(2 / 3, 4) and row["saved_usd"] > 0
    assert row["wrong_hit_rate_measured"] is None  # exact cache: no semantic threshold to measure


def test_redis_mode_serves_hits_from_redis(
    server_factory,
    fake_upstream: FakeUpstream,
    redis_url: str,  # type: ignore[no-untyped-def]
) -> None:
    """With LLMOPS_REDIS_URL the exact cache lives in Redis: a repeat is a hit, and a fresh process pointed at the
    same Redis and database serves it too (the entry is not in process memory)."""
    from tests.gateway_cache.conftest import cached_config

    server = server_factory(config=cached_config(fake_upstream), redis_url=redis_url)
    assert chat(server, text="redis?").headers["x-llmops-cache"] == "miss"
    assert chat(server, text="redis?").headers["x-llmops-cache"] == "hit"
    assert upstream_calls(fake_upstream) == 1
    cache = server.services.cache
    assert cache is not None and type(cache._store).__name__ == "RedisExactCacheStore"
    with server.client() as c:
        row = next(r for r in c.get("/api/cache/stats").json()["data"] if r["model"] == "cached")
        assert row["entries"] == 1
        assert c.delete("/api/cache").json()["deleted"] == 1
    assert chat(server, text="redis?").headers["x-llmops-cache"] == "miss"


def test_store_outage_degrades_to_a_visible_bypass(
    server_factory,
    fake_upstream: FakeUpstream,  # type: ignore[no-untyped-def]
) -> None:
    """With the cache's Redis unreachable, requests are still answered (from upstream), the header says bypass and
    the span carries llmops.cache.error: never a failed request, never a silent substitute."""
    from tests.gateway_cache.conftest import cached_config
    from tests.support.postgres import free_port

    server = server_factory(config=cached_config(fake_upstream), redis_url=f"redis://127.0.0.1:{free_port()}/0")
    for _ in range(2):
        r = chat(server, text="outage")
        assert r.status_code == 200 and r.headers["x-llmops-cache"] == "bypass"
    assert upstream_calls(fake_upstream) == 2
    attrs = span_attributes(server, r.headers["x-llmops-trace-id"])
    assert attrs["llmops.cache.status"] == "bypass" and "ConnectionError" in attrs["llmops.cache.error"]
