"""``llmops serve``: one process serving the gateway (/v1), the REST API (/api) and the web UI (/)."""

from __future__ import annotations

from pathlib import Path

import click

from llmops.core.errors import LlmopsError
from llmops.core.settings import Settings


def banner(settings: Settings, secret: str | None, saved: Path | None) -> str:
    url = f"http://{settings.host}:{settings.port}"
    lines = ["", f"  llmops is starting on {url}", f"  OpenAI-compatible API: {url}/v1   (models: local, local-embed)"]
    if secret:
        lines += ["", "  Admin API key (shown once; also saved to " + str(saved) + "):", f"    {secret}"]
    elif saved and saved.exists():
        lines += ["", f"  Admin API key: {saved.read_text().strip()}   (from {saved})"]
    lines += ["", f"  Open {url}/ and sign in with the key.", ""]
    return "\n".join(lines)


@click.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1, env LLMOPS_HOST).")
@click.option("--port", type=int, default=None, help="Port (default 4100, env LLMOPS_PORT).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="llmops.yaml with models, routing and prices (env LLMOPS_CONFIG).",
)
def serve(host: str | None, port: int | None, config_path: Path | None) -> None:
    """Run the platform: gateway, REST API and web UI in one process."""
    import uvicorn

    from llmops.app import build_services, create_app, save_bootstrap_key

    overrides = {k: v for k, v in {"host": host, "port": port, "config": config_path}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        services = build_services(settings)
    except LlmopsError as exc:
        raise click.ClickException(exc.message) from exc
    saved = settings.home / "admin_key"
    secret = None
    if services.bootstrap_key is not None:
        secret = services.bootstrap_key.secret
        saved = save_bootstrap_key(settings.home, services.bootstrap_key)
    click.echo(banner(settings, secret, saved))
    app = create_app(settings, services=services)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
