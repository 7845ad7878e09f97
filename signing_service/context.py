"""Everything the domain needs (settings, database, clock, outbox, sealer), built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from .clock import Clock
from .db import Database
from .settings import Settings


@dataclass
class Context:
    settings: Settings
    db: Database
    clock: Clock
    outbox: Any = None  # outbox.Outbox
    sealer: Any = None  # pades.Sealer
    anchor: date | None = None
    fonts: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
