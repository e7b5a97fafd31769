"""``llmops review``: annotation queues, judge calibration and online rules of a running server.

Talks to the server like ``llmops prompt`` (``--base-url`` / ``--api-key``). Exit codes: 0 done, 1 the server
refused (its error message and code are printed), 2 bad usage.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from llmops.cli.client import _options
from llmops.cli.prompts import _Api


def _console() -> Console:
    return Console(width=120, highlight=False)


@click.group()
def review() -> None:
    """Human review queues, judge calibration (Cohen's κ) and online evaluation rules."""


@review.command("queues")
@_options
def queues(base_url: str | None, api_key: str | None) -> None:
    """List annotation queues with their pending/done/skipped counts."""
    data = _Api(base_url, api_key).call("GET", "/api/review-queues")["data"]
    table = Table("queue", "id", "configs", "pending", "done", "skipped")
    for q in data:
        c = q["counts"]
        table.add_row(
            q["name"], q["queue_id"], ", ".join(q["configs"]), *(str(c[k]) for k in ("pending", "done", "skipped"))
        )
    _console().print(table)


@review.command("calibration")
@click.option("--judge", required=True, help="The judge's score name.")
@click.option("--config", "config", required=True, help="The human score config.")
@_options
def calibration(judge: str, config: str, base_url: str | None, api_key: str | None) -> None:
    """A judge's agreement with human labels: κ, agreement, n and the confusion matrix."""
    r: dict[str, Any] = _Api(base_url, api_key).call(
        "GET", "/api/calibration", params={"judge": judge, "config": config}
    )
    kappa = "—" if r["kappa"] is None else f"{r['kappa']:.3f}"
    click.echo(f"judge {judge!r} vs {config!r}: n={r['n']} kappa={kappa} agreement={r['agreement']:.1%}")
    weighted = r["weighted_kappa"]
    if weighted["linear"] is not None:
        click.echo(f"weighted kappa: linear={weighted['linear']:.3f} quadratic={weighted['quadratic']:.3f}")
    table = Table("human \\ judge", *r["categories"])
    for category, row in zip(r["categories"], r["matrix"], strict=True):
        table.add_row(category, *(str(n) for n in row))
    _console().print(table)


@review.command("rules")
@_options
def rules(base_url: str | None, api_key: str | None) -> None:
    """List online evaluation rules with scored/failed/dropped counters."""
    body = _Api(base_url, api_key).call("GET", "/api/online-rules")
    table = Table("rule", "id", "enabled", "sample", "scored", "failed", "dropped")
    for r in body["data"]:
        table.add_row(
            r["name"],
            r["rule_id"],
            str(r["enabled"]),
            f"{r['sample_rate']:g}",
            str(r["scored"]),
            str(r["failed"]),
            str(r["dropped"]),
        )
    _console().print(table)
    click.echo(f"worker backlog: {body['worker']['backlog']}, dropped: {body['worker']['dropped']}")
