"""`llmops prompt` against a real server: push is idempotent, pull writes canonical files (a pull right after a
push changes nothing), diff/label/rollback/render/show/list/history, and local file errors exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from llmops.cli.main import cli
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

GREET = """---
name: greet
type: text
model: local
params:
  max_tokens: 8
variables:
  who: string
  punct:
    type: string
    default: '!'
tags:
- demo
---
Hello {{ who }}{{ punct }}
"""
SUPPORT = """---
name: support
type: chat
model: local
variables:
  customer: string
---
--- system ---
You help customers.

--- user ---
I am {{ customer }}.
"""


def _said(result: Result) -> str:
    return str(result.output) + str(getattr(result, "stderr", ""))


@pytest.fixture
def server(fake_upstream: FakeUpstream, server_factory: Callable[..., RunningServer]) -> RunningServer:
    """`local` redefined on the fake upstream: loading llama.cpp swaps sys.stdout process-wide for a moment
    (llama_cpp's suppress_stdout_stderr), which would garble CliRunner's captured output."""
    return server_factory(
        fake_config(fake_upstream, {"name": "local", "deployments": [openai_dep(fake_upstream, "m")]})
    )


@pytest.fixture
def prompt_cli(server: RunningServer):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, ["prompt", *args, "--base-url", server.base_url, "--api-key", server.key])
        if ok:
            assert result.exit_code == 0, _said(result) + repr(result.exception)
        return result

    return run


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_push_pull_round_trip(prompt_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """push is idempotent; pull into the same tree rewrites nothing; pull elsewhere reproduces the files."""
    repo = tmp_path / "repo"
    _write(repo, {"greet.prompt": GREET, "team/support.prompt": SUPPORT})
    first = prompt_cli("push", str(repo), "-m", "initial")
    assert "greet: v1 created" in first.output and "support: v1 created" in first.output
    assert "unchanged" in prompt_cli("push", str(repo)).output
    pulled = prompt_cli("pull", str(repo))
    assert pulled.output.count("unchanged") == 2
    assert (repo / "greet.prompt").read_text() == GREET and (repo / "team/support.prompt").read_text() == SUPPORT
    elsewhere = tmp_path / "clone"
    prompt_cli("pull", str(elsewhere))
    assert (elsewhere / "greet.prompt").read_text() == GREET
    assert (elsewhere / "support.prompt").read_text() == SUPPORT


def test_edit_diff_label_render_rollback(prompt_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A second version, its diff, labels, render with typed variables, rollback, show, history, list, canary."""
    path = tmp_path / "greet.prompt"
    path.write_text(GREET)
    prompt_cli("push", str(path))
    path.write_text(GREET.replace("Hello", "Howdy"))
    assert "greet: v2 created" in prompt_cli("push", str(path), "-m", "howdy").output
    diff = prompt_cli("diff", "greet", "1", "2").output
    assert "-Hello {{ who }}{{ punct }}" in diff and "+Howdy {{ who }}{{ punct }}" in diff
    assert "greet: production -> v1" in prompt_cli("label", "greet", "1", "production").output
    prompt_cli("label", "greet", "2", "production")
    assert prompt_cli("render", "greet@production", "--var", "who=Ann").output == "Howdy Ann!\n"
    assert prompt_cli("render", "greet@1", "--var", "who=Ann", "--var", "punct=?").output == "Hello Ann?\n"
    assert "greet: production -> v1" in prompt_cli("rollback", "greet", "--label", "production").output
    shown = prompt_cli("show", "greet@production")
    assert shown.stdout == GREET
    history = prompt_cli("history", "greet", "--label", "production").output.splitlines()
    assert "rollback" in history[0] and "v2 -> v1" in history[0]
    listing = prompt_cli("list").output
    assert "greet" in listing and "production=v1" in listing and "latest=v2" in listing
    assert "canary v2 10%" in prompt_cli("canary", "greet", "production", "2", "10").output
    assert "protected labels: production, staging" in prompt_cli("protect", "greet", "production", "staging").output


def test_server_errors_exit_1_with_the_message(prompt_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The server's refusals exit 1 and print its message."""
    (tmp_path / "greet.prompt").write_text(GREET)
    prompt_cli("push", str(tmp_path))
    result = prompt_cli("render", "greet@latest", ok=False)
    assert result.exit_code == 1 and "needs variable 'who'" in _said(result)
    result = prompt_cli("label", "greet", "9", "staging", ok=False)
    assert result.exit_code == 1 and "no version 9" in _said(result)


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"a.prompt": GREET, "b/a.prompt": GREET}, "defined twice"),
        ({"bad.prompt": GREET.replace("{{ who }}", "{{ who ")}, "bad.prompt: template syntax error"),
        ({"bad.prompt": "no front matter"}, "starts with a `---` line"),
    ],
)
def test_bad_local_files_exit_2_before_pushing(
    prompt_cli, tmp_path: Path, files: dict[str, str], fragment: str
) -> None:  # type: ignore[no-untyped-def]
    """Duplicate names, template errors and malformed files exit 2 naming the file; nothing is pushed."""
    _write(tmp_path, files)
    result = prompt_cli("push", str(tmp_path), ok=False)
    assert result.exit_code == 2 and fragment in _said(result)
    assert prompt_cli("list").output.count("\n") == 1  # the header only: nothing was pushed


def test_fmt_is_offline_and_idempotent(tmp_path: Path) -> None:
    """`fmt --check` flags a non-canonical file, `fmt` rewrites it once, then it is canonical."""
    path = tmp_path / "x.prompt"
    path.write_text("---\nvariables: {who: string}\nname: x\n---\nHi {{ who }}\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["prompt", "fmt", "--check", str(path)]).exit_code == 1
    assert runner.invoke(cli, ["prompt", "fmt", str(path)]).exit_code == 0
    assert path.read_text() == "---\nname: x\ntype: text\nvariables:\n  who: string\n---\nHi {{ who }}\n"
    assert runner.invoke(cli, ["prompt", "fmt", "--check", str(path)]).exit_code == 0
