"""``llmops keys``: create, list and revoke virtual API keys in the local store (LLMOPS_HOME)."""

from __future__ import annotations

import asyncio

import click

from llmops.core.errors import LlmopsError
from llmops.core.settings import Settings


def _service():  # type: ignore[no-untyped-def]
    from llmops.app import build_project_service

    return build_project_service(Settings())


@click.group()
def keys() -> None:
    """Manage virtual API keys (stored hashed; the secret is shown once)."""


@keys.command("create")
@click.option("--project", default="default", show_default=True, help="Project the key belongs to.")
@click.option("--name", required=True, help="A name for the key (who or what uses it).")
@click.option("--admin", is_flag=True, help="Admin key: may manage keys and protected settings.")
@click.option("--create-project", is_flag=True, help="Create the project if it does not exist.")
@click.option("--rpm", type=click.IntRange(min=1), default=None, help="Requests per minute for this key.")
@click.option("--tpm", type=click.IntRange(min=1), default=None, help="Tokens per minute for this key.")
def create(project: str, name: str, admin: bool, create_project: bool, rpm: int | None, tpm: int | None) -> None:
    """Create a key and print its secret once (with --rpm/--tpm: and its rate limit)."""
    from llmops.app import build_key_limits

    svc = _service()
    limits = build_key_limits(Settings()) if rpm is not None or tpm is not None else None
    try:
        if create_project and project not in {p.name for p in svc.list_projects()}:
            svc.create_project(project)
        project_id = svc.get_project(project).project_id
        created = asyncio.run(svc.create_limited_key(project_id, name, limits, is_admin=admin, rpm=rpm, tpm=tpm))
    except LlmopsError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"key_id: {created.key.key_id}\nproject: {project}\nsecret: {created.secret}")
    if rpm is not None or tpm is not None:
        click.echo(f"rate limit: {rpm or '-'} requests/min, {tpm or '-'} tokens/min")


@keys.command("list")
@click.option("--project", default=None, help="Only keys of this project.")
def list_(project: str | None) -> None:
    """List keys (never their secrets)."""
    svc = _service()
    try:
        items = svc.list_keys(project)
    except LlmopsError as exc:
        raise click.ClickException(exc.message) from exc
    from llmops.app import build_key_limits

    names = {p.project_id: p.name for p in svc.list_projects()}
    rates = build_key_limits(Settings())

    async def limits() -> dict[str, tuple[int | None, int | None]]:
        out: dict[str, tuple[int | None, int | None]] = {}
        for project_id in {k.project_id for k in items}:
            out.update(await rates.key_limits(project_id))
        return out

    by_key = asyncio.run(limits())
    click.echo(f"{'KEY ID':<32} {'PROJECT':<16} {'NAME':<20} {'PREFIX':<18} {'ADMIN':<6} {'RPM':>8} {'TPM':>10} STATUS")
    for k in items:
        status = "active" if k.active else "revoked"
        admin = "yes" if k.is_admin else ""
        rpm, tpm = by_key.get(k.key_id, (None, None))
        click.echo(
            f"{k.key_id:<32} {names.get(k.project_id, '?'):<16} {k.name:<20} {k.display_prefix:<18} {admin:<6} "
            f"{rpm or '-':>8} {tpm or '-':>10} {status}"
        )


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key: it stops working within 5 seconds on every server process."""
    try:
        _service().revoke_key(key_id)
    except LlmopsError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked {key_id}")
