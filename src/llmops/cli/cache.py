"""``llmops cache eval``: hit rate and wrong-hit rate of the semantic cache per threshold, with and without the guard.

Runs locally on the embedded MiniLM embedder (no server needed) over the labelled pairs shipped in
``llmops/gateway/data/semantic_cache_pairs.jsonl`` or your own file (``--pairs``, JSON lines with ``a``, ``b`` and
``same``). Pick a route's ``cache.semantic.threshold`` from the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

DEFAULT_THRESHOLDS = "0.8,0.82,0.84,0.86,0.88,0.9,0.92,0.94,0.96"


def _thresholds(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"comma-separated numbers expected: {exc}") from exc
    if not values or not all(0 < v <= 1 for v in values):
        raise click.BadParameter("thresholds must be in (0, 1]")
    return sorted(set(values))


def _pairs(path: Path | None) -> list[dict[str, Any]]:
    from llmops.gateway.semantic_cache import load_pairs

    if path is None:
        return load_pairs()
    try:
        pairs = [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, orjson.JSONDecodeError) as exc:
        raise click.ClickException(f"cannot read {str(path)!r}: {exc}") from exc
    bad = next((i for i, p in enumerate(pairs, 1) if not {"a", "b", "same"} <= set(p)), None)
    if bad is not None:
        raise click.ClickException(f"{path}: line {bad} needs keys a, b, same")
    return pairs


@click.group("cache")
def cache() -> None:
    """Response caches (exact and semantic)."""


@cache.command("eval")
@click.option("--thresholds", default=DEFAULT_THRESHOLDS, show_default=True, help="Cosine thresholds to try.")
@click.option("--pairs", "pairs_path", type=click.Path(path_type=Path, dir_okay=False), help="Your own JSONL pairs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def eval_command(thresholds: str, pairs_path: Path | None, as_json: bool) -> None:
    """Hit rate (paraphrases served) and wrong-hit rate (wrong hits / hits) per threshold."""
    from llmops.gateway.providers.embed import OnnxEmbedder
    from llmops.gateway.semantic_cache import DEFAULT_THRESHOLD, evaluate_scored, score_pairs

    values = _thresholds(thresholds)
    pairs = _pairs(pairs_path)
    embedder = OnnxEmbedder(threads=2)
    scored = score_pairs(pairs, lambda texts: embedder.embed(texts)[0])
    rows = evaluate_scored(scored, values, use_guard=False) + evaluate_scored(scored, values, use_guard=True)
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    same = sum(1 for p in pairs if p["same"])
    table = Table(
        title=f"{len(pairs)} pairs: {same} paraphrases, {len(pairs) - same} meaning changes",
        caption=f"* the default threshold ({DEFAULT_THRESHOLD}) with the guard",
    )
    for col in ("threshold", "guard", "hit rate", "wrong hits", "wrong-hit rate", "false-hit rate"):
        table.add_column(col, justify="right")
    for r in rows:
        mark = "*" if r["threshold"] == DEFAULT_THRESHOLD and r["guard"] else ""
        table.add_row(
            f"{r['threshold']:.2f}{mark}",
            "on" if r["guard"] else "off",
            f"{r['hit_rate']:.1%}",
            str(r["wrong_hits"]),
            f"{r['wrong_hit_rate']:.1%}",
            f"{r['false_hit_rate']:.1%}",
        )
    Console().print(table)
