"""The notifier renders the freshest stored copy of a request, never the one it was handed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.lifecycle import Approval, Policy, Request, RequestState
from bot.slack.notifier import SlackNotifier
from tests.fakes import START, FakeSlackClient, make_request


def pending() -> Request:
    return make_request(card_ts="1700000000.000100", version=2)


def newer(request: Request, state: RequestState) -> Request:
    """The same request as another click left it in the store: decided by bob, one version on."""
    return replace(
        request,
        state=state,
        approvals=() if state is RequestState.CANCELLED else (Approval("U0BOB", START),),
        decided_by="U0BOB",
        decided_at=START + timedelta(minutes=1),
        version=request.version + 1,
    )


def notifier_over(stored: Request | None) -> tuple[SlackNotifier, FakeSlackClient]:
    async def load(request_id: str) -> Request | None:
        assert stored is None or request_id == stored.id
        return stored

    client = FakeSlackClient()
    return SlackNotifier(client, Policy(), load), client


def header(arguments: dict) -> str:
    return arguments["blocks"][0]["text"]["text"]


def has_buttons(arguments: dict) -> bool:
    return any(block["type"] == "actions" for block in arguments["blocks"])


@pytest.mark.parametrize(
    ("handed", "stored_state", "expected_header", "expected_line"),
    [
        (
            RequestState.PENDING,
            RequestState.EXECUTING,
            "Start 1 dump task: approved, starting…",
            "Approved by <@U0BOB>, starting…",
        ),
        (
            RequestState.PENDING,
            RequestState.CANCELLED,
            "Start 1 dump task: cancelled",
            "Cancelled by <@U0BOB>",
        ),
        (
            RequestState.EXECUTING,
            RequestState.SUCCEEDED,
            "Start 1 dump task: succeeded",
            "Approved by <@U0BOB>.",
        ),
    ],
)
async def test_card_is_rendered_from_the_newer_stored_request(
    handed, stored_state, expected_header, expected_line
):
    """A late update handed an old copy shows the state the store holds now."""
    old = pending() if handed is RequestState.PENDING else newer(pending(), handed)
    notifier, client = notifier_over(newer(old, stored_state))
    await notifier.request_changed(old)
    [update] = client.calls_to("chat.update")
    assert (update["channel"], update["ts"]) == ("C0INCIDENT", old.card_ts)
    assert header(update) == expected_header
    assert expected_line in update["text"]
    assert not has_buttons(update)
    assert client.calls_to("chat.postMessage") == []


async def test_handed_copy_is_used_when_the_store_has_none():
    """If the store cannot find the request, the copy handed in is rendered."""
    notifier, client = notifier_over(None)
    await notifier.request_changed(pending())
    [update] = client.calls_to("chat.update")
    assert header(update) == "Approval needed: start 1 dump task"
    assert has_buttons(update)
