"""Expand Slack user groups into their members, with a short cache.

Approver and requester lists may name user groups (``S...``); Slack's ``usergroups.users.list``
answers who is in them. Membership changes rarely during an incident, and every click would
otherwise cost a Web API call, so answers are kept for a few minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from slack_sdk.web.async_client import AsyncWebClient

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

    async def expand(self, ids: Iterable[str]) -> frozenset[str]:
        """User ids stay as they are; each group id is replaced by its members."""
        members: set[str] = set()
        for item in ids:
            if item.startswith("S"):
                members |= await self._group_members(item)
            else:
                members.add(item)
        return frozenset(members)

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
