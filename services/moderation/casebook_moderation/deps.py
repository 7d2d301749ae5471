"""Typed dependencies of the moderation routes: the service's own settings beside the platform's aliases.

A route names what it uses (`settings: SettingsDep`, `rt: RuntimeDep`) instead of reaching into
`request.app.state`, so its signature says what it depends on and a test can override it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from casebook_moderation.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was built with (`create_app`)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]

__all__ = ["SettingsDep", "get_settings"]
