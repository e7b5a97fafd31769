"""Server-rendered web UI (Jinja2 + htmx + Chart.js from npm). Calls domain services only."""

from llmops.web.pages import mount_web, not_found_page

__all__ = ["mount_web", "not_found_page"]
