"""`llmops cache eval` on the real embedder: JSON rows per threshold, guard off and on; precise input errors."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from llmops.cli.main import cli

PAIRS = [
    {"a": "Why is the sky blue?", "b": "What makes the sky look blue?", "same": True},
    {"a": "Can dogs eat chocolate?", "b": "Why can't dogs eat chocolate?", "same": False},
    {"a": "What is 15 percent of 80?", "b": "What is 20 percent of 80?", "same": False},
]


def test_eval_prints_hit_and_wrong_hit_rates_per_threshold(tmp_path: Path) -> None:
    """Two thresholds x guard off/on = four rows; with the guard the negation and number changes are never hits,
    while the paraphrase is one at 0.8."""
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(orjson.dumps(p).decode() for p in PAIRS))
    result = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(path), "--thresholds", "0.8,0.99", "--json"])
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.output.splitlines()]
    assert [(r["threshold"], r["guard"]) for r in rows] == [(0.8, False), (0.99, False), (0.8, True), (0.99, True)]
    guarded = rows[2]
    assert guarded["wrong_hits"] == 0 and guarded["hit_rate"] == 1.0 and guarded["pairs"] == 3
    assert rows[3]["hit_rate"] == 0.0


def test_eval_table_marks_the_default(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(orjson.dumps(p).decode() for p in PAIRS))
    result = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(path), "--thresholds", "0.9"])
    assert result.exit_code == 0, result.output
    assert "0.90*" in result.output and "3 pairs: 1 paraphrases" in result.output


def test_eval_refuses_bad_input(tmp_path: Path) -> None:
    bad = CliRunner().invoke(cli, ["cache", "eval", "--thresholds", "0.5,abc"])
    assert bad.exit_code == 2 and "comma-separated numbers" in bad.output
    out_of_range = CliRunner().invoke(cli, ["cache", "eval", "--thresholds", "1.5"])
    assert out_of_range.exit_code == 2 and "(0, 1]" in out_of_range.output
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": "x"}\n')
    missing = CliRunner().invoke(cli, ["cache", "eval", "--pairs", str(path)])
    assert missing.exit_code == 1 and "line 1 needs keys a, b, same" in missing.output
