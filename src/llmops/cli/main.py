"""``llmops`` entry point: the root group and shared options."""

from __future__ import annotations

import click

from llmops import __version__
from llmops.cli.batch import batch  # batches
from llmops.cli.budget import budget  # budgets + rate limits
from llmops.cli.cache import cache  # response caches
from llmops.cli.client import chat, models
from llmops.cli.costs import costs  # cost reports
from llmops.cli.evals import eval_group  # evals core
from llmops.cli.keys import keys
from llmops.cli.prompts import prompt
from llmops.cli.rag import rag  # RAG core
from llmops.cli.review import review  # review / online evals
from llmops.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmops")
def cli() -> None:
    """llmops: self-hosted LLMOps platform (gateway, traces, prompts, evals, RAG health, cost)."""


cli.add_command(serve)
cli.add_command(cache)  # response caches
cli.add_command(keys)
cli.add_command(models)
cli.add_command(chat)
cli.add_command(prompt)
cli.add_command(rag)  # RAG core
cli.add_command(review)  # review / online evals
cli.add_command(eval_group)  # evals core
cli.add_command(costs)  # cost reports
cli.add_command(batch)  # batches
cli.add_command(budget)  # budgets + rate limits


def main() -> None:
    cli()
