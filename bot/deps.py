"""What every domain service works with, wired once by the composition root (``bot.app``)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.config import BotConfig
from bot.outbox import Outbox
from bot.roles import RoleDirectory
from storage.db import Database


@dataclass(frozen=True)
class Deps:
    db: Database
    config: BotConfig
    roles: RoleDirectory
    outbox: Outbox
    clock: Clock


class Service:
    """A domain service: its dependencies as attributes, from one ``Deps``."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.db = deps.db
        self.config = deps.config
        self.roles = deps.roles
        self.outbox = deps.outbox
        self.clock = deps.clock
