"""Where the web UI finds htmx and Chart.js: the npm install, never a copy in the repository."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llmops.web.assets import ASSETS_ENV, Assets, find_node_modules


def test_assets_are_served_from_the_repositorys_node_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configuration the package finds the repository's node_modules and fingerprints each file."""
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    assets = Assets.discover()
    assert assets.node_modules is not None and assets.node_modules.name == "node_modules"
    assert (assets.url("vendor/htmx.min.js") or "").startswith("/static/vendor/htmx.min.js?v=")
    assert assets.url("vendor/chart.umd.js") is not None
    assert assets.url("app.css") is not None and assets.url("app.js") is not None


def test_missing_node_modules_is_a_warning_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A configured directory without the packages leaves only our own assets, and says so in the log."""
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="llmops.web"):
        assets = Assets.discover()
    assert assets.url("vendor/htmx.min.js") is None and assets.url("vendor/chart.umd.js") is None
    assert assets.url("app.js") is not None
    assert any("chart.js" in r.getMessage() for r in caplog.records)
    assert find_node_modules(env={}, start=[tmp_path]) is None  # nothing above a tmp dir
