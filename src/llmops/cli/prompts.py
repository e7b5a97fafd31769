"""``llmops prompt``: prompts as code. Files (``*.prompt``, see docs/prompts.md) and the registry of a
running server stay in sync both ways: ``push`` sends files (idempotent), ``pull`` writes the registry's
versions back in canonical form (a pull right after a push changes no file).

Talks to the server over HTTP like ``llmops chat`` (``--base-url`` / ``--api-key``, env ``LLMOPS_BASE_URL`` /
``LLMOPS_API_KEY``). Exit codes: 0 done, 1 the server refused or is unreachable, 2 invalid local files.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import click
import httpx
import orjson

from llmops.cli.client import _api_key, _base_url, _fail, _options
from llmops.core.errors import InvalidInputError
from llmops.prompts.files import SUFFIX, canonical, dump_file, parse_file
from llmops.prompts.models import PromptContent
from llmops.prompts.rendering import CompiledPrompt
from llmops.prompts.spec import parse_content


class _Api:
    def __init__(self, base_url: str | None, api_key: str | None) -> None:
        self._client = httpx.Client(
            base_url=_base_url(base_url), headers={"authorization": f"Bearer {_api_key(api_key)}"}, timeout=60
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the server: {exc}") from exc
        if resp.status_code >= 400:
            _fail(resp)
        return resp.json()

    def find(self, path: str) -> Any | None:
        """GET that answers None on 404."""
        try:
            resp = self._client.get(path)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the server: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            _fail(resp)
        return resp.json()


def _bad_files(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _q(name: str) -> str:
    return quote(name, safe="")


def _split_ref(target: str) -> tuple[str, str]:
    name, _, ref = target.partition("@")
    return name, ref or "latest"


@contextmanager
def _local_errors(source: Path) -> Iterator[None]:
    try:
        yield
    except InvalidInputError as exc:
        message = exc.message if exc.message.startswith(f"{source}: ") else f"{source}: {exc.message}"
        _bad_files(message + (f" (field {exc.param})" if exc.param else ""))


def _collect(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob(f"*{SUFFIX}")))
        elif path.is_file():
            files.append(path)
        else:
            _bad_files(f"{path}: no such file or directory")
    return files


def read_prompt_files(paths: tuple[Path, ...]) -> dict[str, tuple[Path, PromptContent]]:
    """name -> (file, content) of every prompt file under ``paths``; duplicate names are an error."""
    found: dict[str, tuple[Path, PromptContent]] = {}
    for path in _collect(paths):
        with _local_errors(path):
            name, content = parse_file(path.read_text(encoding="utf-8"), source=str(path))
            CompiledPrompt(content, name=name, version=None)  # template errors before anything is pushed
        if name in found:
            _bad_files(f"prompt {name!r} is defined twice: {found[name][0]} and {path}")
        found[name] = (path, content)
    return found


@click.group()
def prompt() -> None:
    """Prompts as code: push/pull prompt files, labels, rollback, canary, render."""


@prompt.command("push")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-m", "--message", default=None, help="Commit message of the new versions.")
@click.option("--label", "labels", multiple=True, help="Also point this label at each pushed version.")
@_options
def push(
    paths: tuple[Path, ...], message: str | None, labels: tuple[str, ...], base_url: str | None, api_key: str | None
) -> None:
    """Send prompt files (FILE or DIR, recursively *.prompt) to the registry. Unchanged files change nothing."""
    prompts = read_prompt_files(paths)
    api = _Api(base_url, api_key)
    for name, (path, content) in prompts.items():
        body = {"name": name, **content.to_dict(), "message": message, "labels": list(labels)}
        out = api.call("POST", f"/api/prompts/{_q(name)}/versions", params={"create": "true"}, json=body)
        state = "created" if out["created"] else "unchanged"
        click.echo(f"{name}: v{out['version']} {state} ({path})")


def _existing_files(directory: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(directory.rglob(f"*{SUFFIX}")) if directory.is_dir() else []:
        try:
            name, _ = parse_file(path.read_text(encoding="utf-8"), source=str(path))
        except InvalidInputError:
            continue  # a broken local file: it is not overwritten, the prompt goes to <name>.prompt
        files.setdefault(name, path)
    return files


@prompt.command("pull")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--label", default="latest", show_default=True, help="Which version of each prompt to write.")
@click.option("--name", "names", multiple=True, help="Only these prompts (default: all).")
@_options
def pull(directory: Path, label: str, names: tuple[str, ...], base_url: str | None, api_key: str | None) -> None:
    """Write the registry's prompts into DIRECTORY in canonical form (files that match are not touched)."""
    api = _Api(base_url, api_key)
    listed = [p["name"] for p in api.call("GET", "/api/prompts")["data"]]
    existing = _existing_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in names or listed:
        version = api.find(f"/api/prompts/{_q(name)}/versions/{_q(label)}")
        if version is None:
            click.echo(f"{name}: no {label!r} version, skipped", err=True)
            continue
        text = dump_file(name, parse_content(version["content"], max_template_bytes=2**31))
        path = existing.get(name, directory / f"{name}{SUFFIX}")
        if path.exists() and path.read_text(encoding="utf-8") == text:
            click.echo(f"{name}: v{version['version']} unchanged ({path})")
            continue
        path.write_text(text, encoding="utf-8")
        click.echo(f"{name}: v{version['version']} written ({path})")


@prompt.command("fmt")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Only report files that are not canonical (exit 1 if any).")
def fmt(paths: tuple[Path, ...], check: bool) -> None:
    """Rewrite prompt files in the canonical form `pull` writes (offline)."""
    changed = []
    for path in _collect(paths):
        text = path.read_text(encoding="utf-8")
        with _local_errors(path):
            new = canonical(text, source=str(path))
        if new != text:
            changed.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
            click.echo(f"{'would reformat' if check else 'reformatted'} {path}")
    if check and changed:
        sys.exit(1)


@prompt.command("list")
@_options
def list_(base_url: str | None, api_key: str | None) -> None:
    """List the project's prompts with their latest version and labels."""
    data = _Api(base_url, api_key).call("GET", "/api/prompts")["data"]
    click.echo(f"{'NAME':<32} {'TYPE':<5} {'LATEST':>6}  LABELS")
    for p in data:
        labels = ", ".join(f"{k}=v{v['version']}" + _canary(v) for k, v in p["labels"].items())
        click.echo(f"{p['name']:<32} {p['type']:<5} {'v' + str(p['latest_version']):>6}  {labels}")


def _canary(state: dict[str, Any]) -> str:
    if state.get("canary_version") is None:
        return ""
    return f" (canary v{state['canary_version']} {state['canary_percent']:g}%)"


@prompt.command("show")
@click.argument("target", metavar="NAME[@LABEL|@N]")
@_options
def show(target: str, base_url: str | None, api_key: str | None) -> None:
    """Print one version as a prompt file (version details go to stderr)."""
    name, ref = _split_ref(target)
    v = _Api(base_url, api_key).call("GET", f"/api/prompts/{_q(name)}/versions/{_q(ref)}")
    click.echo(f"# {name} v{v['version']} by {v['author']} at {v['created_at']}: {v['message'] or ''}", err=True)
    click.echo(dump_file(name, parse_content(v["content"], max_template_bytes=2**31)), nl=False)


@prompt.command("diff")
@click.argument("name")
@click.argument("a")
@click.argument("b")
@_options
def diff(name: str, a: str, b: str, base_url: str | None, api_key: str | None) -> None:
    """Unified diff of two versions (numbers or labels), template and configuration."""
    out = _Api(base_url, api_key).call("GET", f"/api/prompts/{_q(name)}/diff", params={"a": a, "b": b})
    click.echo(out["diff"] or f"{name}: {a} and {b} are identical", nl=not out["diff"])


@prompt.command("label")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("label")
@_options
def label(name: str, version: int, label: str, base_url: str | None, api_key: str | None) -> None:
    """Point LABEL of prompt NAME at VERSION (protected labels need an admin key)."""
    out = _Api(base_url, api_key).call("PUT", f"/api/prompts/{_q(name)}/labels/{_q(label)}", json={"version": version})
    click.echo(f"{name}: {label} -> v{out['version']}")


@prompt.command("rollback")
@click.argument("name")
@click.option("--label", required=True, help="The label to move back (e.g. production).")
@_options
def rollback(name: str, label: str, base_url: str | None, api_key: str | None) -> None:
    """Move LABEL back to its previous version (a canary split keeps only its stable version)."""
    out = _Api(base_url, api_key).call("POST", f"/api/prompts/{_q(name)}/labels/{_q(label)}/rollback")
    click.echo(f"{name}: {label} -> v{out['version']}")


@prompt.command("canary")
@click.argument("name")
@click.argument("label")
@click.argument("version", type=int)
@click.argument("percent", type=float)
@_options
def canary(name: str, label: str, version: int, percent: float, base_url: str | None, api_key: str | None) -> None:
    """Send PERCENT % of LABEL's calls to VERSION (sticky per user or session)."""
    path = f"/api/prompts/{_q(name)}/labels/{_q(label)}/canary"
    out = _Api(base_url, api_key).call("PUT", path, json={"version": version, "percent": percent})
    click.echo(f"{name}: {label} -> v{out['version']}{_canary(out)}")


@prompt.command("protect")
@click.argument("name")
@click.argument("labels", nargs=-1)
@_options
def protect(name: str, labels: tuple[str, ...], base_url: str | None, api_key: str | None) -> None:
    """Set which labels of NAME only admin keys may move (admin; no LABELS: none)."""
    path = f"/api/prompts/{_q(name)}/protected-labels"
    out = _Api(base_url, api_key).call("PUT", path, json={"labels": list(labels)})
    click.echo(f"{name}: protected labels: {', '.join(out['protected_labels']) or 'none'}")


@prompt.command("history")
@click.argument("name")
@click.option("--label", default=None, help="Only this label.")
@_options
def history(name: str, label: str | None, base_url: str | None, api_key: str | None) -> None:
    """Label moves, newest first: when, who, label, from -> to."""
    params = {"label": label} if label else {}
    for m in _Api(base_url, api_key).call("GET", f"/api/prompts/{_q(name)}/history", params=params)["data"]:
        before = f"v{m['from']['version']}{_canary(m['from'])}" if m["from"] else "-"
        after = f"v{m['to']['version']}{_canary(m['to'])}"
        click.echo(f"{m['moved_at']}  {m['actor']:<30} {m['label']:<12} {m['action']:<8} {before} -> {after}")


@prompt.command("render")
@click.argument("target", metavar="NAME[@LABEL|@N]")
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", help="A variable (converted to its type).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer.")
@_options
def render(target: str, variables: tuple[str, ...], as_json: bool, base_url: str | None, api_key: str | None) -> None:
    """Render a version with variables, on the server (the same sandbox the gateway uses)."""
    name, ref = _split_ref(target)
    values = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--var")
        values[key] = value
    body = {"ref": ref, "variables": values, "coerce": True}
    out = _Api(base_url, api_key).call("POST", f"/api/prompts/{_q(name)}/render", json=body)
    if as_json:
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    elif "text" in out:
        click.echo(out["text"])
    else:
        click.echo("\n".join(f"[{m['role']}]\n{m['content']}" for m in out["messages"]))
