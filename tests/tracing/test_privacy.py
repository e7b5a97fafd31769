"""Redaction before storage (``llmops.tracing.privacy``) and the project settings API: secrets are redacted by
default on every write path (OTLP ingest and gateway recording), PII rules and custom patterns are opt-in per
project, and a redacted secret never reaches the database files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from llmops.core.errors import InvalidInputError
from llmops.tracing.models import RedactionPolicy, Span
from llmops.tracing.privacy import Redactor, luhn_ok
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support import otlp
from tests.support.fake_upstream import FakeUpstream

SECRETS = {
    "openai_key": "sk-proj-Abc123Def456Ghi789Jkl012Mno345",
    "anthropic_key": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123",
    "llmops_key": "sk-llmops-Zq3xY8wVbN1mK4pL7rT2",
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "A1b2C3d4E5" * 4,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "bearer": "Bearer abcDEF123456.ghiJKL",
    "stripe_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "slack_token": "xoxb-123456789012-abcdefghijkl",
    "google_api_key": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
}


@pytest.mark.parametrize(("kind", "secret"), sorted(SECRETS.items()))
def test_default_policy_redacts_each_secret_kind(kind: str, secret: str) -> None:
    out = Redactor(RedactionPolicy()).text(f"config: {secret} (do not share)")
    assert secret not in out and f"[REDACTED:{kind}]" in out and out.startswith("config: ")


def test_ordinary_text_is_left_alone() -> None:
    """No false redactions on prose, code identifiers, versions, dates, ids and hashes."""
    red = Redactor(RedactionPolicy(emails=True, phones=True, cards=True))
    for text in [
        "the task-management-system-for-enterprise-customers ships in v1.2.3 on 2024-01-15",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736, span 00f067aa0ba902b7, sha 9f86d081884c7d659a2feaa0c55ad015",
        "def ask_skeleton(request_id: int = 1234) -> str:  # returns 'ok'",
        "Ask the bearer of this letter; see RFC 6750.",
        "order 4111 1111 1111 1112 failed the checksum",
    ]:
        assert red.text(text) == text


def test_pii_rules_are_opt_in_and_cards_need_luhn() -> None:
    text = "mail ann.lee@example.co.uk or call +1 415-555-0132; card 4111-1111-1111-1111"
    assert Redactor(RedactionPolicy()).text(text) == text
    out = Redactor(RedactionPolicy(emails=True, phones=True, cards=True)).text(text)
    assert out == "mail [REDACTED:email] or call [REDACTED:phone]; card [REDACTED:card_number]"
    assert luhn_ok("4111 1111 1111 1111") and not luhn_ok("4111 1111 1111 1112") and not luhn_ok("1234")


def test_custom_patterns_and_validation() -> None:
    red = Redactor(RedactionPolicy(secrets=False, custom_patterns=(r"ACME-\d{4}", r"(?i)project\s+falcon")))
    assert red.text("ticket ACME-1234 for Project Falcon") == "ticket [REDACTED:custom] for [REDACTED:custom]"
    with pytest.raises(InvalidInputError):
        Redactor(RedactionPolicy(custom_patterns=("([unclosed",)))


def test_spans_are_redacted_everywhere_and_never_mutated() -> None:
    """Every string of a span is covered (name, error, ids, nested attributes, input, output); the original
    span object is left as it was, and a span with nothing to redact is passed through as is."""
    secret = SECRETS["openai_key"]
    span = Span(
        trace_id="a" * 32,
        span_id="b" * 16,
        project_id="p",
        name=f"call {secret}",
        kind="llm",
        start_ns=1,
        end_ns=2,
        error=f"401 for {secret}",
        user_id=secret,
        attributes={"headers": {"authorization": [f"Bearer {secret}"]}, "n": 1},
        input=[{"role": "user", "parts": [{"type": "text", "content": secret}]}],
        output=secret,
    )
    red = Redactor(RedactionPolicy())
    out = red.span(span)
    assert secret not in repr(out) and secret in repr(span)
    clean = Span(trace_id="a" * 32, span_id="b" * 16, project_id="p", name="ok", kind="llm", start_ns=1, end_ns=2)
    assert red.span(clean) is clean


def _db_bytes(home: Path) -> bytes:
    """Every byte SQLite keeps for this server: the database file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(home.glob("llmops.db*")))


def test_a_secret_never_reaches_the_database_file(
    fake_upstream: FakeUpstream, server_factory: Callable[..., RunningServer]
) -> None:
    """Secrets sent through OTLP ingest and through the gateway (chat input) are redacted before storage: the
    raw database files (incl. WAL and the full-text index) never contain them."""
    srv = server_factory(fake_config(fake_upstream, {"name": "up", "deployments": [openai_dep(fake_upstream, "m")]}))
    ingest_secret, gateway_secret = SECRETS["anthropic_key"], SECRETS["aws_access_key"]
    tid, sid = otlp.new_ids()
    attrs = {"input.value": f"use {ingest_secret}", "http.request.header.authorization": f"Bearer {ingest_secret}"}
    with srv.client() as c:
        assert otlp.post(c, otlp.request([otlp.span(tid, sid, attrs=attrs)])).status_code == 200
        client = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
        client.chat.completions.create(model="up", messages=[{"role": "user", "content": f"key {gateway_secret}"}])
        srv.flush()
        stored = c.get(f"/api/traces/{tid}").json()["spans"][0]
        assert stored["input"] == "use [REDACTED:anthropic_key]"
        hits = c.get("/api/traces", params={"q": "REDACTED"}).json()["data"]
        assert len(hits) == 2  # both paths stored the redacted text (and it is searchable as such)
    data = _db_bytes(srv.home)
    assert ingest_secret.encode() not in data and gateway_secret.encode() not in data
    assert b"[REDACTED:anthropic_key]" in data


def test_project_settings_api(server: RunningServer) -> None:
    """GET/PUT /api/project/settings: admin only, validated, and applied to the next spans at once."""
    plain = server.services.projects.create_key("default", "plain")
    with server.client() as c, server.client(plain.secret) as p:
        got = c.get("/api/project/settings").json()
        assert got["redaction"]["secrets"] is True and got["redaction"]["emails"] is False
        assert got["retention_days"] is None and got["effective_retention_days"] == 30
        assert p.get("/api/project/settings").status_code == 403
        assert p.put("/api/project/settings", json={}).status_code == 403
        bad = c.put("/api/project/settings", json={"redaction": {"custom_patterns": ["(oops"]}})
        assert bad.status_code == 400 and "custom pattern" in bad.json()["error"]["message"]
        assert c.put("/api/project/settings", json={"retention_days": -1}).status_code == 400
        body = {"redaction": {"emails": True, "custom_patterns": [r"ORDER-\d+"]}, "retention_days": 7}
        put = c.put("/api/project/settings", json=body)
        assert put.status_code == 200 and put.json()["effective_retention_days"] == 7
        assert c.get("/api/project/settings").json()["redaction"]["custom_patterns"] == [r"ORDER-\d+"]
        tid, sid = otlp.new_ids()
        attrs = {"output.value": "sent ORDER-991 to bo@example.org"}
        assert otlp.post(c, otlp.request([otlp.span(tid, sid, attrs=attrs)])).status_code == 200
        assert c.get(f"/api/traces/{tid}").json()["spans"][0]["output"] == "sent [REDACTED:custom] to [REDACTED:email]"


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_whole_span_precheck_finds_secrets_next_to_json_escaped_text(kind: str) -> None:
    """The one-search pre-check over the span's JSON finds a secret wherever it sits: beside quotes,
    newlines, non-ASCII text and backslashes that JSON escapes, deep in nested attributes, in non-string
    containers' strings; only a span with no trigger at all is passed through untouched."""
    secret = SECRETS[kind]
    tricky = f'line1\n"quoted" \\ é 数据 \t{secret}\x00end'
    span = Span(
        trace_id="a" * 32,
        span_id="b" * 16,
        project_id="p",
        name="n",
        kind="llm",
        start_ns=1,
        end_ns=2,
        attributes={"deep": {"list": [1, 2.5, True, None, {"x": tricky}]}, 7: "int key"},
    )
    out = Redactor(RedactionPolicy()).span(span)
    assert secret not in repr(out)
    assert "[REDACTED:" in repr(out)


def _body(attrs: dict[str, object]) -> bytes:
    tid, sid = otlp.new_ids()
    return otlp.request([otlp.span(tid, sid, attrs=attrs)]).SerializeToString()


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_batch_precheck_clears_only_bodies_without_any_trigger(kind: str) -> None:
    """The one scan over a protobuf batch passes a batch through only when no span could need redaction."""
    redactor = Redactor(RedactionPolicy())
    assert redactor.clears_protobuf(_body({"input.value": "the quarterly report, no secrets", "n": 3}))
    assert not redactor.clears_protobuf(_body({"input.value": f"here: {SECRETS[kind]}"}))
    assert not redactor.clears_protobuf(_body({"input.value": 'json with an escape: "caf\\u00e9"'}))
    assert not Redactor(RedactionPolicy(phones=True)).clears_protobuf(_body({"a": "plain"}))  # no triggers
    assert not Redactor(RedactionPolicy(custom_patterns=(r"ORDER-\d+",))).clears_protobuf(_body({"a": "plain"}))


def test_batch_precheck_ignores_backslash_u_without_hex_digits() -> None:
    """Only a JSON escape (backslash, u, four hex digits) keeps a batch from being cleared: the two bytes alone
    turn up in random binary ids (~10 % of 512-span batches), where no JSON decoding can happen."""
    redactor = Redactor(RedactionPolicy())
    tid, _ = otlp.new_ids()
    body = otlp.request([otlp.span(tid, "5c757a7a5c75000a", attrs={"a": "plain text"})]).SerializeToString()
    assert b"\\u" in body
    assert redactor.clears_protobuf(body)
    assert not redactor.clears_protobuf(_body({"a": "raw \\uZZZZ then \\u00E9"}))


def test_a_secret_spelled_with_json_escapes_is_still_redacted_at_ingest() -> None:
    """A secret in JSON held by an attribute, with a character written as a \\u escape, is invisible in the raw
    body but plain after mapping: the batch is not cleared and the mapped span is redacted."""
    from llmops.tracing._otlp import PROTOBUF, DecodeContext
    from llmops.tracing._sql import SqlTraceStore
    from llmops.tracing.ingest import _Job, _prepare

    key = SECRETS["openai_key"]
    escaped = key.replace("-", "\\u002d")
    messages = '[{"role": "user", "parts": [{"type": "text", "content": "use ' + escaped + '"}]}]'
    body = _body({"gen_ai.operation.name": "chat", "gen_ai.input.messages": messages})
    assert key.encode() not in body
    job = _Job(
        body, None, PROTOBUF, DecodeContext("p", None, 100_000), 1 << 20, RedactionPolicy(), SqlTraceStore.prepare_rows
    )
    prepared = _prepare(job)
    stored = repr(prepared.rows.spans)  # type: ignore[union-attr]
    assert key not in stored and "[REDACTED:openai_key]" in stored
