"""Who holds which role: Slack user ids and user groups from the config (group members cached briefly).

The directory is authoritative for every click; nothing a Slack payload says about roles is trusted.
Group members are cached where every process of the bot sees them (``bot.group_cache``), so a modal
decided inside its ack, in whichever process, finds the members its button's click already read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from bot.clock import Clock, system_clock
from bot.config import RoleConfig
from bot.errors import UserError
from bot.rules import PEER_ROLE

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0
# Inside an ack the bot may not ask Slack; a group read this recently is good enough there.
STALE_GROUP_SECONDS = 600.0

GroupMembers = Callable[[str], list[str]]


class RoleLookupError(UserError):
    """A user group's members could not be read; the click is refused rather than guessed."""


class RoleLookupDeferred(RoleLookupError):
    """Only Slack knows (the group is not in the cache): decide later, off the ack path."""


class GroupCache(Protocol):
    def get(self, group: str) -> tuple[datetime, frozenset[str]] | None:
        """When the group's members were read, and who they were; None if never."""
        ...

    def put(self, group: str, members: frozenset[str], at: datetime) -> None: ...


class MemoryGroups:
    """A cache of one process (the CLI, tests)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def get(self, group: str) -> tuple[datetime, frozenset[str]] | None:
        with self._lock:
            return self._entries.get(group)

    def put(self, group: str, members: frozenset[str], at: datetime) -> None:
        with self._lock:
            self._entries[group] = (at, members)


class RoleDirectory:
    """Answers "which roles does this user hold?" from the config's role map.

    ``group_members`` reads a user group's member ids (Slack's ``usergroups.users.list`` in production);
    its answers are cached for ``ttl`` seconds so a burst of clicks costs one call per group.
    """

    def __init__(
        self,
        roles: Mapping[str, RoleConfig],
        group_members: GroupMembers | None = None,
        *,
        ttl: float = GROUP_CACHE_SECONDS,
        clock: Clock = system_clock,
        cache: GroupCache | None = None,
        cache_only: bool = False,
    ) -> None:
        self._roles = dict(roles)
        self._group_members = group_members
        self._ttl = ttl
        self._clock = clock
        self._cache = cache or MemoryGroups()
        self._cache_only = cache_only

    def cached_only(self) -> RoleDirectory:
        """The same roles answered from what is cached (up to STALE_GROUP_SECONDS old), never from Slack:
        a group not cached raises RoleLookupDeferred."""
        return RoleDirectory(
            self._roles, None, ttl=STALE_GROUP_SECONDS, clock=self._clock, cache=self._cache, cache_only=True
        )

    def _members(self, group: str) -> frozenset[str]:
        cached = self._cache.get(group)
        if cached and (self._clock() - cached[0]).total_seconds() < self._ttl:
            return cached[1]
        if self._group_members is None:
            if self._cache_only:
                raise RoleLookupDeferred(f"user group {group} is not cached")
            raise RoleLookupError(f"user group {group} cannot be resolved here")
        try:
            members = frozenset(self._group_members(group))
        except Exception as err:
            log.warning("cannot read members of user group %s: %s", group, err)
            raise RoleLookupError(f"cannot read the members of user group {group}") from err
        self._cache.put(group, members, self._clock())
        return members

    def holds(self, user_id: str, role: str) -> bool:
        if role == PEER_ROLE:
            return True
        config = self._roles.get(role)
        if config is None:
            return False
        return user_id in config.users or any(user_id in self._members(g) for g in config.groups)

    def people(self, role: str) -> tuple[list[str], list[str]]:
        """Who to page for ``role``: its users and the members of its groups that can be read, and the
        groups themselves (mentioned, so a page still reaches a rota whose members cannot be read)."""
        config = self._roles.get(role)
        if config is None:
            return [], []
        users = list(config.users)
        for group in config.groups:
            try:
                users += sorted(self._members(group))
            except RoleLookupError as err:
                log.warning("paging %s: %s", role, err)
        return list(dict.fromkeys(users)), list(config.groups)
