"""Docs stay true: every setting is documented, every Python example in docs/ and the README runs
against a real server, and every YAML example is a valid llmops.yaml."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from llmops.core.settings import (
    BatchSettings,  # batches
    EvalSettings,  # evaluation core
    GatewaySettings,
    LimitsSettings,  # budgets and rate limits
    LocalModelSettings,
    OnlineEvalSettings,  # review / online evals
    PromptSettings,
    RagHealthSettings,  # RAG corpus health
    RagSettings,  # RAG core
    ScorerSettings,  # evaluation scorers
    Settings,
    TracingSettings,
)
from llmops.gateway.config import GatewayConfig
from tests.conftest import RunningServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _blocks(lang: str) -> list[tuple[str, str]]:
    return [
        (f"{p.name}#{i}", m.group(2))
        for p in DOCS
        for i, m in enumerate(FENCE.finditer(p.read_text()))
        if m.group(1) == lang
    ]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    for cls in (
        Settings,
        GatewaySettings,
        LocalModelSettings,
        TracingSettings,
        PromptSettings,
        RagSettings,
        RagHealthSettings,  # RAG corpus health
        OnlineEvalSettings,  # review / online evals
        ScorerSettings,  # evaluation scorers
        EvalSettings,  # evaluation core
        LimitsSettings,  # budgets and rate limits
        BatchSettings,  # batches
    ):
        prefix = cls.model_config.get("env_prefix", "")
        for name in cls.model_fields:
            if isinstance(getattr(Settings(), name, None), BaseSettings):
                continue  # a nested domain, documented by its own class
            assert f"`{prefix}{name.upper()}`" in text, f"{prefix}{name.upper()} missing from docs/settings.md"


@pytest.mark.parametrize(("where", "code"), _blocks("yaml"))
def test_yaml_examples_are_valid_config(where: str, code: str) -> None:
    GatewayConfig.model_validate(yaml.safe_load(code))


@pytest.mark.parametrize(("where", "code"), _blocks("python"))
def test_python_examples_run(where: str, code: str, server: RunningServer, tmp_path: Path) -> None:
    """Each example runs in a fresh interpreter with OPENAI_BASE_URL / OPENAI_API_KEY pointing at a server."""
    code = code.replace("http://127.0.0.1:4100/v1", server.v1).replace('"sk-llmops-…"', repr(server.key))
    code = code.replace("max_tokens=32", "max_tokens=8")
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "OPENAI_BASE_URL": server.v1, "OPENAI_API_KEY": server.key}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{where} failed:\n{done.stderr}"
    assert done.stdout.strip()
