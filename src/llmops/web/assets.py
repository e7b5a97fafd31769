"""Static files: our own CSS/JS from the package, third-party front-end code from ``node_modules``.

Third-party code is never copied into the repository: htmx and Chart.js are served straight from the
npm install (``package.json`` at the repository root). The directory is ``$LLMOPS_WEB_ASSETS`` when set
(a ``node_modules`` directory), else the first ``node_modules`` found walking up from this package or the
working directory. Without it pages still render: polling stops and the dashboard shows tables only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException

log = logging.getLogger("llmops.web")

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_ENV = "LLMOPS_WEB_ASSETS"
# The only files served from node_modules: name in the URL -> path inside node_modules.
VENDOR_FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "chart.umd.js": "chart.js/dist/chart.umd.js",
    "chart.umd.js.map": "chart.js/dist/chart.umd.js.map",
}
_MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".map": "application/json", ".svg": "image/svg+xml"}


def find_node_modules(*, env: Mapping[str, str] | None = None, start: list[Path] | None = None) -> Path | None:
    configured = (os.environ if env is None else env).get(ASSETS_ENV)
    if configured:
        path = Path(configured)
        return path if path.is_dir() else None
    for origin in start if start is not None else [Path(__file__).resolve().parent, Path.cwd().resolve()]:
        for directory in [origin, *origin.parents]:
            candidate = directory / "node_modules"
            if (candidate / VENDOR_FILES["htmx.min.js"]).is_file():
                return candidate
    return None


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


@dataclass
class Assets:
    """Which assets exist, and their cache-busting URLs (``?v=<content hash>``)."""

    node_modules: Path | None
    urls: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def discover(cls) -> Assets:
        assets = cls(find_node_modules())
        for path in sorted(STATIC_DIR.iterdir()):
            if path.is_file():
                assets._add(path.name, path, f"/static/{path.name}")
        if assets.node_modules is None:
            log.warning(
                "web UI: node_modules with htmx and chart.js not found (run `npm ci` or set %s); "
                "pages render without live updates and charts",
                ASSETS_ENV,
            )
        else:
            for name, rel in VENDOR_FILES.items():
                path = assets.node_modules / rel
                if path.is_file():
                    assets._add("vendor/" + name, path, f"/static/vendor/{name}")
                elif not name.endswith(".map"):
                    log.warning("web UI: %s missing under %s", rel, assets.node_modules)
        return assets

    def _add(self, key: str, path: Path, url: str) -> None:
        self.files[key] = path
        self.urls[key] = f"{url}?v={_fingerprint(path)}"

    def url(self, key: str) -> str | None:
        return self.urls.get(key)


def mount_assets(app: FastAPI, assets: Assets) -> None:
    def serve(key: str) -> Response:
        path = assets.files.get(key)
        if path is None:
            raise HTTPException(404)
        headers = {"cache-control": "public, max-age=86400", "x-content-type-options": "nosniff"}
        return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix), headers=headers)

    @app.get("/static/vendor/{name}", include_in_schema=False)
    async def vendor(name: str) -> Response:
        return serve("vendor/" + name)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return serve(name)
