"""Bad input gets a precise 4xx in the OpenAI envelope, never a 500, and keys are checked first."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import RunningServer

CHAT = "/v1/chat/completions"
OK_MSG = [{"role": "user", "content": "hi"}]


def _envelope(resp, status: int, code: str | None = None, param: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if code is not None:
        assert err["code"] == code
    if param is not None:
        assert err["param"] == param
    return err


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": OK_MSG}, "model"),
        ({"model": "local"}, "messages"),
        ({"model": "local", "messages": []}, "messages"),
        ({"model": "local", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "local", "messages": [{"role": "user"}]}, "messages.0"),
        ({"model": "local", "messages": OK_MSG, "temperature": "hot"}, "temperature"),
        ({"model": "local", "messages": OK_MSG, "temperature": 3}, "temperature"),
        ({"model": "local", "messages": OK_MSG, "max_tokens": 0}, "max_tokens"),
        ({"model": "local", "messages": OK_MSG, "stream": "yes"}, "stream"),
        ({"model": "local", "messages": OK_MSG, "response_format": {"type": "xml"}}, "response_format.type"),
        ({"model": 42, "messages": OK_MSG}, "model"),
    ],
)
def test_ill_formed_chat_requests_name_the_field(server: RunningServer, body: dict, param: str) -> None:
    """Missing or ill-typed fields → 400 invalid_request_error naming the field."""
    with server.client() as c:
        err = _envelope(c.post(CHAT, json=body), 400, param=param)
    assert err["type"] == "invalid_request_error"


def test_malformed_json_and_non_object_bodies(server: RunningServer) -> None:
    """Broken JSON, empty bodies and JSON that is not an object are 400s."""
    with server.client() as c:
        _envelope(c.post(CHAT, content=b"{nope", headers={"content-type": "application/json"}), 400, "invalid_json")
        _envelope(c.post(CHAT, content=b""), 400, "invalid_json")
        _envelope(c.post(CHAT, json=[1, 2]), 400)
        _envelope(c.post("/v1/embeddings", json={"model": "local-embed", "input": []}), 400, param="input")
        _envelope(c.post("/v1/embeddings", json={"model": "local-embed", "input": [[1, 2]]}), 400, param="input")


def test_unknown_model_is_404_model_not_found(server: RunningServer) -> None:
    with server.client() as c:
        _envelope(c.post(CHAT, json={"model": "gpt-9", "messages": OK_MSG}), 404, "model_not_found", "model")
        _envelope(c.post("/v1/embeddings", json={"model": "nope", "input": "x"}), 404, "model_not_found")


def test_oversized_body_is_413(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Bodies beyond LLMOPS_GATEWAY_MAX_BODY_BYTES are refused, declared or streamed."""
    from llmops.core.settings import GatewaySettings

    srv = server_factory(gateway=GatewaySettings(max_body_bytes=1000))
    big = {"model": "local", "messages": [{"role": "user", "content": "x" * 5000}]}
    with srv.client() as c:
        _envelope(c.post(CHAT, json=big), 413, "payload_too_large")

        def chunks():  # type: ignore[no-untyped-def]
            yield b'{"model": "local", "messages": [{"role": "user", "content": "'
            yield b"y" * 4000
            yield b'"}]}'

        _envelope(c.post(CHAT, content=chunks(), headers={"content-type": "application/json"}), 413)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-llmops-wrong"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer ' OR 1=1;--"},
        {"Authorization": "Bearer " + "k" * 10_000},
        {"x-api-key": "nope"},
    ],
)
def test_missing_or_bad_keys_are_401(server: RunningServer, headers: dict) -> None:
    """No valid key → 401 authentication_error, including injection-shaped and huge keys."""
    import httpx

    with httpx.Client(base_url=server.base_url) as c:
        for path in ("/v1/models", "/api/traces"):
            err = _envelope(c.get(path, headers=headers), 401)
            assert err["type"] == "authentication_error"
        _envelope(c.post(CHAT, json={"model": "local", "messages": OK_MSG}, headers=headers), 401)


def test_revoked_key_stops_working_and_sdk_sees_authentication_error(server: RunningServer) -> None:
    created = server.services.projects.create_key("default", "temp")
    client = openai.OpenAI(base_url=server.v1, api_key=created.secret, max_retries=0)
    assert client.models.list().data
    server.services.projects.revoke_key(created.key.key_id)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_local_model_refuses_tools_clearly(server: RunningServer) -> None:
    """The embedded model has no tool calling: a clear 400 on `tools`, not a silent ignore."""
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with server.client() as c:
        _envelope(c.post(CHAT, json={"model": "local", "messages": OK_MSG, "tools": tools}), 400, param="tools")


def test_unknown_routes_and_methods(server: RunningServer) -> None:
    with server.client() as c:
        _envelope(c.get("/v1/nothing-here"), 404, "not_found")
        _envelope(c.get(CHAT), 405, "method_not_allowed")
