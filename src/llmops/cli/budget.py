"""``llmops budget list|set|delete`` and ``llmops budget rate-limit``: budgets and rate limits of the key's project,
on a running server (``/api/budgets``, ``/api/rate-limits``). Server and key are found like ``llmops chat``."""

from __future__ import annotations

from typing import Any

import click
import httpx

from llmops.cli.client import _api_key, _base_url, _fail, _options


def _call(method: str, base_url: str | None, api_key: str | None, path: str, body: Any = None) -> Any:
    try:
        resp = httpx.request(
            method,
            f"{_base_url(base_url)}{path}",
            json=body,
            headers={"authorization": f"Bearer {_api_key(api_key)}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc
    if resp.status_code >= 300:
        _fail(resp)
    return resp.json()


def _row(b: dict[str, Any]) -> str:
    who = b["scope"] + (f":{b['subject']}" if b.get("subject") else "")
    return (
        f"{b['budget_id']:<30} {b['name'][:24]:<24} {who[:28]:<28} {b['period']:<6} {b['mode']:<5} "
        f"${b['limit_usd']:>11,.4f} ${b['spent_usd']:>11,.4f} ${b['reserved_usd']:>9,.4f}"
    )


@click.group()
def budget() -> None:
    """Budgets (USD per project, key, end user or tag) and rate limits."""


@budget.command("list")
@_options
def budget_list(base_url: str | None, api_key: str | None) -> None:
    """The project's budgets with their spend and in-flight reservations, then its rate limits."""
    data = _call("GET", base_url, api_key, "/api/budgets")["data"]
    click.echo(
        f"{'budget_id':<30} {'name':<24} {'applies to':<28} {'period':<6} {'mode':<5} "
        f"{'limit':>12} {'spent':>12} {'reserved':>10}"
    )
    for b in data:
        click.echo(_row(b))
    limits = _call("GET", base_url, api_key, "/api/rate-limits")["data"]
    if limits:
        click.echo("")
        click.echo(f"{'limit_id':<30} {'applies to':<40} {'rpm':>10} {'tpm':>12}")
        for r in limits:
            click.echo(
                f"{r['limit_id']:<30} {r['scope'] + ':' + r['subject']:<40} {r['rpm'] or '-':>10} {r['tpm'] or '-':>12}"
            )


@budget.command("set")
@click.argument("name")
@click.option("--limit", "limit_usd", type=click.FloatRange(0, 1e9), required=True, help="USD per period.")
@click.option("--period", type=click.Choice(["day", "month", "total"]), default="month", show_default=True)
@click.option("--key", "key_id", default=None, help="Hold only this key id.")
@click.option("--user", default=None, help="Hold only this end user.")
@click.option("--tag", default=None, help="Hold only calls with this tag.")
@click.option("--soft", is_flag=True, help="Warn (x-llmops-budget-warning) instead of refusing.")
@click.option("--exempt-admin", is_flag=True, help="Let admin keys through (off: admin keys are held too).")
@_options
def budget_set(
    name: str,
    limit_usd: float,
    period: str,
    key_id: str | None,
    user: str | None,
    tag: str | None,
    soft: bool,
    exempt_admin: bool,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Create budget NAME (the whole project unless --key, --user or --tag)."""
    chosen = [(s, v) for s, v in (("key", key_id), ("user", user), ("tag", tag)) if v]
    if len(chosen) > 1:
        raise click.UsageError("give at most one of --key, --user, --tag")
    scope, subject = chosen[0] if chosen else ("project", None)
    body = {
        "name": name,
        "scope": scope,
        "subject": subject,
        "period": period,
        "limit_usd": limit_usd,
        "mode": "soft" if soft else "hard",
        "exempt_admin": exempt_admin,
    }
    made = _call("POST", base_url, api_key, "/api/budgets", body)
    click.echo(_row(made))


@budget.command("delete")
@click.argument("budget_id")
@_options
def budget_delete(budget_id: str, base_url: str | None, api_key: str | None) -> None:
    """Delete a budget."""
    _call("DELETE", base_url, api_key, f"/api/budgets/{budget_id}")
    click.echo(f"deleted {budget_id}")


@budget.command("rate-limit")
@click.option("--key", "key_id", default=None, help="Key id to limit.")
@click.option("--user", default=None, help="End user to limit ('*': every end user of the project).")
@click.option("--rpm", type=click.IntRange(1), default=None, help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(1), default=None, help="Tokens per minute.")
@_options
def budget_rate_limit(
    key_id: str | None, user: str | None, rpm: int | None, tpm: int | None, base_url: str | None, api_key: str | None
) -> None:
    """Set the rate limit of a key or an end user (replaces the previous one)."""
    if bool(key_id) == bool(user):
        raise click.UsageError("give exactly one of --key, --user")
    body = {"scope": "key" if key_id else "user", "subject": key_id or user, "rpm": rpm, "tpm": tpm}
    r = _call("PUT", base_url, api_key, "/api/rate-limits", body)
    click.echo(f"{r['limit_id']} {r['scope']}:{r['subject']} rpm={r['rpm'] or '-'} tpm={r['tpm'] or '-'}")
