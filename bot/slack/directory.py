"""Expand Slack user groups into their members, and know people's time zones, with a short cache.

Approver and requester lists may name user groups (``S...``); Slack's ``usergroups.users.list``
answers who is in them. Membership changes rarely during an incident, and every click would
otherwise cost a Web API call, so answers are kept for a few minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 300.0


class SlackDirectory:
    """A ``Directory`` backed by the Slack Web API."""

    def __init__(
        self,
        client: AsyncWebClient,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._zones: dict[str, tuple[float, str | None]] = {}

    async def expand(self, ids: Iterable[str]) -> frozenset[str]:
        """User ids stay as they are; each group id is replaced by its members."""
        members: set[str] = set()
        for item in ids:
            if item.startswith("S"):
                members |= await self._group_members(item)
            else:
                members.add(item)
        return frozenset(members)

    async def time_zone(self, user_id: str) -> str | None:
        """The user's time zone from ``users.info`` (cached like groups); ``None`` if unknown."""
        cached = self._zones.get(user_id)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as error:
            logger.warning(
                "no time zone for %s (%s); using UTC", user_id, error.response.get("error")
            )
            return None
        zone = (response.get("user") or {}).get("tz")
        self._zones[user_id] = (now, str(zone) if zone else None)
        return self._zones[user_id][1]

    async def _group_members(self, group_id: str) -> frozenset[str]:
        cached = self._cache.get(group_id)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        response = await self._client.usergroups_users_list(usergroup=group_id)
        members: list[object] = response.get("users") or []
        users = frozenset(str(user) for user in members)
        self._cache[group_id] = (now, users)
        return users
