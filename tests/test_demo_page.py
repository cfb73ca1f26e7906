"""The demo's page API over real HTTP, and the `demo` command as a subprocess.

The page is driven by a browser in test_demo_browser.py; here its JSON API and static files are
checked quickly, against a bare Slack stand-in (with a fake bot behind it for modals, which the
real bot does not open yet) or the whole demo stack (the real bot and the DIS stand-in).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.demo import DemoStack
from bot.sim.server import ThreadedServer
from bot.sim.slack import SlackStandIn
from bot.sim.slack_page import COMMAND_DESCRIPTION, USAGE_HINT, PageConfig, install_page
from tests.flow_helpers import APPROVE, eventually, wait_for_stored_card
from tests.modal_helpers import FakeBot, call_api, deny_view, open_modal, start_view, text

ROOT = Path(__file__).resolve().parent.parent
REQUESTER, APPROVER, OUTSIDER = "U0REQUESTER", "U0APPROVER1", "U0OUTSIDER"
INCIDENT = "C0INCIDENT"
REQUEST = '/dumptask start orders-stream orders-archive --reason "INC-42 demo"'


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """The Slack stand-in with the page and no bot behind it."""
    stand_in = SlackStandIn(bot_token="xoxb-page-test", signing_secret="page-test-secret")
    stand_in.with_sample_workspace()
    install_page(stand_in, PageConfig(roles={REQUESTER: "requester", APPROVER: "approver"}))
    with stand_in:
        yield stand_in


@pytest.fixture
def page(slack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=slack.url, timeout=10) as client:
        yield client


@pytest.fixture
def demo() -> Iterator[DemoStack]:
    with DemoStack(port=0) as stack:
        yield stack


@pytest.fixture
def demo_page(demo) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo.slack.url, timeout=10) as client:
        yield client


def seen_by(
    client: httpx.Client, user: str | None, channel: str = INCIDENT
) -> list[dict[str, Any]]:
    params = {"channel": channel} if user is None else {"channel": channel, "user": user}
    response = client.get("/page/api/messages", params=params)
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [message["text"] for message in messages]


# Static files.


SCRIPTS = ["app.js", "dom.js", "mrkdwn.js", "blocks.js", "modal.js", "console.js"]


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/", "text/html", "<title>"),
        ("/static/app.js", "text/javascript", "/page/api/messages"),
        ("/static/dom.js", "text/javascript", "export function el("),
        ("/static/mrkdwn.js", "text/javascript", "export function renderMrkdwn("),
        ("/static/blocks.js", "text/javascript", "export function renderBlocks("),
        ("/static/modal.js", "text/javascript", "/page/api/view/submit"),
        ("/static/console.js", "text/javascript", "/page/api/dis/action"),
        ("/static/style.css", "text/css", ".bk-button"),
    ],
)
def test_static_assets_are_served_with_their_content_types(page, path, content_type, marker):
    """The page, its script and its style sheet come from the stand-in with the right types."""
    response = page.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{content_type}; charset=utf-8"
    assert marker in response.text


def test_page_loads_nothing_from_the_network(page):
    """The page references only its own assets, and its policy forbids anything else."""
    index = page.get("/")
    references = re.findall(r'(?:src|href)="([^"]*)"', index.text)
    assert sorted(references) == ["/static/app.js", "/static/style.css", "data:,"]
    assert index.headers["content-security-policy"].startswith("default-src 'self'")
    for name in SCRIPTS:
        script = page.get(f"/static/{name}").text
        assert not re.search(r"https?:\\?/\\?/[a-z]", script), name
        assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", script)
        imported = re.findall(r'from "([^"]+)"', script)
        assert all(re.fullmatch(r"\./[a-z]+\.js", path) for path in imported), imported
        assert {path.removeprefix("./") for path in imported} <= set(SCRIPTS)


@pytest.mark.parametrize("name", ["slack.py", "..%2Fslack.py", "missing.js", ""])
def test_only_the_page_assets_are_served(page, name):
    """Nothing but the three page files can be read from the static directory."""
    assert page.get(f"/static/{name}").status_code == 404


def test_usage_hint_matches_the_manifest():
    """The message box hints exactly what Slack shows for the manifest's slash command."""
    manifest = yaml.safe_load((ROOT / "app-manifest.yml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/dumptask"
    assert command["usage_hint"] == USAGE_HINT
    assert command["description"] == COMMAND_DESCRIPTION


def test_workspace_lists_people_with_roles_and_the_command(page):
    """The picker gets every person with their demo role, and the command's usage hint."""
    workspace = page.get("/page/api/workspace").json()
    people = {user["name"]: user["role"] for user in workspace["users"]}
    assert people == {"alice": "requester", "bob": "approver", "carol": "", "mallory": ""}
    assert workspace["command"] == {
        "name": "/dumptask",
        "usage_hint": USAGE_HINT,
        "description": COMMAND_DESCRIPTION,
    }
    assert [channel["name"] for channel in workspace["channels"]] == ["incident", "random"]
    assert workspace["usergroups"][0]["handle"] == "oncall-leads"
    assert workspace["bot"]["name"] == "dumptask"
    assert workspace["team"]["domain"] == "dumptask-sim"
    assert workspace["dis_console"] is False


# Messages, as each person sees them.


def test_an_ephemeral_message_is_shown_only_to_its_user(page, slack):
    """A message sent to one person appears in their view only, marked ephemeral."""
    slack.post_as_user(REQUESTER, INCIDENT, "everyone sees this")
    slack.workspace.add_slackbot_notice(INCIDENT, REQUESTER, "only alice sees this")

    alice = seen_by(page, REQUESTER)
    assert texts(alice) == ["everyone sees this", "only alice sees this"]
    assert [message["ephemeral"] for message in alice] == [False, True]
    assert texts(seen_by(page, APPROVER)) == ["everyone sees this"]
    assert texts(seen_by(page, None)) == ["everyone sees this"]


def test_messages_carry_their_author_and_thread(page, slack):
    """Each message names its author (person, app or Slackbot) and its thread parent."""
    parent = slack.post_as_user(REQUESTER, INCIDENT, "parent")
    slack.post_as_user(APPROVER, INCIDENT, "reply", thread_ts=parent.ts)

    first, reply = seen_by(page, REQUESTER)
    assert first["author"] == {
        "id": REQUESTER,
        "name": "alice",
        "real_name": "Alice Archer",
        "kind": "person",
    }
    assert (first["thread_ts"], reply["thread_ts"]) == (None, parent.ts)
    assert reply["author"]["name"] == "bob"


def test_the_version_changes_only_when_the_workspace_does(page, slack):
    """The page can skip redrawing: the version stays put until something changes."""
    before = page.get("/page/api/messages", params={"channel": INCIDENT}).json()["version"]
    again = page.get("/page/api/messages", params={"channel": INCIDENT}).json()["version"]
    slack.post_as_user(REQUESTER, INCIDENT, "news")
    after = page.get("/page/api/messages", params={"channel": INCIDENT}).json()["version"]
    assert before == again < after


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"channel": "C0NOPE", "user": REQUESTER}, 404, "channel_not_found"),
        ({"channel": INCIDENT, "user": "U0NOBODY"}, 400, "user_not_found"),
    ],
)
def test_unknown_channels_and_people_are_refused(page, params, status, error):
    """A channel or person the workspace does not have is an error, not an empty view."""
    response = page.get("/page/api/messages", params=params)
    assert response.status_code == status
    assert response.json() == {"ok": False, "error": error}


# Typing and clicking.


def test_a_plain_message_is_posted_escaped_as_the_person(page, slack):
    """Text that is not a command is posted as the person, escaped as Slack stores it."""
    answer = page.post(
        "/page/api/message",
        json={"user": OUTSIDER, "channel": INCIDENT, "text": "hi <!channel> & co"},
    )
    assert answer.json()["ok"] is True
    [message] = slack.messages(INCIDENT)
    assert (message.user, message.text) == (OUTSIDER, "hi &lt;!channel&gt; &amp; co")


def test_an_unknown_command_gets_slackbots_note_and_never_reaches_a_bot(page, slack):
    """Like Slack, "/nope" is answered by Slackbot, only to the person who typed it."""
    answer = page.post(
        "/page/api/command", json={"user": REQUESTER, "channel": INCIDENT, "text": "/nope x"}
    )
    assert answer.json() == {"ok": False, "error": "unknown_command"}
    [note] = seen_by(page, REQUESTER)
    assert note["author"]["kind"] == "slackbot"
    assert note["text"].startswith("/nope is not a valid command")
    assert seen_by(page, APPROVER) == []


def test_a_command_without_a_bot_is_refused(page):
    """Before the bot listens there is nowhere to send a command to."""
    answer = page.post(
        "/page/api/command", json={"user": REQUESTER, "channel": INCIDENT, "text": REQUEST}
    )
    assert answer.status_code == 503
    assert answer.json()["error"] == "bot_not_connected"


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/page/api/command", b"not json", 400, "invalid_json"),
        ("/page/api/command", b"[]", 400, "invalid_json"),
        (
            "/page/api/command",
            b'{"user": "U0REQUESTER", "channel": "C0INCIDENT"}',
            400,
            "missing_text",
        ),
        (
            "/page/api/message",
            b'{"user": "U0REQUESTER", "channel": "C0INCIDENT", "text": 5}',
            400,
            "missing_text",
        ),
        (
            "/page/api/click",
            b'{"user": "U0REQUESTER", "channel": "C0INCIDENT", "ts": "1.2"}',
            400,
            "missing_action_id",
        ),
        (
            "/page/api/message",
            b'{"user": "U0NOBODY", "channel": "C0INCIDENT", "text": "x"}',
            400,
            "user_not_found",
        ),
        (
            "/page/api/message",
            b'{"user": "U0REQUESTER", "channel": "C0NOPE", "text": "x"}',
            404,
            "channel_not_found",
        ),
    ],
)
def test_malformed_requests_are_refused_with_a_reason(page, path, body, status, error):
    """The page API answers bad input with a status and an error code, never a traceback."""
    response = page.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json() == {"ok": False, "error": error}


def test_a_person_cannot_click_a_message_sent_only_to_someone_else(page, slack):
    """A click on another person's ephemeral message is refused as if it did not exist."""
    slack.request_url = "http://127.0.0.1:9/slack/events"
    note = slack.workspace.add_slackbot_notice(INCIDENT, REQUESTER, "for alice")
    body = {"user": APPROVER, "channel": INCIDENT, "ts": note.ts, "action_id": APPROVE}
    response = page.post("/page/api/click", json=body)
    assert response.status_code == 404
    assert response.json()["error"] == "message_not_found"


def test_a_command_reaches_the_real_bot_which_posts_the_card(demo, demo_page):
    """A command typed on the page is signed, sent to the bot, and its card appears for all."""
    answer = demo_page.post(
        "/page/api/command", json={"user": REQUESTER, "channel": INCIDENT, "text": REQUEST}
    )
    assert answer.json() == {"ok": True, "status": 200}

    wait_for_stored_card(demo.bot, demo.slack, INCIDENT)
    card = seen_by(demo_page, OUTSIDER)[0]
    assert card["author"]["kind"] == "app"
    assert "INC-42 demo" in str(card["blocks"])
    buttons = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [button["action_id"] for button in buttons] == [
        "dumptask.approve",
        "dumptask.deny",
        "dumptask.cancel",
    ]


def test_a_click_reaches_the_real_bot_and_its_refusal_is_ephemeral(demo, demo_page):
    """The requester's own approval is refused, and only the requester sees why."""
    demo_page.post(
        "/page/api/command", json={"user": REQUESTER, "channel": INCIDENT, "text": REQUEST}
    )
    wait_for_stored_card(demo.bot, demo.slack, INCIDENT)
    card = seen_by(demo_page, REQUESTER)[0]

    body = {"user": REQUESTER, "channel": INCIDENT, "ts": card["ts"], "action_id": APPROVE}
    assert demo_page.post("/page/api/click", json=body).json() == {"ok": True, "status": 200}

    refusal = eventually(
        lambda: [m for m in seen_by(demo_page, REQUESTER) if m["ephemeral"]], what="the refusal"
    )
    assert "someone else" in refusal[0]["text"]
    assert not [m for m in seen_by(demo_page, APPROVER) if m["ephemeral"]]


def test_a_click_on_a_button_the_message_never_had_is_refused(demo, demo_page):
    """Only buttons the message shows can be clicked."""
    demo_page.post(
        "/page/api/command", json={"user": REQUESTER, "channel": INCIDENT, "text": REQUEST}
    )
    wait_for_stored_card(demo.bot, demo.slack, INCIDENT)
    card = seen_by(demo_page, REQUESTER)[0]
    body = {"user": APPROVER, "channel": INCIDENT, "ts": card["ts"], "action_id": "dumptask.nope"}
    response = demo_page.post("/page/api/click", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "no_such_action"


# The demo stack and command.


def test_the_demo_stack_removes_its_database_when_stopped():
    """Stopping the demo stops every server and deletes the temporary database."""
    with DemoStack(port=0) as stack:
        directory = stack.directory
        url = stack.url
        assert httpx.get(url).status_code == 200
        assert eventually((directory / "demo.db").exists, what="the demo database")
    assert not directory.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_the_demo_command_serves_the_page_and_stops_on_ctrl_c(tmp_path):
    """`python -m bot demo --port 0` prints the page's URL, serves it, and exits 0 on SIGINT."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "--log-level", "WARNING", "demo", "--port", "0"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        found: list[str] = []

        def read_url() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                if match := re.search(r"Open (http://127\.0\.0\.1:\d+/) in a browser", line):
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read_url, daemon=True)
        reader.start()
        reader.join(timeout=30)
        assert found, (
            f"no URL printed; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        )
        response = httpx.get(found[0], timeout=10)
        assert response.status_code == 200
        assert "dumptask" in response.text

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# Direct messages.


def test_a_dm_with_the_app_is_shown_only_to_its_person(page, slack):
    """The person's DM opens from the page; its messages are theirs, and counted for the badge."""
    dm = page.post("/page/api/dm", json={"user": APPROVER}).json()["channel"]
    assert dm == slack.dm(APPROVER)
    call_api(slack, "chat.postMessage", channel=dm, text="Please approve dt-1")

    answer = page.get("/page/api/messages", params={"channel": dm, "user": APPROVER}).json()
    assert answer["channel"] == {
        "id": dm,
        "name": "directmessage",
        "is_im": True,
        "im_user": APPROVER,
    }
    assert texts(answer["messages"]) == ["Please approve dt-1"]
    assert answer["dms"] == [{"id": dm, "count": 1}]
    for reader in (REQUESTER, None):
        params = {"channel": dm} if reader is None else {"channel": dm, "user": reader}
        refused = page.get("/page/api/messages", params=params)
        assert (refused.status_code, refused.json()["error"]) == (403, "not_in_channel")
    channels = page.get("/page/api/workspace").json()["channels"]
    assert dm not in [channel["id"] for channel in channels]


def test_a_button_in_a_dm_copy_of_a_card_is_clicked_as_slack_would(page, slack):
    """A click on a card in a DM goes to the bot from that DM."""
    fake = FakeBot(slack.api_url, slack.workspace.bot_token)
    dm = slack.dm(APPROVER)
    blocks = [
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": APPROVE, "text": text("Approve"), "value": "dt-1"}
            ],
        }
    ]
    ts = call_api(slack, "chat.postMessage", channel=dm, text="card", blocks=blocks)["ts"]
    with ThreadedServer(fake.app()) as server:
        slack.request_url = f"{server.url}/slack/events"
        body = {"user": APPROVER, "channel": dm, "ts": ts, "action_id": APPROVE}
        assert page.post("/page/api/click", json=body).json() == {"ok": True, "status": 200}
    [click] = fake.payloads
    assert click["channel"] == {"id": dm, "name": "directmessage"}
    assert click["actions"][0]["value"] == "dt-1"


# Modals.


@pytest.fixture
def fake_bot(slack) -> Iterator[FakeBot]:
    """A fake bot behind the stand-in: it answers submissions, options and selections."""
    fake = FakeBot(slack.api_url, slack.workspace.bot_token)
    with ThreadedServer(fake.app()) as server:
        slack.request_url = f"{server.url}/slack/events"
        yield fake


def modal_of(client: httpx.Client, user: str) -> dict[str, Any] | None:
    params = {"channel": INCIDENT, "user": user}
    modal: dict[str, Any] | None = client.get("/page/api/messages", params=params).json()["modal"]
    return modal


def test_the_modal_comes_with_the_poll_of_its_person(page, slack):
    """The view the bot opened for a person comes with their poll, and nobody else's."""
    view_id = open_modal(slack, APPROVER, deny_view())
    modal = modal_of(page, APPROVER)
    assert modal is not None
    assert (modal["id"], modal["callback_id"]) == (view_id, "dumptask.deny")
    assert modal["title"] == text("Deny the request")
    assert modal["submit"] == text("Deny")
    assert [block["type"] for block in modal["blocks"]] == ["section", "input"]
    assert modal["values"] == {
        "reason": {"reason_text": {"type": "plain_text_input", "value": None}}
    }
    assert (modal["errors"], modal["failure"]) == ({}, None)
    assert modal_of(page, REQUESTER) is None


def test_a_submission_from_the_page_shows_the_bots_errors_then_closes(page, slack, fake_bot):
    """The page submits what was typed; the bot's errors come back with the poll, then it closes."""
    view_id = open_modal(slack, APPROVER, deny_view())
    fake_bot.answers = [{"response_action": "errors", "errors": {"reason": "Say why."}}]
    body = {"user": APPROVER, "view_id": view_id, "values": {"reason": "  "}}
    assert page.post("/page/api/view/submit", json=body).json() == {"ok": True, "status": 200}
    modal = modal_of(page, APPROVER)
    assert modal is not None
    assert modal["errors"] == {"reason": "Say why."}

    body["values"] = {"reason": "superseded by INC-43"}
    assert page.post("/page/api/view/submit", json=body).json()["ok"] is True
    assert modal_of(page, APPROVER) is None
    submitted = [p for p in fake_bot.payloads if p["type"] == "view_submission"]
    state = submitted[-1]["view"]["state"]["values"]
    assert state["reason"]["reason_text"]["value"] == "superseded by INC-43"


def test_an_empty_required_input_is_refused_by_the_page_without_the_bot(page, slack, fake_bot):
    """Like Slack's client, the page refuses an empty required input and says where."""
    view_id = open_modal(slack, APPROVER, deny_view())
    body = {"user": APPROVER, "view_id": view_id, "values": {"reason": ""}}
    response = page.post("/page/api/view/submit", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error": "missing_input",
        "errors": {"reason": "Please complete this required field."},
    }
    assert fake_bot.payloads == []


def test_the_page_asks_for_options_and_sends_choices(page, slack, fake_bot):
    """Typing in an external select asks the bot; a dispatching choice reaches it at once."""
    view_id = open_modal(slack, APPROVER, start_view())
    ask = {"user": APPROVER, "view_id": view_id, "action_id": "stream_select", "value": "click"}
    answer = page.post("/page/api/view/options", json=ask).json()
    assert answer["ok"] is True
    assert answer["sent"] is True
    assert [o["value"] for o in answer["options"]] == ["clicks-stream"]

    before = slack.view(view_id)
    choose = {**ask, "value": answer["options"][0]}
    assert page.post("/page/api/view/action", json=choose).json() == {
        "ok": True,
        "sent": True,
        "status": 200,
    }
    updated = slack.wait_for_view(APPROVER, other_than=before)
    assert updated.element("tasks_select")
    quiet = {**ask, "action_id": "priority_select", "value": "high"}
    assert page.post("/page/api/view/action", json=quiet).json() == {"ok": True, "sent": False}


def test_closing_from_the_page_closes_the_modal(page, slack, fake_bot):
    """The close button dismisses the modal; a view with notify_on_close tells the bot."""
    view_id = open_modal(slack, APPROVER, start_view())
    body = {"user": APPROVER, "view_id": view_id}
    assert page.post("/page/api/view/close", json=body).json() == {"ok": True, "notified": True}
    assert modal_of(page, APPROVER) is None
    assert [p["type"] for p in fake_bot.payloads] == ["view_closed"]


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/page/api/view/submit", {"values": {}}),
        ("/page/api/view/close", {}),
        ("/page/api/view/options", {"action_id": "stream_select", "value": "x"}),
        ("/page/api/view/action", {"action_id": "stream_select", "value": "x"}),
    ],
)
def test_a_view_the_person_does_not_see_is_refused(page, slack, fake_bot, path, extra):
    """Only the person a view is open for can act on it from the page."""
    view_id = open_modal(slack, APPROVER, start_view())
    response = page.post(path, json={"user": REQUESTER, "view_id": view_id, **extra})
    assert (response.status_code, response.json()["error"]) == (404, "view_not_found")


# The DIS console.


def test_without_dis_the_console_is_not_there(page):
    """A page served without a DIS stand-in has no console to offer."""
    response = page.get("/page/api/dis")
    assert (response.status_code, response.json()["error"]) == (404, "dis_not_connected")


def test_the_console_lists_the_demos_tasks_and_changes_one(demo, demo_page):
    """The console shows every stream's tasks; its Pause changes DIS, not through the bot."""
    assert demo_page.get("/page/api/workspace").json()["dis_console"] is True
    streams = demo_page.get("/page/api/dis").json()["streams"]
    assert [stream["name"] for stream in streams] == ["clicks-stream", "orders-stream"]
    orders = {task["name"]: task["state"] for task in streams[1]["tasks"]}
    assert orders == {
        "orders-to-obs": "RUNNING",
        "orders-archive": "PAUSED",
        "orders-to-dli": "ERROR",
    }

    body = {"stream": "orders-stream", "task": "As805BudhcH1lDs6gbn", "action": "stop"}
    answer = demo_page.post("/page/api/dis/action", json=body).json()
    assert (answer["task"]["name"], answer["task"]["state"]) == ("orders-to-obs", "PAUSED")
    assert demo.dis.task_state("orders-stream", "orders-to-obs") == "PAUSED"
    assert demo.dis.action_calls() == []


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"stream": "orders-stream", "task": "nope", "action": "stop"}, 404, "task_not_found"),
        ({"stream": "nope", "task": "orders-to-obs", "action": "stop"}, 404, "task_not_found"),
        (
            {"stream": "orders-stream", "task": "orders-to-obs", "action": "delete"},
            400,
            "invalid_action",
        ),
    ],
)
def test_the_console_refuses_what_it_cannot_do(demo, demo_page, body, status, error):
    """An unknown stream or task, or an action other than start or stop, is refused."""
    response = demo_page.post("/page/api/dis/action", json=body)
    assert (response.status_code, response.json()["error"]) == (status, error)
