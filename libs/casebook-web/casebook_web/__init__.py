"""Casebook's browser components (series viewer, teaching deck) as static assets for services to serve or inline."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The files a page needs; anything else in static/ (the demo page) is not an asset to inline.
ASSETS = ("viewer.js", "viewer.css")


def asset_path(name: str) -> Path:
    """The file of one asset on disk, for a service that serves it as a static file.

    Raises KeyError for a name that is not one of ASSETS.
    """
    if name not in ASSETS:
        raise KeyError(f"unknown casebook-web asset {name!r}; known: {', '.join(ASSETS)}")
    return Path(str(files("casebook_web") / "static" / name))


def asset_text(name: str) -> str:
    """The text of one asset, for a page that inlines it (an offline file has nowhere to load it from).

    Raises KeyError for a name that is not one of ASSETS.
    """
    return asset_path(name).read_text(encoding="utf-8")


__all__ = ["ASSETS", "asset_path", "asset_text"]
