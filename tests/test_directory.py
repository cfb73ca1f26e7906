"""User-group expansion through usergroups.users.list, cached briefly."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.directory import SlackDirectory
from tests.conftest import BOT_TOKEN
from tests.fakes import FakeClock, FakeSlackClient


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


GROUPS = {
    "S0LEADS": ["U0BOB", "U0CAROL"],
    "S0ONCALL": ["U0ALICE", "U0DAN"],
    "S0EMPTY": [],
}


def fake_directory(ttl_seconds: float = 300) -> tuple[SlackDirectory, FakeSlackClient, FakeClock]:
    client, clock = FakeSlackClient(GROUPS), FakeClock()
    directory = SlackDirectory(client, ttl_seconds=ttl_seconds, clock=clock.monotonic)
    return directory, client, clock


@pytest.mark.parametrize(
    ("ids", "expected", "looked_up"),
    [
        ([], set(), []),
        (["U0ALICE"], {"U0ALICE"}, []),
        (["W0ENTERPRISE"], {"W0ENTERPRISE"}, []),
        (["S0LEADS"], {"U0BOB", "U0CAROL"}, ["S0LEADS"]),
        (["S0LEADS", "U0DAN"], {"U0BOB", "U0CAROL", "U0DAN"}, ["S0LEADS"]),
        (["U0BOB", "S0LEADS"], {"U0BOB", "U0CAROL"}, ["S0LEADS"]),
        (
            ["S0LEADS", "S0ONCALL"],
            {"U0BOB", "U0CAROL", "U0ALICE", "U0DAN"},
            ["S0LEADS", "S0ONCALL"],
        ),
        (["S0EMPTY"], set(), ["S0EMPTY"]),
        (["S0EMPTY", "W0ENTERPRISE"], {"W0ENTERPRISE"}, ["S0EMPTY"]),
        (["S0LEADS", "S0LEADS"], {"U0BOB", "U0CAROL"}, ["S0LEADS"]),
    ],
)
async def test_expansion_table(ids, expected, looked_up):
    """User ids (U, W) stay, each group id (S) becomes its members and is the only one looked up."""
    directory, client, _ = fake_directory()
    assert await directory.expand(ids) == expected
    assert [call["usergroup"] for call in client.calls_to("usergroups.users.list")] == looked_up


@pytest.mark.parametrize(
    ("elapsed", "lookups"),
    [(0.0, 1), (299.9, 1), (300.0, 2), (301.0, 2), (10_000.0, 2)],
)
async def test_cache_lasts_exactly_the_ttl(elapsed, lookups):
    """A group's members are reused for less than the TTL and looked up again from then on."""
    directory, client, clock = fake_directory(ttl_seconds=300)
    await directory.expand(["S0LEADS"])
    clock.advance(elapsed)
    await directory.expand(["S0LEADS"])
    assert len(client.calls_to("usergroups.users.list")) == lookups


async def test_membership_change_shows_after_the_ttl():
    """Someone added to a group is an approver once the cached answer has expired."""
    directory, client, clock = fake_directory(ttl_seconds=60)
    assert "U0ERIN" not in await directory.expand(["S0LEADS"])
    client.groups["S0LEADS"].append("U0ERIN")
    assert "U0ERIN" not in await directory.expand(["S0LEADS"])
    clock.advance(60)
    assert "U0ERIN" in await directory.expand(["S0LEADS"])


async def test_each_group_is_cached_on_its_own():
    """Looking up one group does not count as having looked up another."""
    directory, client, _ = fake_directory()
    await directory.expand(["S0LEADS"])
    await directory.expand(["S0ONCALL", "S0LEADS"])
    assert [call["usergroup"] for call in client.calls_to("usergroups.users.list")] == [
        "S0LEADS",
        "S0ONCALL",
    ]
