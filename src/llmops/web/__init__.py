"""Server-rendered web UI: sign-in, quick start, live traces, trace detail, dashboard.

Owns: Jinja2 templates (autoescaped; recorded model/user content is never marked safe), our own
CSS/JS in ``static/``, and the routes that render them. Calls domain services only (the ``Services``
built by ``llmops.app``); never imports stores or ``_sql`` modules, and nothing imports it but ``app``.
htmx and Chart.js are served from the npm ``node_modules`` (see ``assets.py``), never vendored.

Tested end to end in ``tests/e2e`` (a real server and headless Chromium, ``-m browser``).
"""

from llmops.web.pages import mount_web, not_found_page

__all__ = ["mount_web", "not_found_page"]
