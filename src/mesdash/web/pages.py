"""Page rendering: one Jinja2 environment, the navigation, the shared page context."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from mesdash import __version__
from mesdash.web.vendor import plotly_version

WEB_ROOT = Path(str(resources.files("mesdash") / "web"))
TEMPLATES_DIR = WEB_ROOT / "templates"
STATIC_DIR = WEB_ROOT / "static"


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    hint: str


NAV: tuple[NavItem, ...] = (
    NavItem("/", "Home", "What the warehouse holds"),
    NavItem("/trace", "Lot trace", "Lineage and events of lots"),
    NavItem("/reject-history", "Reject history", "Rejects by reason, station, machine"),
    NavItem("/hold-history", "Hold history", "Holds and releases"),
    NavItem("/resource-history", "Equipment history", "E10 states, OU%, availability"),
    NavItem("/job-query", "Equipment jobs", "Repair and maintenance jobs"),
    NavItem("/mid-section-defect", "Mid-section defect", "Suspect machines and materials"),
    NavItem("/query-tool", "Query tool", "Ad-hoc lot queries"),
    NavItem("/admin", "Admin", "Health, workers, caches"),
)

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _active(path: str) -> str:
    """The nav entry a path belongs to (``/trace/x`` → ``/trace``)."""
    for item in NAV[1:]:
        if path == item.href or path.startswith(item.href + "/"):
            return item.href
    return "/"


def render(request: Request, template: str, **context: Any) -> Response:
    """Render a page with the shell's context: nav, active entry, root path, versions."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    base = {
        "nav": NAV,
        "active": _active(request.url.path[len(root):] or "/"),
        "root": root,
        "version": __version__,
        "plotly_version": plotly_version(),
    }
    return templates.TemplateResponse(request, template, {**base, **context})
