"""``llmops costs``: spend of the key's project from a running server (``GET /api/costs``, ``/api/costs/what-if``).

Server and key are found like ``llmops chat`` (``--base-url`` / ``--api-key``, env, the saved admin key).
"""

from __future__ import annotations

import time
from typing import Any

import click
import httpx

from llmops.cli.client import _api_key, _base_url, _fail, _options


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.6f}"


def _get(base_url: str | None, api_key: str | None, path: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        resp = httpx.get(
            f"{_base_url(base_url)}{path}",
            params=params,
            headers={"authorization": f"Bearer {_api_key(api_key)}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc
    if resp.status_code != 200:
        _fail(resp)
    return resp.json()  # type: ignore[no-any-return]


@click.command()
@click.option(
    "--by",
    "group_by",
    type=click.Choice(["model", "key", "user", "prompt", "tag", "project"]),
    default="model",
    show_default=True,
)
@click.option("--days", type=click.IntRange(1, 2000), default=7, show_default=True, help="Days back from now.")
@click.option("--what-if", "what_if", default=None, metavar="MODEL", help="Also price the traffic with MODEL.")
@_options
def costs(group_by: str, days: int, what_if: str | None, base_url: str | None, api_key: str | None) -> None:
    """Spend, cache savings and (with --what-if) the same traffic priced on another model."""
    params = {"group_by": group_by, "interval": "day", "start": str(int(time.time()) - days * 86_400)}
    report = _get(base_url, api_key, "/api/costs", params)
    t = report["totals"]
    click.echo(f"{report['start']} -> {report['end']}")
    click.echo(f"{group_by:<32} {'requests':>9} {'tokens in':>11} {'tokens out':>11} {'spend':>14} {'saved':>12}")
    for g in report["groups"]:
        name = "(none)" if g["group"] is None else str(g["group"])[:32]
        click.echo(
            f"{name:<32} {g['requests']:>9} {g['input_tokens']:>11} {g['output_tokens']:>11} "
            f"{_usd(g['cost_usd']):>14} {_usd(g['saved_usd']):>12}"
        )
    click.echo(
        f"{'total':<32} {t['requests']:>9} {t['input_tokens']:>11} {t['output_tokens']:>11} "
        f"{_usd(t['cost_usd']):>14} {_usd(t['saved_usd']):>12}"
    )
    if t["unpriced_requests"]:
        click.echo(f"{t['unpriced_requests']} request(s) have no known price (not in the spend)")
    if t["cache_hit_rate"] is not None:
        click.echo(f"cache hit rate {t['cache_hit_rate'] * 100:.1f}% ({t['cache_hits']} hits)")
    if what_if:
        params.pop("interval")
        w = _get(base_url, api_key, "/api/costs/what-if", {**params, "model": what_if})["totals"]
        ratio = f" ({w['ratio']:.2f}x)" if w["ratio"] else ""
        click.echo(
            f"what if {what_if}: {_usd(w['what_if_usd'])} instead of {_usd(w['actual_usd'])}{ratio} "
            f"for {w['requests']} chat request(s)"
        )
