"""Modals in the Slack stand-in: views.open/update/push, and what people do in a modal.

A tiny fake bot (an aiohttp app on loopback) answers the way a bot would: it opens a modal on a
slash command or a shortcut, answers options requests, updates the modal when a dispatching
select changes, and answers submissions as each test tells it. The last test does the same with
a real Bolt ``AsyncApp``, so the payloads are known to route to Bolt's listeners.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sim.server import ThreadedServer
from bot.sim.slack import MissingInputError, SlackStandIn, View
from tests.fakes import EpochClock
from tests.modal_helpers import (
    STREAMS,
    Answer,
    FakeBot,
    JsonDict,
    deny_view,
    open_modal,
    option,
    start_view,
    text,
)

TOKEN = "xoxb-sim-modal-token"
SECRET = "sim-modal-signing-secret"
REQUESTER, APPROVER, OUTSIDER = "U0REQUESTER", "U0APPROVER1", "U0OUTSIDER"
INCIDENT = "C0INCIDENT"


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock()


@pytest.fixture
def slack(clock: EpochClock) -> Iterator[SlackStandIn]:
    with SlackStandIn(TOKEN, SECRET, clock=clock).with_sample_workspace() as stand_in:
        yield stand_in


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


@pytest.fixture
def bot(slack: SlackStandIn) -> Iterator[FakeBot]:
    fake = FakeBot(slack.api_url, TOKEN)
    with ThreadedServer(fake.app()) as server:
        slack.request_url = f"{server.url}/slack/events"
        yield fake


async def open_view(
    client: AsyncWebClient, slack: SlackStandIn, view: JsonDict, user: str = APPROVER
) -> View:
    """Open ``view`` for ``user`` through the Web API, as a bot would on their click."""
    response = await client.views_open(trigger_id=slack.mint_trigger_id(user), view=view)
    return slack.view(response["view"]["id"])


async def api_error(call: Any) -> JsonDict:
    with pytest.raises(SlackApiError) as caught:
        await call
    return dict(caught.value.response.data)


def submission(bot: FakeBot) -> JsonDict:
    [payload] = [p for p in bot.payloads if p["type"] == "view_submission"]
    return payload


# views.open and trigger ids.


async def test_views_open_shows_the_modal_to_whoever_triggered_it(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """views.open answers the stored view with an id and hash; only its user sees it."""
    trigger = slack.mint_trigger_id(APPROVER)
    response = await client.views_open(trigger_id=trigger, view=deny_view())
    view = response["view"]
    assert view["id"].startswith("V")
    assert view["type"] == "modal"
    assert (view["callback_id"], view["private_metadata"]) == ("dumptask.deny", "dt-k7m2q9xa")
    assert view["root_view_id"] == view["id"]
    assert view["previous_view_id"] is None
    assert view["app_id"] == slack.bot.app_id
    assert view["state"] == {
        "values": {"reason": {"reason_text": {"type": "plain_text_input", "value": None}}}
    }
    assert view["blocks"][0]["block_id"]
    shown = slack.open_view(APPROVER)
    assert shown is not None
    assert (shown.id, shown.hash, shown.is_open) == (view["id"], view["hash"], True)
    assert slack.open_view(REQUESTER) is None
    assert slack.calls_to("views.open")[0].ok


async def test_a_trigger_id_is_exchanged_only_once(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """The same trigger id used twice is refused the second time with exchanged_trigger_id."""
    trigger = slack.mint_trigger_id(APPROVER)
    await client.views_open(trigger_id=trigger, view=deny_view())
    error = await api_error(client.views_open(trigger_id=trigger, view=deny_view()))
    assert error["error"] == "exchanged_trigger_id"


@pytest.mark.parametrize(
    ("trigger", "error"),
    [("123.456.nothing-minted-this", "invalid_trigger_id"), ("", "invalid_arguments")],
)
async def test_a_trigger_id_the_stand_in_never_minted_is_refused(
    client: AsyncWebClient, trigger: str, error: str
) -> None:
    """An unknown trigger id is invalid_trigger_id; none at all is invalid_arguments."""
    answer = await api_error(
        client.api_call("views.open", json={"trigger_id": trigger, "view": deny_view()})
    )
    assert answer["error"] == error


async def test_a_trigger_id_expires_after_three_seconds(
    slack: SlackStandIn, client: AsyncWebClient, clock: EpochClock
) -> None:
    """A trigger id older than trigger_ttl (Slack's 3 s) is expired_trigger_id."""
    late = slack.mint_trigger_id(APPROVER)
    on_time = slack.mint_trigger_id(APPROVER)
    clock.now += 3.5
    assert (await api_error(client.views_open(trigger_id=late, view=deny_view())))["error"] == (
        "expired_trigger_id"
    )
    slack.workspace.trigger_ttl = 10
    assert (await client.views_open(trigger_id=on_time, view=deny_view()))["ok"]


def test_every_command_and_click_carries_a_fresh_trigger(slack: SlackStandIn) -> None:
    """Commands, clicks and shortcuts each carry a distinct trigger id minted for their user."""
    triggers = {
        slack.build_slash_command(REQUESTER, INCIDENT, "")["trigger_id"],
        slack.build_slash_command(REQUESTER, INCIDENT, "")["trigger_id"],
        slack.build_shortcut(REQUESTER, "dumptask.start")["trigger_id"],
    }
    assert len(triggers) == 3


async def test_fail_next_applies_to_views_methods(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """An armed fault answers views.open without consuming the trigger id."""
    slack.fail_next("views.open", "internal_error")
    trigger = slack.mint_trigger_id(APPROVER)
    assert (await api_error(client.views_open(trigger_id=trigger, view=deny_view())))["error"] == (
        "internal_error"
    )
    assert (await client.views_open(trigger_id=trigger, view=deny_view()))["ok"]


def _broken(change: Callable[[JsonDict], None]) -> JsonDict:
    view = deny_view()
    change(view)
    return view


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        (_broken(lambda v: v.pop("title")), "/view/title"),
        (_broken(lambda v: v.update(title=text("x" * 25))), "/view/title/text"),
        (_broken(lambda v: v.update(type="home")), "/view/type"),
        (_broken(lambda v: v.pop("submit")), "/view/blocks/1/input"),
        (_broken(lambda v: v["blocks"][1].pop("label")), "/view/blocks/1/label"),
        (_broken(lambda v: v["blocks"][1].pop("element")), "/view/blocks/1/element"),
        (_broken(lambda v: v.update(private_metadata="x" * 3001)), "/view/private_metadata"),
        (_broken(lambda v: v.update(callback_id="x" * 256)), "/view/callback_id"),
        (_broken(lambda v: v["blocks"].append({"type": "table"})), "/view/blocks/2/type"),
        (_broken(lambda v: v["blocks"][0].update(block_id="reason")), "/view/blocks/1/block_id"),
        (_broken(lambda v: v.update(submit={"type": "mrkdwn", "text": "Go"})), "/view/submit"),
        (_broken(lambda v: v.update(colour="red")), "/view/colour"),
        (
            _broken(
                lambda v: v["blocks"][1].update(
                    element={
                        "type": "static_select",
                        "action_id": "s",
                        "options": [option("a")],
                        "initial_option": option("b"),
                    }
                )
            ),
            "/view/blocks/1/element/initial_option",
        ),
        (
            _broken(lambda v: v["blocks"][1]["element"].update(max_length=0)),
            "/view/blocks/1/element/max_length",
        ),
    ],
)
async def test_an_invalid_view_is_refused_as_slack_does(
    slack: SlackStandIn, client: AsyncWebClient, view: JsonDict, pointer: str
) -> None:
    """A view Slack refuses is invalid_arguments, with a message naming where it is wrong."""
    error = await api_error(
        client.views_open(trigger_id=slack.mint_trigger_id(APPROVER), view=view)
    )
    assert error["error"] == "invalid_arguments"
    assert any(pointer in message for message in error["response_metadata"]["messages"]), error
    assert slack.open_view(APPROVER) is None


async def test_a_view_sent_as_a_form_field_is_decoded(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """views.open also takes the view as a JSON string, as form-encoded calls send it."""
    response = await client.api_call(
        "views.open",
        data={"trigger_id": slack.mint_trigger_id(APPROVER), "view": json.dumps(deny_view())},
    )
    assert slack.view(response["view"]["id"]).callback_id == "dumptask.deny"


# views.update and views.push.


async def test_views_update_replaces_the_view_and_keeps_what_was_entered(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """An update gets a new hash; inputs it keeps keep their values, the others go."""
    view = await open_view(client, slack, start_view("orders-stream"))
    await slack.aselect_in_view(APPROVER, view.id, "note_text", "INC-42")
    await slack.aselect_in_view(APPROVER, view.id, "tasks_select", ["orders-archive"])
    response = await client.views_update(
        view_id=view.id, hash=view.hash, view=start_view("clicks-stream")
    )
    updated = slack.view(view.id)
    assert response["view"]["hash"] == updated.hash != view.hash
    assert updated.state()["note"]["note_text"]["value"] == "INC-42"
    assert updated.state()["tasks"]["tasks_select"]["selected_options"] == []
    assert [o["value"] for o in updated.element("tasks_select")[1]["options"]] == ["clicks-to-obs"]


async def test_views_update_with_a_stale_hash_is_a_hash_conflict(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """An update naming the hash of an older version is refused and changes nothing."""
    view = await open_view(client, slack, deny_view())
    await client.views_update(view_id=view.id, hash=view.hash, view=deny_view("second"))
    error = await api_error(
        client.views_update(view_id=view.id, hash=view.hash, view=deny_view("third"))
    )
    assert error["error"] == "hash_conflict"
    assert slack.view(view.id).private_metadata == "second"


async def test_views_update_by_external_id(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """A view can be updated by the external_id the app gave it."""
    view = await open_view(client, slack, start_view())
    await client.views_update(external_id="start-U0REQUESTER", view=start_view("orders-stream"))
    assert slack.view(view.id).element("tasks_select")


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"view_id": "V0NOWHERE"}, "not_found"),
        ({"external_id": "nobody"}, "not_found"),
        ({}, "invalid_arguments"),
    ],
)
async def test_views_update_of_no_open_view_is_refused(
    client: AsyncWebClient, arguments: dict[str, str], error: str
) -> None:
    """An update must name exactly one open view, by view_id or external_id."""
    answer = await api_error(
        client.api_call("views.update", json={**arguments, "view": deny_view()})
    )
    assert answer["error"] == error


async def test_two_open_views_cannot_share_an_external_id(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """A second open view with the same external_id is duplicate_external_id."""
    await open_view(client, slack, start_view(), user=REQUESTER)
    error = await api_error(
        client.views_open(trigger_id=slack.mint_trigger_id(APPROVER), view=start_view())
    )
    assert error["error"] == "duplicate_external_id"


async def test_views_push_stacks_up_to_three_views(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """Pushed views sit on the root; the fourth is push_limit_reached."""
    root = await open_view(client, slack, deny_view())
    for number in (2, 3):
        pushed = await client.views_push(
            trigger_id=slack.mint_trigger_id(APPROVER), view=deny_view(str(number))
        )
        assert pushed["view"]["root_view_id"] == root.id
    error = await api_error(
        client.views_push(trigger_id=slack.mint_trigger_id(APPROVER), view=deny_view())
    )
    assert error["error"] == "push_limit_reached"
    assert [view.private_metadata for view in slack.workspace.modal(APPROVER)] == [
        "dt-k7m2q9xa",
        "2",
        "3",
    ]


# Submissions.


async def test_a_command_opens_the_bots_modal_and_a_submission_closes_it(
    slack: SlackStandIn, bot: FakeBot
) -> None:
    """The command's trigger opens the modal; a submission the bot acks empty closes it."""
    await slack.asend_command(APPROVER, INCIDENT, "")
    view = slack.open_view(APPROVER)
    assert view is not None
    response = await slack.asubmit_view(APPROVER, view.id, {"reason_text": "INC-42 is over"})
    assert response.status_code == 200
    payload = submission(bot)
    assert payload["type"] == "view_submission"
    assert payload["user"] == {
        "id": APPROVER,
        "username": "bob",
        "name": "bob",
        "team_id": slack.team.id,
    }
    assert payload["trigger_id"]
    assert (payload["view"]["id"], payload["view"]["hash"]) == (view.id, view.hash)
    assert payload["view"]["callback_id"] == "dumptask.deny"
    assert payload["view"]["private_metadata"] == "dt-k7m2q9xa"
    assert payload["view"]["state"]["values"] == {
        "reason": {"reason_text": {"type": "plain_text_input", "value": "INC-42 is over"}}
    }
    assert slack.open_view(APPROVER) is None
    assert slack.view(view.id).is_open is False


async def test_a_submission_is_signed_like_slacks(slack: SlackStandIn, bot: FakeBot) -> None:
    """The submission is one payload= form field, signed with the signing secret."""
    await slack.asend_command(APPROVER, INCIDENT, "")
    view = slack.open_view(APPROVER)
    assert view is not None
    await slack.asubmit_view(APPROVER, view.id, {"reason": "done"})
    headers, body = bot.bodies[-1]
    assert body.startswith(b"payload=")
    assert SignatureVerifier(SECRET).is_valid(
        body=body,
        timestamp=headers["X-Slack-Request-Timestamp"],
        signature=headers["X-Slack-Signature"],
    )


async def test_every_kind_of_input_is_sent_in_slacks_state_shape(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Text, menus, multi-selects, radio buttons and a conversation each have their state key."""
    view = await open_view(client, slack, start_view("orders-stream"))
    await slack.asuggest_options(APPROVER, view.id, "stream_select", "orders")
    await slack.asubmit_view(
        APPROVER,
        view.id,
        {
            "stream_select": "orders-stream",
            "tasks": ["orders-archive", "orders-to-obs"],
            "action_choice": "stop",
            "channel_select": INCIDENT,
            "priority_select": "high",
        },
    )
    values = submission(bot)["view"]["state"]["values"]
    assert values == {
        "stream": {
            "stream_select": {"type": "external_select", "selected_option": option("orders-stream")}
        },
        "tasks": {
            "tasks_select": {
                "type": "multi_static_select",
                "selected_options": [option("orders-archive"), option("orders-to-obs")],
            }
        },
        "action": {"action_choice": {"type": "radio_buttons", "selected_option": option("stop")}},
        "channel": {
            "channel_select": {"type": "conversations_select", "selected_conversation": INCIDENT}
        },
        "priority": {
            "priority_select": {"type": "static_select", "selected_option": option("high")}
        },
        "note": {"note_text": {"type": "plain_text_input", "value": None}},
    }


async def test_untouched_inputs_send_their_initial_values(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """An input nobody touched sends its initial option, or null when it has none."""
    view = await open_view(client, slack, start_view("orders-stream"))
    await slack.asuggest_options(APPROVER, view.id, "stream_select", "clicks")
    await slack.asubmit_view(
        APPROVER, view.id, {"stream": "clicks-stream", "tasks": "orders-archive"}
    )
    values = submission(bot)["view"]["state"]["values"]
    assert values["action"]["action_choice"]["selected_option"] == option("start")
    assert values["priority"]["priority_select"]["selected_option"] is None
    assert values["channel"]["channel_select"]["selected_conversation"] is None


async def test_an_empty_required_input_is_never_sent(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Like Slack's client, an empty required input stops the submission and says so."""
    view = await open_view(client, slack, deny_view())
    with pytest.raises(MissingInputError) as caught:
        await slack.asubmit_view(APPROVER, view.id, {"reason_text": ""})
    assert caught.value.errors == {"reason": "Please complete this required field."}
    assert slack.view(view.id).errors == caught.value.errors
    assert bot.payloads == []


async def test_whitespace_is_a_value_the_bot_must_judge(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Only an empty input counts as missing: blanks reach the bot, which must refuse them."""
    view = await open_view(client, slack, deny_view())
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "   "})
    assert submission(bot)["view"]["state"]["values"]["reason"]["reason_text"]["value"] == "   "


async def test_an_errors_answer_keeps_the_view_open_with_the_messages(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """response_action errors shows each message under its input; a good retry closes it."""
    view = await open_view(client, slack, deny_view())
    bot.answers = [{"response_action": "errors", "errors": {"reason": "Say why, in a few words."}}]
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "   "})
    shown = slack.view(view.id)
    assert shown.is_open
    assert shown.errors == {"reason": "Say why, in a few words."}
    assert shown.failure is None
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "superseded by INC-43"})
    assert slack.view(view.id).is_open is False


async def test_errors_for_a_block_that_is_not_an_input_are_a_failure(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Slack only shows errors under inputs; errors naming anything else fail the submission."""
    view = await open_view(client, slack, deny_view())
    section = view.blocks[0]["block_id"]
    bot.answers = [{"response_action": "errors", "errors": {section: "no"}}]
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "x"})
    assert slack.view(view.id).failure == "invalid_errors"
    assert slack.view(view.id).errors == {}


async def test_an_update_answer_replaces_the_view(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """response_action update shows the new view in place, under the same id."""
    view = await open_view(client, slack, deny_view())
    bot.answers = [{"response_action": "update", "view": deny_view("are you sure?")}]
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "x"})
    updated = slack.open_view(APPROVER)
    assert updated is not None
    assert (updated.id, updated.private_metadata) == (view.id, "are you sure?")
    assert updated.hash != view.hash


async def test_an_invalid_update_answer_is_a_failure(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """A view in the answer that Slack refuses leaves the old one open with a failure."""
    view = await open_view(client, slack, deny_view())
    bot.answers = [{"response_action": "update", "view": _broken(lambda v: v.pop("title"))}]
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "x"})
    assert (slack.view(view.id).failure or "").startswith("invalid_view")
    assert slack.view(view.id).private_metadata == "dt-k7m2q9xa"


async def test_a_push_answer_then_an_empty_ack_goes_back(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """A pushed view shows on top; acking its submission empty shows the view below again."""
    root = await open_view(client, slack, deny_view())
    bot.answers = [{"response_action": "push", "view": deny_view("confirm")}, None]
    await slack.asubmit_view(APPROVER, root.id, {"reason_text": "x"})
    pushed = slack.open_view(APPROVER)
    assert pushed is not None
    assert (pushed.previous_view_id, pushed.root_view_id) == (root.id, root.id)
    await slack.asubmit_view(APPROVER, pushed.id, {"reason_text": "y"})
    shown = slack.open_view(APPROVER)
    assert shown is not None
    assert shown.id == root.id


async def test_a_clear_answer_closes_the_whole_modal(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """response_action clear closes every view of the modal."""
    root = await open_view(client, slack, deny_view())
    await client.views_push(trigger_id=slack.mint_trigger_id(APPROVER), view=deny_view("2"))
    bot.answers = [{"response_action": "clear"}]
    top = slack.open_view(APPROVER)
    assert top is not None
    await slack.asubmit_view(APPROVER, top.id, {"reason_text": "x"})
    assert slack.open_view(APPROVER) is None
    assert slack.view(root.id).is_open is False


@pytest.mark.parametrize(
    ("status", "answer", "failure"),
    [(500, None, "dispatch_failed"), (200, {"response_action": "dance"}, "invalid_response")],
)
async def test_an_answer_slack_cannot_use_leaves_the_view_open(
    slack: SlackStandIn,
    client: AsyncWebClient,
    bot: FakeBot,
    status: int,
    answer: Answer,
    failure: str,
) -> None:
    """An error status or an unknown response_action keeps the view, marked with a failure."""
    view = await open_view(client, slack, deny_view())
    bot.status, bot.answers = status, [answer]
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "x"})
    assert slack.view(view.id).is_open
    assert slack.view(view.id).failure == failure


async def test_a_slow_answer_is_operation_timeout(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """A bot slower than the ack timeout leaves the view open with operation_timeout."""
    view = await open_view(client, slack, deny_view())
    slack.ack_timeout, bot.delay = 0.05, 0.3
    with pytest.raises(httpx.TimeoutException):
        await slack.asubmit_view(APPROVER, view.id, {"reason_text": "x"})
    assert slack.view(view.id).failure == "operation_timeout"


async def test_only_the_view_a_person_sees_can_be_submitted(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Another person's view, or a closed one, cannot be submitted: a test mistake."""
    view = await open_view(client, slack, deny_view())
    with pytest.raises(LookupError):
        await slack.asubmit_view(REQUESTER, view.id, {"reason_text": "x"})
    await slack.asubmit_view(APPROVER, view.id, {"reason_text": "x"})
    with pytest.raises(LookupError):
        await slack.asubmit_view(APPROVER, view.id, {"reason_text": "x"})
    with pytest.raises(LookupError, match="no_such_input"):
        slack.build_view_submission(
            APPROVER, (await open_view(client, slack, deny_view())).id, {"no_such_input": "x"}
        )


def test_socket_mode_submissions_apply_the_acks_payload(slack: SlackStandIn) -> None:
    """Over Socket Mode the test delivers the payload and hands the ack's payload back."""
    view_id = open_modal(slack, APPROVER, deny_view())
    payload = slack.build_view_submission(APPROVER, view_id, {"reason_text": "x"})
    envelope = slack.socket_mode_envelope("interactive", payload)
    assert envelope["accepts_response_payload"] is True
    slack.answer_view_submission(view_id, {"response_action": "errors", "errors": {"reason": "no"}})
    assert slack.view(view_id).errors == {"reason": "no"}


# Options, selections, closing, shortcuts.


async def test_an_options_request_shows_what_the_bot_answers(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """block_suggestion carries what was typed and the view; the answer's options are shown."""
    view = await open_view(client, slack, start_view())
    suggestions = await slack.asuggest_options(APPROVER, view.id, "stream_select", "orders")
    assert suggestions.values == ["orders-stream", "orders-archive-stream"]
    assert suggestions.error is None
    [payload] = bot.payloads
    assert payload["type"] == "block_suggestion"
    assert (payload["action_id"], payload["block_id"], payload["value"]) == (
        "stream_select",
        "stream",
        "orders",
    )
    assert payload["container"] == {"type": "view", "view_id": view.id}
    assert payload["view"]["id"] == view.id
    assert payload["user"]["id"] == APPROVER


async def test_options_requests_go_to_the_options_load_url(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """With an options load URL set, options requests go there and nothing else does."""
    options_bot = FakeBot(slack.api_url, TOKEN)
    with ThreadedServer(options_bot.app()) as server:
        slack.options_url = f"{server.url}/slack/events"
        view = await open_view(client, slack, start_view())
        await slack.asuggest_options(APPROVER, view.id, "stream_select", "clicks")
    assert [p["type"] for p in options_bot.payloads] == ["block_suggestion"]
    assert bot.payloads == []


async def test_nothing_is_asked_below_the_minimum_query_length(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Slack waits for min_query_length characters (3 unless set) before asking."""
    shown = start_view()
    del shown["blocks"][0]["element"]["min_query_length"]
    view = await open_view(client, slack, shown)
    suggestions = await slack.asuggest_options(APPROVER, view.id, "stream_select", "or")
    assert (suggestions.response, suggestions.values) == (None, [])
    assert bot.payloads == []


async def test_an_options_answer_slack_cannot_show_shows_nothing(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Options without a value (or over the limits) show no options, with the reason."""

    async def broken(_payload: JsonDict) -> Answer:
        return {"options": [{"text": text("orders-stream")}]}

    bot.answer = broken  # type: ignore[method-assign]
    view = await open_view(client, slack, start_view())
    suggestions = await slack.asuggest_options(APPROVER, view.id, "stream_select", "orders")
    assert suggestions.values == []
    assert "value" in (suggestions.error or "")


async def test_an_option_never_offered_cannot_be_chosen(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """Choosing a value the menu does not offer (or the bot never answered) is a test mistake."""
    view = await open_view(client, slack, start_view("orders-stream"))
    with pytest.raises(LookupError, match="nope"):
        slack.build_view_submission(APPROVER, view.id, {"tasks_select": ["nope"]})
    with pytest.raises(LookupError, match="orders-stream"):
        slack.build_view_submission(APPROVER, view.id, {"stream_select": "orders-stream"})


async def test_a_dispatching_select_sends_block_actions_and_the_bot_updates_the_view(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """A choice in an input with dispatch_action is sent at once, from the view."""
    view = await open_view(client, slack, start_view())
    await slack.asuggest_options(APPROVER, view.id, "stream_select", "clicks")
    response = await slack.aselect_in_view(APPROVER, view.id, "stream_select", "clicks-stream")
    assert response is not None
    assert response.status_code == 200
    payload = bot.payloads[-1]
    assert payload["type"] == "block_actions"
    assert payload["container"] == {"type": "view", "view_id": view.id}
    assert "channel" not in payload
    assert "message" not in payload
    assert "response_url" not in payload
    assert payload["trigger_id"]
    [action] = payload["actions"]
    assert action["type"] == "external_select"
    assert (action["action_id"], action["block_id"]) == ("stream_select", "stream")
    assert action["selected_option"] == option("clicks-stream")
    assert action["placeholder"] == text("Find a stream")
    assert payload["view"]["state"]["values"]["stream"]["stream_select"][
        "selected_option"
    ] == option("clicks-stream")
    updated = slack.wait_for_view(APPROVER, other_than=view)
    assert [o["value"] for o in updated.element("tasks_select")[1]["options"]] == ["clicks-to-obs"]
    assert updated.state()["stream"]["stream_select"]["selected_option"] == option("clicks-stream")


async def test_a_choice_in_a_plain_input_waits_for_the_submission(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """Without dispatch_action nothing is sent; the choice shows in the submission."""
    view = await open_view(client, slack, start_view("orders-stream"))
    assert await slack.aselect_in_view(APPROVER, view.id, "priority_select", "low") is None
    assert bot.payloads == []
    assert slack.view(view.id).state()["priority"]["priority_select"]["selected_option"] == option(
        "low"
    )


async def test_closing_a_modal_notifies_the_bot_only_when_asked(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """view_closed goes to the bot for a view with notify_on_close, never otherwise."""
    quiet = await open_view(client, slack, deny_view())
    assert await slack.aclose_view(APPROVER, quiet.id) is None
    noisy = await open_view(client, slack, start_view())
    response = await slack.aclose_view(APPROVER, noisy.id)
    assert response is not None
    [payload] = bot.payloads
    assert payload["type"] == "view_closed"
    assert payload["view"]["id"] == noisy.id
    assert payload["is_cleared"] is False
    assert slack.open_view(APPROVER) is None


async def test_a_shortcut_carries_a_trigger_the_bot_opens_its_modal_with(
    slack: SlackStandIn, bot: FakeBot
) -> None:
    """A global shortcut names its callback_id and carries a trigger id the bot can use."""
    bot.view = start_view()
    response = await slack.ashortcut(REQUESTER, "dumptask.start")
    assert response.status_code == 200
    [payload] = bot.payloads
    assert payload["type"] == "shortcut"
    assert payload["callback_id"] == "dumptask.start"
    assert payload["user"]["id"] == REQUESTER
    assert payload["team"] == {"id": slack.team.id, "domain": slack.team.domain}
    assert bot.api_errors == []
    view = slack.open_view(REQUESTER)
    assert view is not None
    assert view.callback_id == "dumptask.start"


def test_the_sync_twins_work_without_an_event_loop(slack: SlackStandIn, bot: FakeBot) -> None:
    """submit_view, suggest_options, select_in_view, close_view and shortcut run from sync code."""
    bot.view = start_view()
    slack.shortcut(REQUESTER, "dumptask.start")
    view = slack.wait_for_view(REQUESTER)
    assert slack.suggest_options(REQUESTER, view.id, "stream_select", "orders").values
    slack.select_in_view(REQUESTER, view.id, "stream_select", "orders-stream")
    updated = slack.wait_for_view(REQUESTER, other_than=view)
    slack.submit_view(REQUESTER, updated.id, {"tasks": ["orders-archive"]})
    assert slack.open_view(REQUESTER) is None
    slack.shortcut(REQUESTER, "dumptask.start")
    assert slack.close_view(REQUESTER, slack.wait_for_view(REQUESTER).id) is not None
    assert [p["type"] for p in bot.payloads][-1] == "view_closed"


# A real Bolt app.


def test_real_bolt_app_handles_the_modal_payloads(slack: SlackStandIn) -> None:
    """Bolt routes the stand-in's shortcut, options, view actions and submissions to listeners."""
    app = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=slack.api_url), signing_secret=SECRET
    )
    submitted: list[JsonDict] = []

    @app.shortcut("dumptask.start")
    async def shortcut(ack: AsyncAck, body: JsonDict, client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=start_view())

    @app.options("stream_select")
    async def streams(ack: AsyncAck, body: JsonDict) -> None:
        await ack(options=[option(name) for name in STREAMS if body["value"] in name])

    @app.action("stream_select")
    async def stream_chosen(ack: AsyncAck, body: JsonDict, client: AsyncWebClient) -> None:
        await ack()
        chosen = body["actions"][0]["selected_option"]["value"]
        await client.views_update(
            view_id=body["view"]["id"], hash=body["view"]["hash"], view=start_view(chosen)
        )

    @app.view("dumptask.start")
    async def start(ack: AsyncAck, view: JsonDict) -> None:
        values = view["state"]["values"]
        if not values["note"]["note_text"]["value"]:
            await ack(response_action="errors", errors={"note": "Say why."})
            return
        submitted.append(values)
        await ack()

    @app.view_closed("dumptask.start")
    async def closed(ack: AsyncAck) -> None:
        await ack()

    with ThreadedServer(app.web_app(path="/slack/events")) as server:
        slack.request_url = f"{server.url}/slack/events"
        assert slack.shortcut(REQUESTER, "dumptask.start").status_code == 200
        view = slack.wait_for_view(REQUESTER)
        assert slack.suggest_options(REQUESTER, view.id, "stream_select", "clicks").values == [
            "clicks-stream"
        ]
        slack.select_in_view(REQUESTER, view.id, "stream_select", "clicks-stream")
        view = slack.wait_for_view(REQUESTER, other_than=view)
        assert (
            slack.submit_view(REQUESTER, view.id, {"tasks": ["clicks-to-obs"]}).status_code == 200
        )
        assert slack.view(view.id).errors == {"note": "Say why."}
        slack.submit_view(REQUESTER, view.id, {"note": "INC-42"})
        assert slack.open_view(REQUESTER) is None
        second = slack.shortcut(REQUESTER, "dumptask.start")
        assert second.status_code == 200
        again = slack.wait_for_view(REQUESTER)
        assert slack.close_view(REQUESTER, again.id) is not None
    [values] = submitted
    assert values["tasks"]["tasks_select"]["selected_options"] == [option("clicks-to-obs")]


async def test_a_button_in_a_modal_is_sent_with_its_value(
    slack: SlackStandIn, client: AsyncWebClient, bot: FakeBot
) -> None:
    """A button in a modal's actions block dispatches at once, with its text and value."""
    shown = deny_view()
    shown["blocks"].append(
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "more", "text": text("More"), "value": "v"}
            ],
        }
    )
    view = await open_view(client, slack, shown)
    assert await slack.aselect_in_view(APPROVER, view.id, "more") is not None
    [action] = bot.payloads[-1]["actions"]
    assert (action["type"], action["text"], action["value"]) == ("button", text("More"), "v")
