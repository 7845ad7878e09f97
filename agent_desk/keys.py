"""Typed application keys shared by the desk's modules (set by agent_desk/app.py)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk.config import Settings
from agent_desk.desk import Desk

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DESK: web.AppKey[Desk] = web.AppKey("desk")
BACKGROUND = web.AppKey("background", bool)  # False in tests that drive the desk by hand
STOP = web.AppKey("stop", asyncio.Event)  # set when the app shuts down: background loops end
