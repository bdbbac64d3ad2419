"""Third-party browser files served from installed Python packages (no CDN)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path


@lru_cache(maxsize=1)
def plotly_js_path() -> Path:
    """``plotly.min.js`` bundled in the installed ``plotly`` package."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise FileNotFoundError("plotly.min.js is missing from the installed plotly package")
    return path


@lru_cache(maxsize=1)
def plotly_version() -> str:
    from importlib.metadata import version

    return version("plotly")
