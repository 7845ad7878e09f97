"""Typed application keys shared by the desk's modules."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk.config import Settings
from agent_desk.desk import Desk

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DESK: web.AppKey[Desk] = web.AppKey("desk")
