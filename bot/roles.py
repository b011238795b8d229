"""Who holds which role: Slack user ids and user groups from the config (group members cached briefly).

The directory is authoritative for every click; nothing a Slack payload says about roles is trusted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from bot.config import RoleConfig
from bot.errors import UserError
from bot.policy import PEER_ROLE

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0
# Inside an ack the bot may not ask Slack; a group read this recently is good enough there.
STALE_GROUP_SECONDS = 600.0

GroupMembers = Callable[[str], list[str]]


class RoleLookupError(UserError):
    """A user group's members could not be read; the click is refused rather than guessed."""


class RoleLookupDeferred(RoleLookupError):
    """Only Slack knows (the group is not in the cache): decide later, off the ack path."""


class _GroupCache:
    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, frozenset[str]]] = {}
        self.lock = threading.Lock()


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
        clock: Callable[[], float] = time.monotonic,
        cache: _GroupCache | None = None,
        cache_only: bool = False,
    ) -> None:
        self._roles = dict(roles)
        self._group_members = group_members
        self._ttl = ttl
        self._clock = clock
        self._cache = cache or _GroupCache()
        self._cache_only = cache_only

    def cached_only(self) -> RoleDirectory:
        """The same roles answered from what is cached (up to STALE_GROUP_SECONDS old), never from Slack:
        a group not cached raises RoleLookupDeferred."""
        return RoleDirectory(
            self._roles, None, ttl=STALE_GROUP_SECONDS, clock=self._clock, cache=self._cache, cache_only=True
        )

    def _members(self, group: str) -> frozenset[str]:
        with self._cache.lock:
            cached = self._cache.entries.get(group)
            if cached and self._clock() - cached[0] < self._ttl:
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
        with self._cache.lock:
            self._cache.entries[group] = (self._clock(), members)
        return members

    def holds(self, user_id: str, role: str) -> bool:
        if role == PEER_ROLE:
            return True
        config = self._roles.get(role)
        if config is None:
            return False
        return user_id in config.users or any(user_id in self._members(g) for g in config.groups)
