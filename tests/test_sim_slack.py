"""The Slack stand-in, driven by slack_sdk's real clients and by a recording bot over loopback."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sim.server import ThreadedServer
from bot.sim.slack import SlackStandIn
from tests.fakes import EpochClock

TOKEN = "xoxb-sim-test-token"
SECRET = "sim-test-signing-secret"
REQUESTER, APPROVER, OUTSIDER = "U0REQUESTER", "U0APPROVER1", "U0OUTSIDER"
INCIDENT, RANDOM = "C0INCIDENT", "C0RANDOM"
APPROVE, CANCEL = "dumptask.approve", "dumptask.cancel"
TS = r"^\d{10}\.\d{6}$"


def card_blocks(request_id: str = "req-1") -> list[dict[str, Any]]:
    """An approval card like the bot's: a section and an actions block without block ids."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*alice* asks to start 1 task"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": request_id,
                },
                {
                    "type": "button",
                    "action_id": CANCEL,
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "value": request_id,
                },
            ],
        },
    ]


@dataclass
class Received:
    """One request the recording bot got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingBot:
    """A tiny aiohttp app on loopback that records requests and answers as told."""

    status: int = 200
    body: str = ""
    content_type: str = "text/plain"
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def app(self) -> web.Application:
        """The app serving ``POST /slack/events``."""

        async def events(request: web.Request) -> web.Response:
            self.received.append(Received(dict(request.headers), await request.read()))
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(status=self.status, text=self.body, content_type=self.content_type)

        app = web.Application()
        app.router.add_post("/slack/events", events)
        return app


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock()


@pytest.fixture
def slack(clock: EpochClock) -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn(TOKEN, SECRET, clock=clock).with_sample_workspace()
    with stand_in:
        yield stand_in


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


@pytest.fixture
def bot(slack: SlackStandIn) -> Iterator[RecordingBot]:
    recording = RecordingBot()
    with ThreadedServer(recording.app()) as server:
        slack.request_url = f"{server.url}/slack/events"
        yield recording


async def post_card(client: AsyncWebClient, channel: str = INCIDENT) -> str:
    response = await client.chat_postMessage(
        channel=channel, text="Approval needed", blocks=card_blocks()
    )
    return str(response["ts"])


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# Web API.


async def test_auth_test_names_the_bot(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """auth.test answers with the team and the bot user the token belongs to."""
    response = await client.auth_test()
    assert response["ok"] is True
    assert response["user_id"] == slack.bot.user_id
    assert response["bot_id"] == slack.bot.bot_id
    assert response["team_id"] == slack.team.id
    assert response["url"] == f"https://{slack.team.domain}.slack.com/"
    assert response["team"] == slack.team.name
    assert response["user"] == slack.bot.name


async def test_wrong_token_is_invalid_auth(slack: SlackStandIn) -> None:
    """A token other than the bot's is answered with invalid_auth and HTTP 200."""
    error = await api_error(AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test())
    assert error.response.status_code == 200
    assert error.response["error"] == "invalid_auth"


async def test_missing_token_is_not_authed(slack: SlackStandIn) -> None:
    """A call without any token is answered with not_authed."""
    error = await api_error(AsyncWebClient(base_url=slack.api_url).auth_test())
    assert error.response["error"] == "not_authed"


async def test_post_message_stores_the_card(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """chat.postMessage stores the message and answers with its channel, ts and content."""
    response = await client.chat_postMessage(channel=INCIDENT, text="hi", blocks=card_blocks())
    assert response["channel"] == INCIDENT
    assert response["ts"] == response["message"]["ts"]
    assert response["message"]["bot_id"] == slack.bot.bot_id
    stored = slack.message(INCIDENT, response["ts"])
    assert stored.text == "hi"
    assert stored.user == slack.bot.user_id
    assert [block["type"] for block in stored.blocks] == ["section", "actions"]
    assert stored.visible_to is None
    assert stored.thread_ts is None


async def test_timestamps_increase_strictly(
    slack: SlackStandIn, client: AsyncWebClient, clock: EpochClock
) -> None:
    """Messages posted while the clock stands still still get strictly increasing ts strings."""
    stamps = [
        (await client.chat_postMessage(channel=INCIDENT, text=str(n)))["ts"] for n in range(3)
    ]
    assert all(re_ts(stamp) for stamp in stamps)
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 3
    assert stamps[0].startswith(str(int(clock.now)))


def re_ts(value: str) -> bool:
    return re.fullmatch(TS, value) is not None


async def test_chat_methods_arrive_as_json(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """slack_sdk sends chat.* as JSON, so blocks are recorded as the list that was sent."""
    await post_card(client)
    (call,) = slack.calls_to("chat.postMessage")
    assert call.args["blocks"][1]["elements"][0]["action_id"] == APPROVE
    assert call.token == TOKEN
    assert call.ok
    assert call.missing_text_fallback is False


async def test_form_encoded_blocks_are_decoded(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """Blocks sent as a JSON string inside a form field are decoded like Slack does."""
    response = await client.api_call(
        "chat.postMessage",
        data={"channel": INCIDENT, "text": "form", "blocks": json.dumps(card_blocks())},
    )
    (call,) = slack.calls_to("chat.postMessage")
    assert isinstance(call.args["blocks"], list)
    assert slack.message(INCIDENT, response["ts"]).blocks[0]["type"] == "section"


async def test_blocks_without_text_are_flagged(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """A message with blocks but no top-level text is stored and flagged missing_text_fallback."""
    with pytest.warns(UserWarning, match="text"):
        await client.chat_postMessage(channel=INCIDENT, blocks=card_blocks())
    (call,) = slack.calls_to("chat.postMessage")
    assert call.missing_text_fallback is True


async def test_block_ids_are_assigned(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """Slack gives every block without a block_id one of its own and keeps the ones given."""
    blocks = card_blocks()
    blocks[0]["block_id"] = "summary"
    ts = (await client.chat_postMessage(channel=INCIDENT, text="t", blocks=blocks))["ts"]
    stored = slack.message(INCIDENT, ts).blocks
    assert stored[0]["block_id"] == "summary"
    assert stored[1]["block_id"]
    assert stored[1]["block_id"] != "summary"


async def test_duplicate_block_ids_are_invalid(client: AsyncWebClient) -> None:
    """Two blocks with the same block_id are rejected with invalid_blocks."""
    blocks = card_blocks()
    for block in blocks:
        block["block_id"] = "same"
    error = await api_error(client.chat_postMessage(channel=INCIDENT, text="t", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": RANDOM, "text": "t"}, "not_in_channel"),
        ({"channel": "C0NOWHERE", "text": "t"}, "channel_not_found"),
        ({"channel": INCIDENT}, "no_text"),
        ({"channel": INCIDENT, "text": "t", "thread_ts": "1.000001"}, "thread_not_found"),
    ],
)
async def test_post_message_errors(
    slack: SlackStandIn, client: AsyncWebClient, kwargs: dict[str, str], error: str
) -> None:
    """chat.postMessage refuses what Slack refuses, with Slack's error code."""
    # api_call sends the same JSON body as chat_postMessage, without its missing-text warning.
    response = (await api_error(client.api_call("chat.postMessage", json=kwargs))).response
    assert response["error"] == error
    assert slack.calls_to("chat.postMessage")[0].error == error
    assert not slack.messages(INCIDENT)


async def test_post_by_channel_name(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """chat.postMessage also takes a channel name and answers with the channel id."""
    response = await client.chat_postMessage(channel="#incident", text="by name")
    assert response["channel"] == INCIDENT


async def test_thread_replies(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """A reply with thread_ts joins the card's thread, and a reply to a reply joins it too."""
    card = await post_card(client)
    first = (await client.chat_postMessage(channel=INCIDENT, text="one", thread_ts=card))["ts"]
    await client.chat_postMessage(channel=INCIDENT, text="two", thread_ts=first)
    assert [reply.text for reply in slack.thread(INCIDENT, card)] == ["one", "two"]
    assert [message.text for message in slack.messages(INCIDENT)] == [
        "Approval needed",
        "one",
        "two",
    ]


async def test_update_changes_the_card(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """chat.update rewrites text and blocks in place and marks the message edited."""
    ts = await post_card(client)
    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by bob"}}]
    response = await client.chat_update(channel=INCIDENT, ts=ts, text="Approved", blocks=done)
    assert response["ts"] == ts
    stored = slack.message(INCIDENT, ts)
    assert stored.text == "Approved"
    assert [block["type"] for block in stored.blocks] == ["section"]
    assert stored.edited is True
    assert len(slack.messages(INCIDENT)) == 1


async def test_update_without_blocks_keeps_them(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """chat.update with text only keeps the previous blocks, as Slack documents."""
    ts = await post_card(client)
    await client.chat_update(channel=INCIDENT, ts=ts, text="still open")
    assert len(slack.message(INCIDENT, ts).blocks) == 2


async def test_update_unknown_message(client: AsyncWebClient) -> None:
    """chat.update of a ts that does not exist is message_not_found."""
    error = await api_error(client.chat_update(channel=INCIDENT, ts="1.000001", text="x"))
    assert error.response["error"] == "message_not_found"


async def test_update_ephemeral_message(client: AsyncWebClient) -> None:
    """An ephemeral message cannot be changed with chat.update."""
    ephemeral = await client.chat_postEphemeral(channel=INCIDENT, user=REQUESTER, text="psst")
    error = await api_error(
        client.chat_update(channel=INCIDENT, ts=ephemeral["message_ts"], text="x")
    )
    assert error.response["error"] == "cant_update_message"


async def test_update_someone_elses_message(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """The bot cannot update a message a person posted."""
    typed = slack.post_as_user(REQUESTER, INCIDENT, "hello")
    error = await api_error(client.chat_update(channel=INCIDENT, ts=typed.ts, text="x"))
    assert error.response["error"] == "cant_update_message"


async def test_post_ephemeral(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """chat.postEphemeral stores a message only the named user sees, and answers message_ts."""
    response = await client.chat_postEphemeral(channel=INCIDENT, user=REQUESTER, text="only you")
    stored = slack.message(INCIDENT, response["message_ts"])
    assert stored.visible_to == REQUESTER
    assert stored.is_ephemeral


async def test_post_ephemeral_to_outsider(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """chat.postEphemeral to someone outside the channel is user_not_in_channel."""
    slack.add_channel("C0PRIVATE", "private", [REQUESTER])
    error = await api_error(client.chat_postEphemeral(channel="C0PRIVATE", user=OUTSIDER, text="x"))
    assert error.response["error"] == "user_not_in_channel"


async def test_usergroup_members(client: AsyncWebClient) -> None:
    """usergroups.users.list (sent as GET) lists the group's members."""
    response = await client.usergroups_users_list(usergroup="S0ONCALL")
    assert response["users"] == ["U0APPROVER1", "U0APPROVER2"]


async def test_unknown_usergroup(client: AsyncWebClient) -> None:
    """usergroups.users.list of an unknown group is no_such_subteam."""
    error = await api_error(client.usergroups_users_list(usergroup="S0NOBODY"))
    assert error.response["error"] == "no_such_subteam"


async def test_unknown_method(client: AsyncWebClient) -> None:
    """A method the stand-in does not serve is unknown_method."""
    error = await api_error(client.api_call("views.publish"))
    assert error.response["error"] == "unknown_method"


# Faults.


async def test_rate_limit_is_retried(slack: SlackStandIn) -> None:
    """A 429 with Retry-After is retried by slack_sdk's handler and then succeeds."""
    slack.fail_next("chat.postMessage", retry_after=0)
    client = AsyncWebClient(
        token=TOKEN, base_url=slack.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler()]
    )
    response = await client.chat_postMessage(channel=INCIDENT, text="eventually")
    assert response["ok"] is True
    first, second = slack.calls_to("chat.postMessage")
    assert (first.status, first.error) == (429, "ratelimited")
    assert (second.status, second.error) == (200, None)
    assert len(slack.messages(INCIDENT)) == 1


async def test_rate_limit_answer(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """Without a retry handler a 429 surfaces with Retry-After and error ratelimited."""
    slack.fail_next("chat.postMessage", retry_after=7)
    error = await api_error(client.chat_postMessage(channel=INCIDENT, text="x"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"
    assert not slack.messages(INCIDENT)


async def test_server_error(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """status=500 answers HTTP 500 with Slack's internal_error body."""
    slack.fail_next("chat.update", status=500)
    error = await api_error(client.chat_update(channel=INCIDENT, ts="1.000001", text="x"))
    assert error.response.status_code == 500
    assert error.response["error"] == "internal_error"


async def test_injected_error_counts_down(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """Any other error answers HTTP 200 ok false for exactly count calls."""
    slack.fail_next("chat.postMessage", "not_in_channel", count=2)
    for _ in range(2):
        error = await api_error(client.chat_postMessage(channel=INCIDENT, text="x"))
        assert (error.response.status_code, error.response["error"]) == (200, "not_in_channel")
    assert (await client.chat_postMessage(channel=INCIDENT, text="x"))["ok"] is True


async def test_clear_faults(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """clear_faults disarms what fail_next armed."""
    slack.fail_next("auth.test", "invalid_auth")
    slack.clear_faults()
    assert (await client.auth_test())["ok"] is True


# Waiting and the call log.


async def test_wait_for_sees_a_call_from_another_thread(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """wait_for returns once the awaited call was answered and its effect is visible."""
    waiter = asyncio.create_task(asyncio.to_thread(slack.wait_for, "chat.postMessage", 1, 5.0))
    await asyncio.sleep(0)
    ts = await post_card(client)
    (call,) = await waiter
    assert call.method == "chat.postMessage"
    assert slack.message(INCIDENT, ts).text == "Approval needed"


def test_wait_for_times_out(slack: SlackStandIn) -> None:
    """wait_for raises TimeoutError when the call never comes."""
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"chat\.update"):
        slack.wait_for("chat.update", timeout=0.05)
    assert time.monotonic() - started < 1


async def test_clear_calls(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """clear_calls forgets the log but not the workspace."""
    await post_card(client)
    slack.clear_calls()
    assert slack.calls == []
    assert len(slack.messages(INCIDENT)) == 1


# response_url.


async def respond(url: str, **body: Any) -> tuple[int, str]:
    """Post to a response URL the way Bolt's ``respond`` does."""
    response = await AsyncWebhookClient(url).send_dict(body)
    return response.status_code, response.body


async def test_response_defaults_to_ephemeral(slack: SlackStandIn) -> None:
    """A response without response_type is an ephemeral message for the user who acted."""
    fields = slack.build_slash_command(REQUESTER, INCIDENT, "help")
    assert await respond(fields["response_url"], text="usage") == (200, '{"ok": true}')
    (message,) = slack.messages(INCIDENT)
    assert (message.text, message.visible_to) == ("usage", REQUESTER)
    assert slack.response_posts[0].body == {"text": "usage"}


async def test_response_in_channel(slack: SlackStandIn) -> None:
    """response_type in_channel adds a message everyone sees, even without the bot in it."""
    fields = slack.build_slash_command(REQUESTER, RANDOM, "help")
    status, _ = await respond(fields["response_url"], text="all", response_type="in_channel")
    assert status == 200
    (message,) = slack.messages(RANDOM)
    assert message.visible_to is None
    assert message.user == slack.bot.user_id


async def test_response_replaces_the_clicked_card(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """replace_original rewrites the message that was clicked, keeping its ts."""
    ts = await post_card(client)
    payload = slack.build_block_action(APPROVER, INCIDENT, ts, APPROVE)
    await respond(payload["response_url"], text="approved", replace_original=True)
    (message,) = slack.messages(INCIDENT)
    assert (message.ts, message.text, message.blocks) == (ts, "approved", [])


async def test_response_deletes_the_clicked_card(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """delete_original removes the message that was clicked."""
    ts = await post_card(client)
    payload = slack.build_block_action(APPROVER, INCIDENT, ts, CANCEL)
    assert (await respond(payload["response_url"], delete_original=True))[0] == 200
    assert slack.messages(INCIDENT) == []


async def test_response_url_takes_five_posts(slack: SlackStandIn) -> None:
    """The sixth post to one response URL is answered 404 used_url and shows nothing."""
    url = slack.build_slash_command(REQUESTER, INCIDENT, "help")["response_url"]
    for n in range(5):
        assert (await respond(url, text=str(n)))[0] == 200
    assert await respond(url, text="six") == (404, "used_url")
    assert len(slack.messages(INCIDENT)) == 5
    assert [post.status for post in slack.response_posts] == [200] * 5 + [404]


async def test_response_url_expires(slack: SlackStandIn, clock: EpochClock) -> None:
    """A response URL older than 30 minutes is answered 404 expired_url."""
    url = slack.build_slash_command(REQUESTER, INCIDENT, "help")["response_url"]
    clock.advance(30 * 60 + 1)
    assert await respond(url, text="late") == (404, "expired_url")
    assert slack.messages(INCIDENT) == []


# Requests Slack sends to the bot.


def test_sign_matches_slack_sdk_verifier(slack: SlackStandIn) -> None:
    """sign() produces headers slack_sdk's SignatureVerifier accepts."""
    body = b"token=x&text=hello"
    now = int(time.time())
    headers = slack.sign(body, now)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["X-Slack-Request-Timestamp"] == str(now)
    assert SignatureVerifier(SECRET).is_valid(
        body=body,
        timestamp=headers["X-Slack-Request-Timestamp"],
        signature=headers["X-Slack-Signature"],
    )


def test_slash_command_fields(slack: SlackStandIn) -> None:
    """A slash command carries the fields Slack sends, in Slack's order."""
    fields = slack.build_slash_command(REQUESTER, INCIDENT, "start s1 t1")
    assert list(fields) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert fields["command"] == "/dumptask"
    assert (fields["channel_name"], fields["user_name"]) == ("incident", "alice")
    assert fields["response_url"].startswith(f"{slack.url}/response/")
    assert fields["is_enterprise_install"] == "false"


async def test_click_payload_comes_from_the_stored_card(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """A click names the block_id Slack stored, the button's value, and the whole card."""
    ts = await post_card(client)
    card = slack.message(INCIDENT, ts)
    payload = slack.build_block_action(APPROVER, INCIDENT, ts, APPROVE)
    (action,) = payload["actions"]
    assert action["block_id"] == card.blocks[1]["block_id"]
    assert action["value"] == "req-1"
    assert action["style"] == "primary"
    assert action["text"] == {"type": "plain_text", "text": "Approve", "emoji": True}
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == APPROVER
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": INCIDENT,
        "is_ephemeral": False,
    }
    assert payload["message"]["blocks"] == card.blocks
    assert payload["channel"] == {"id": INCIDENT, "name": "incident"}
    assert payload["state"] == {"values": {}}


async def test_click_on_a_stale_card(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """A click after the buttons were removed replays the last version that showed them."""
    ts = await post_card(client)
    before = slack.message(INCIDENT, ts)
    await client.chat_update(channel=INCIDENT, ts=ts, text="done", blocks=[])
    payload = slack.build_block_action(APPROVER, INCIDENT, ts, APPROVE)
    assert payload["actions"][0]["value"] == "req-1"
    assert payload["message"]["blocks"] == before.blocks
    assert [version.text for version in slack.workspace.versions(INCIDENT, ts)] == [
        "Approval needed",
        "done",
    ]


async def test_click_on_a_button_never_shown(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """A click on an action_id the message never had is a test mistake, raised as LookupError."""
    ts = (await client.chat_postMessage(channel=INCIDENT, text="plain"))["ts"]
    with pytest.raises(LookupError, match="dumptask"):
        slack.build_block_action(APPROVER, INCIDENT, ts, APPROVE)


async def test_click_on_a_given_snapshot(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """An explicit message snapshot is what the click shows, whatever is stored now."""
    ts = await post_card(client)
    snapshot = slack.message(INCIDENT, ts)
    await client.chat_update(channel=INCIDENT, ts=ts, text="t", blocks=card_blocks("req-2"))
    payload = slack.build_block_action(APPROVER, INCIDENT, ts, APPROVE, message=snapshot)
    assert payload["actions"][0]["value"] == "req-1"


async def test_click_on_an_ephemeral_message(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """A click on an ephemeral message is marked so and carries no message, as at Slack."""
    response = await client.chat_postEphemeral(
        channel=INCIDENT, user=REQUESTER, text="t", blocks=card_blocks()
    )
    payload = slack.build_block_action(REQUESTER, INCIDENT, response["message_ts"], CANCEL)
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload


def test_socket_mode_envelopes(slack: SlackStandIn) -> None:
    """Socket Mode wraps commands (which accept a response payload) and clicks (which do not)."""
    command = slack.build_slash_command(REQUESTER, INCIDENT, "help")
    envelope = slack.socket_mode_envelope("slash_commands", command)
    assert envelope["type"] == "slash_commands"
    assert envelope["accepts_response_payload"] is True
    assert envelope["payload"] == command
    assert len(envelope["envelope_id"]) == 36
    click = slack.socket_mode_envelope("interactive", {"type": "block_actions"})
    assert (click["type"], click["accepts_response_payload"]) == ("interactive", False)


@pytest.mark.parametrize(
    ("kind", "answered"),
    [
        ("view_submission", True),
        ("block_suggestion", True),
        ("view_closed", False),
        ("shortcut", False),
    ],
)
def test_socket_mode_envelopes_of_modal_interactions(
    slack: SlackStandIn, kind: str, answered: bool
) -> None:
    """Submissions and options requests accept a response payload in the ack; the rest do not."""
    envelope = slack.socket_mode_envelope("interactive", {"type": kind})
    assert (envelope["type"], envelope["accepts_response_payload"]) == ("interactive", answered)


def test_send_command_reaches_the_bot(slack: SlackStandIn, bot: RecordingBot) -> None:
    """send_command POSTs the signed, form-encoded command to request_url."""
    response = slack.send_command(REQUESTER, INCIDENT, "start s1 t1")
    assert response.status_code == 200
    (got,) = bot.received
    fields = {key: values[0] for key, values in parse_qs(got.body.decode()).items()}
    assert (fields["text"], fields["user_id"], fields["channel_id"]) == (
        "start s1 t1",
        REQUESTER,
        INCIDENT,
    )
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert SignatureVerifier(SECRET).is_valid(
        body=got.body,
        timestamp=got.headers["X-Slack-Request-Timestamp"],
        signature=got.headers["X-Slack-Signature"],
    )


async def test_asend_command_reaches_the_bot(slack: SlackStandIn, bot: RecordingBot) -> None:
    """asend_command does the same from an event loop."""
    response = await slack.asend_command(REQUESTER, INCIDENT, "help")
    assert response.status_code == 200
    assert b"text=help" in bot.received[0].body


def test_forged_signature_is_sent_as_given(slack: SlackStandIn, bot: RecordingBot) -> None:
    """An overridden timestamp and signature go out unchanged, and do not verify."""
    stale = int(time.time()) - 600
    slack.send_command(REQUESTER, INCIDENT, "help", timestamp=stale, signature="v0=forged")
    headers = bot.received[0].headers
    assert headers["X-Slack-Request-Timestamp"] == str(stale)
    assert headers["X-Slack-Signature"] == "v0=forged"


def test_stale_timestamp_is_signed(slack: SlackStandIn, bot: RecordingBot) -> None:
    """A stale timestamp alone is signed correctly, so only its age can reject it."""
    stale = int(time.time()) - 600
    slack.send_command(REQUESTER, INCIDENT, "help", timestamp=stale)
    got = bot.received[0]
    expected = SignatureVerifier(SECRET).generate_signature(timestamp=str(stale), body=got.body)
    assert got.headers["X-Slack-Signature"] == expected


def test_command_ack_body_is_shown(slack: SlackStandIn, bot: RecordingBot) -> None:
    """A JSON ack body becomes an ephemeral message for the user, as Slack shows it."""
    bot.body, bot.content_type = json.dumps({"text": "Unknown sub-command"}), "application/json"
    slack.send_command(REQUESTER, INCIDENT, "frobnicate")
    (message,) = slack.messages(INCIDENT)
    assert (message.text, message.visible_to) == ("Unknown sub-command", REQUESTER)
    assert slack.response_posts == []


def test_empty_ack_shows_nothing(slack: SlackStandIn, bot: RecordingBot) -> None:
    """An empty ack body leaves the channel as it was."""
    slack.send_command(REQUESTER, INCIDENT, "start s1 t1")
    assert slack.messages(INCIDENT) == []


def test_failed_ack_shows_dispatch_failed(slack: SlackStandIn, bot: RecordingBot) -> None:
    """A command answered with an error status shows Slack's dispatch_failed note."""
    bot.status = 401
    assert slack.send_command(REQUESTER, INCIDENT, "help").status_code == 401
    (message,) = slack.messages(INCIDENT)
    assert message.text == '/dumptask failed with the error "dispatch_failed"'
    assert message.user == "USLACKBOT"


def test_slow_ack_shows_operation_timeout(slack: SlackStandIn, bot: RecordingBot) -> None:
    """A bot slower than the ack timeout gets operation_timeout, and the caller an exception."""
    slack.ack_timeout, bot.delay = 0.05, 0.3
    with pytest.raises(httpx.TimeoutException):
        slack.send_command(REQUESTER, INCIDENT, "help")
    (message,) = slack.messages(INCIDENT)
    assert message.text == '/dumptask failed with the error "operation_timeout"'
    assert message.visible_to == REQUESTER


async def test_click_reaches_the_bot(
    slack: SlackStandIn, client: AsyncWebClient, bot: RecordingBot
) -> None:
    """A click from ``aclick`` POSTs a signed payload= form whose JSON is the block_actions payload."""
    ts = await post_card(client)
    response = await slack.aclick(APPROVER, INCIDENT, ts, APPROVE)
    assert response.status_code == 200
    (got,) = bot.received
    payload = json.loads(parse_qs(got.body.decode())["payload"][0])
    assert payload["actions"][0]["action_id"] == APPROVE
    assert payload["actions"][0]["value"] == "req-1"
    assert payload["container"]["message_ts"] == ts
    assert SignatureVerifier(SECRET).is_valid(
        body=got.body,
        timestamp=got.headers["X-Slack-Request-Timestamp"],
        signature=got.headers["X-Slack-Signature"],
    )


async def test_sync_click_with_value(
    slack: SlackStandIn, client: AsyncWebClient, bot: RecordingBot
) -> None:
    """A sync ``click`` sends the given value instead of the button's own."""
    ts = await post_card(client)
    await asyncio.to_thread(slack.click, APPROVER, INCIDENT, ts, CANCEL, "req-other")
    payload = json.loads(parse_qs(bot.received[0].body.decode())["payload"][0])
    assert payload["actions"][0]["value"] == "req-other"


def test_sending_needs_a_request_url(slack: SlackStandIn) -> None:
    """Sending before request_url is set fails with a clear message."""
    with pytest.raises(RuntimeError, match="request_url"):
        slack.send_command(REQUESTER, INCIDENT, "help")


def test_model_is_readable_from_other_threads(slack: SlackStandIn) -> None:
    """Reads from several threads while messages are added see consistent snapshots."""
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(200):
                assert all(m.channel == INCIDENT for m in slack.messages(INCIDENT))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for n in range(200):
        slack.post_as_user(REQUESTER, INCIDENT, str(n))
    for reader in readers:
        reader.join()
    assert errors == []
    assert len(slack.messages(INCIDENT)) == 200


def test_real_bolt_app_round_trip(slack: SlackStandIn) -> None:
    """A real Bolt AsyncApp accepts the stand-in's command and click, and answers through it."""
    app = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=slack.api_url), signing_secret=SECRET
    )

    @app.command("/dumptask")
    async def command(ack: AsyncAck, client: AsyncWebClient, body: dict[str, Any]) -> None:
        await ack("Asking for approval")
        await client.chat_postMessage(channel=body["channel_id"], text="card", blocks=card_blocks())

    @app.action(APPROVE)
    async def approve(ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"approved {body['actions'][0]['value']}", replace_original=True)

    with ThreadedServer(app.web_app(path="/slack/events")) as server:
        slack.request_url = f"{server.url}/slack/events"
        assert slack.send_command(REQUESTER, INCIDENT, "start s1 t1").status_code == 200
        (post,) = slack.wait_for("chat.postMessage")
        assert post.ok
        assert post.args["text"] == "card"
        card = next(m for m in slack.messages(INCIDENT) if m.visible_to is None)
        assert slack.click(APPROVER, INCIDENT, card.ts, APPROVE).status_code == 200
        slack.wait_for_response_posts()
    assert slack.message(INCIDENT, card.ts).text == "approved req-1"
    ack = next(m for m in slack.messages(INCIDENT) if m.visible_to == REQUESTER)
    assert ack.text == "Asking for approval"
    assert [call.method for call in slack.calls] == ["auth.test", "chat.postMessage"]


# Direct messages and permalinks.


async def test_conversations_open_opens_one_dm_per_person(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """The first open creates the DM; the next answers the same channel as already open."""
    first = await client.conversations_open(users=APPROVER)
    again = await client.conversations_open(users=[APPROVER])
    dm = first["channel"]["id"]
    assert dm.startswith("D")
    assert first.get("already_open") is None
    assert (again["channel"]["id"], again["no_op"], again["already_open"]) == (dm, True, True)
    assert dm == slack.dm(APPROVER)
    channel = slack.workspace.channel(dm)
    assert (channel.is_im, channel.im_user, channel.name) == (True, APPROVER, "directmessage")
    assert [im.id for im in slack.workspace.ims()] == [dm]


async def test_conversations_open_can_return_the_whole_im(client: AsyncWebClient) -> None:
    """return_im answers the IM object: is_im, the user, and the read state."""
    response = await client.conversations_open(users=APPROVER, return_im=True)
    im = response["channel"]
    assert (im["is_im"], im["user"], im["is_open"]) == (True, APPROVER, True)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"users": "U0NOBODY"}, "user_not_found"),
        ({"users": "U0DUMPBOT"}, "cannot_dm_bot"),
        ({}, "users_list_not_supplied"),
        ({"channel": "C0INCIDENT"}, "channel_not_found"),
    ],
)
async def test_conversations_open_errors(
    client: AsyncWebClient, arguments: dict[str, str], error: str
) -> None:
    """conversations.open refuses unknown people, the bot itself, and channels that are no DM."""
    answer = await api_error(client.api_call("conversations.open", data=arguments))
    assert answer.response["error"] == error


async def test_a_dm_takes_cards_updates_and_clicks(
    slack: SlackStandIn, client: AsyncWebClient, bot: RecordingBot
) -> None:
    """A card posted in a DM can be read back, updated, and clicked by its person."""
    dm = (await client.conversations_open(users=APPROVER))["channel"]["id"]
    ts = await post_card(client, channel=dm)
    await client.chat_update(channel=dm, ts=ts, text="Still open", blocks=card_blocks("req-2"))
    [card] = slack.messages(dm)
    assert (card.text, card.edited) == ("Still open", True)
    assert (await slack.aclick(APPROVER, dm, ts, APPROVE)).status_code == 200
    payload = json.loads(parse_qs(bot.received[0].body.decode())["payload"][0])
    assert payload["channel"] == {"id": dm, "name": "directmessage"}
    assert payload["container"]["channel_id"] == dm
    assert payload["actions"][0]["value"] == "req-2"


async def test_posting_to_a_user_id_lands_in_their_dm(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """chat.postMessage to a user id posts in the DM with the app, as Slack does."""
    response = await client.chat_postMessage(channel=APPROVER, text="Please approve")
    assert response["channel"] == slack.dm(APPROVER)
    assert [m.text for m in slack.messages(slack.dm(APPROVER))] == ["Please approve"]


async def test_permalinks_point_at_the_message(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """chat.getPermalink answers the team's archive link; a reply's link names its thread."""
    ts = await post_card(client)
    reply = (await client.chat_postMessage(channel=INCIDENT, text="r", thread_ts=ts))["ts"]
    card = await client.chat_getPermalink(channel=INCIDENT, message_ts=ts)
    in_thread = await client.chat_getPermalink(channel=INCIDENT, message_ts=reply)
    base = f"https://{slack.team.domain}.slack.com/archives/{INCIDENT}"
    assert card["channel"] == INCIDENT
    assert card["permalink"] == f"{base}/p{ts.replace('.', '')}"
    assert in_thread["permalink"] == (
        f"{base}/p{reply.replace('.', '')}?thread_ts={ts}&cid={INCIDENT}"
    )


@pytest.mark.parametrize(
    ("channel", "ts", "error"),
    [("C0NOWHERE", "1.000001", "channel_not_found"), (INCIDENT, "1.000001", "message_not_found")],
)
async def test_permalink_errors(client: AsyncWebClient, channel: str, ts: str, error: str) -> None:
    """A permalink needs a known channel and a message in it."""
    answer = await api_error(client.chat_getPermalink(channel=channel, message_ts=ts))
    assert answer.response["error"] == error
