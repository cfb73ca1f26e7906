"""User-group expansion through usergroups.users.list, cached briefly."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.directory import SlackDirectory
from tests.conftest import BOT_TOKEN


async def test_groups_expand_and_are_cached(slack):
    """Groups become their members, users stay, and a second lookup within the TTL is free."""
    now = [0.0]
    directory = SlackDirectory(
        AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url),
        ttl_seconds=300,
        clock=lambda: now[0],
    )
    members = await directory.expand(["S0ONCALL", "U0REQUESTER"])
    assert members == {"U0APPROVER1", "U0APPROVER2", "U0REQUESTER"}
    await directory.expand(["S0ONCALL"])
    assert len(slack.calls_to("usergroups.users.list")) == 1
    now[0] = 301
    await directory.expand(["S0ONCALL"])
    assert len(slack.calls_to("usergroups.users.list")) == 2
