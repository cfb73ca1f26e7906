"""The demo page in headless Chromium: the whole approval flow, clicked through as people would.

Debian's Chromium (/usr/bin/chromium) is launched through Playwright, never a downloaded browser.
Without it the tests skip, except under CI=true, where a missing browser is a failure (CI
installs it). The final channel is saved to out/demo-final.png as a CI artifact.

The page's own modal rendering is tested against a bare Slack stand-in whose requests go to a
fake bot (``tests.modal_helpers``), opening modals through the Web API with a trigger id minted
for the person at the keyboard; the real bot's dialogs (Deny), the DIS console's drift and a
timed pause's Resume now are then clicked through with the whole demo.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from bot.demo import BOT_TOKEN, CHANNEL, DemoStack
from bot.sim.server import ThreadedServer
from bot.sim.slack import SlackStandIn
from bot.sim.slack_page import PageConfig, install_page
from tests.flow_helpers import wait_for_stored_card
from tests.modal_helpers import FakeBot, call_api, deny_view, open_modal, option, start_view

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "out" / "demo-final.png"
WAIT_MS = 30_000
REQUEST = '/dumptask start orders-stream orders-archive --reason "INC-42 demo"'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def demo() -> Iterator[DemoStack]:
    with DemoStack(port=0) as stack:
        yield stack


def open_page(browser: Browser, url: str) -> Iterator[Page]:
    """The page at ``url`` once it is ready; fails the test if the page raised anything."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=WAIT_MS)
    yield page
    context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture
def page(browser, demo) -> Iterator[Page]:
    yield from open_page(browser, demo.url)


@pytest.fixture
def modal_slack() -> Iterator[SlackStandIn]:
    """A bare Slack stand-in serving the page, with no DIS and no real bot."""
    stand_in = SlackStandIn(bot_token=BOT_TOKEN, signing_secret="browser-modal-secret")
    install_page(stand_in.with_sample_workspace(), PageConfig())
    with stand_in:
        yield stand_in


@pytest.fixture
def fake_bot(modal_slack) -> Iterator[FakeBot]:
    fake = FakeBot(modal_slack.api_url, BOT_TOKEN)
    with ThreadedServer(fake.app()) as server:
        modal_slack.request_url = f"{server.url}/slack/events"
        yield fake


@pytest.fixture
def modal_page(browser, modal_slack, fake_bot) -> Iterator[Page]:
    yield from open_page(browser, f"{modal_slack.url}/")


def submissions(bot: FakeBot) -> list[dict[str, Any]]:
    return [payload for payload in bot.payloads if payload["type"] == "view_submission"]


def act_as(page: Page, user_id: str) -> None:
    page.locator(f'#people [data-user="{user_id}"]').click()
    expect(page.locator(f'#people [data-user="{user_id}"]')).to_have_attribute(
        "aria-checked", "true"
    )


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def wait_until(page: Page, condition: Callable[[], object], what: str) -> None:
    """Wait for a condition on the test's side, letting Playwright handle events meanwhile."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(20)


def approve_and_confirm(page: Page) -> None:
    card = page.locator(".message.from-app").first
    card.get_by_role("button", name="Approve").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Start 1 dump task?")
    dialog.get_by_role("button", name="Yes, start").click()
    expect(dialog).to_have_count(0)


def test_request_refusal_and_approval_in_the_browser(page, demo):
    """Alice asks, cannot approve her own request, bob approves; card and thread show RUNNING."""
    expect(page.get_by_role("textbox", name="Message")).to_have_attribute(
        "placeholder", re.compile(re.escape("start|stop <stream> <task>..."))
    )
    send(page, REQUEST)
    card = page.locator(".message.from-app").first
    expect(card).to_contain_text("Approval needed: start 1 dump task", timeout=WAIT_MS)
    wait_for_stored_card(demo.bot, demo.slack, CHANNEL)
    expect(card).to_contain_text("orders-archive")
    expect(card).to_contain_text("INC-42 demo")
    expect(card.locator(".mention", has_text="@oncall-leads")).to_be_visible()

    approve_and_confirm(page)
    refusal = page.locator(".message.ephemeral")
    expect(refusal).to_contain_text("Only visible to you", timeout=WAIT_MS)
    expect(refusal).to_contain_text("someone else")

    act_as(page, "U0APPROVER1")
    expect(page.locator(".message.ephemeral")).to_have_count(0, timeout=WAIT_MS)
    approve_and_confirm(page)
    expect(card).to_contain_text("succeeded", timeout=WAIT_MS)
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    reply = page.locator(".thread .message.reply")
    expect(reply).to_contain_text("orders-archive", timeout=WAIT_MS)
    expect(reply).to_contain_text("RUNNING")

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.mouse.move(0, 0)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


def test_deny_closes_the_dialog_without_clicking(page, demo):
    """The confirm dialog's "Go back" closes it and sends nothing to the bot."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(urlsplit(request.url).path))
    send(page, REQUEST)
    card = page.locator(".message.from-app").first
    card.get_by_role("button", name="Approve").click(timeout=WAIT_MS)
    wait_for_stored_card(demo.bot, demo.slack, CHANNEL)
    page.get_by_role("dialog").get_by_role("button", name="Go back").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    # A click would leave the page at once, and requests are reported in the order the page
    # makes them: once the next message typed has gone out, no click can follow.
    send(page, "never mind")
    wait_until(page, lambda: "/page/api/message" in sent, "the next message to go out")
    assert "/page/api/click" not in sent
    expect(card).to_contain_text("Approval needed")
    expect(page.locator(".message.ephemeral")).to_have_count(0)
    assert demo.slack.calls_to("chat.update") == []
    assert demo.slack.calls_to("chat.postEphemeral") == []


def test_user_text_is_shown_literally_and_unknown_blocks_as_json(page, demo):
    """Escaped text shows as typed (never markup), mentions resolve, odd blocks stay visible."""
    blocks = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Reason*\n&lt;!channel&gt; &lt;b&gt;hi&lt;/b&gt; &amp; <@U0APPROVER2> "
                "<#C0RANDOM> <!subteam^S0ONCALL> <https://example.com/x|the runbook> "
                "<!date^1732800000^{date_num}|2024-11-28 13:20 UTC>",
            },
        },
        {"type": "rich_text", "elements": []},
    ]
    answer = httpx.post(
        f"{demo.slack.api_url}chat.postMessage",
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        json={"channel": "C0INCIDENT", "text": "fallback", "blocks": blocks},
    ).json()
    assert answer["ok"], answer
    section = page.locator(".bk-section").first
    expect(section).to_contain_text(
        "<!channel> <b>hi</b> & @carol #random @oncall-leads the runbook", timeout=WAIT_MS
    )
    expect(section.locator("b", has_text="hi")).to_have_count(0)
    expect(section.get_by_role("link", name="the runbook")).to_have_attribute(
        "href", "https://example.com/x"
    )
    expect(section.locator("time")).to_have_text(re.compile(r"^2024-11-2[789]$"))
    expect(page.locator(".bk-unknown")).to_contain_text('"type": "rich_text"')


def test_switching_people_during_a_poll_shows_only_the_new_persons_messages(page):
    """An answer still on its way for the previous person is dropped, with their ephemerals."""
    ephemeral = page.locator(".message.ephemeral")
    send(page, "/dumptask help")
    expect(ephemeral).to_contain_text("/dumptask start", timeout=WAIT_MS)
    act_as(page, "U0APPROVER1")
    send(page, "/dumptask list orders-stream")
    expect(ephemeral).to_contain_text("Dump tasks of stream", timeout=WAIT_MS)
    act_as(page, "U0REQUESTER")
    expect(ephemeral).to_contain_text("/dumptask start", timeout=WAIT_MS)

    # Hold alice's next poll in flight, switch people twice, then let its answer arrive.
    held: list[Route] = []

    def alices_poll(url: str) -> bool:
        return "/page/api/messages?" in url and "user=U0REQUESTER" in url

    def hold(route: Route) -> None:  # Playwright cannot take a bound builtin like held.append
        held.append(route)

    page.route(alices_poll, hold)
    wait_until(page, lambda: held, "the page to poll for alice")
    act_as(page, "U0APPROVER2")
    act_as(page, "U0APPROVER1")
    held[0].continue_()
    page.unroute(alices_poll)

    expect(ephemeral).to_have_count(1, timeout=WAIT_MS)
    expect(ephemeral).to_contain_text("Dump tasks of stream", timeout=WAIT_MS)
    expect(ephemeral).not_to_contain_text("/dumptask start")


# Modals, driven by a fake bot.


def test_a_modal_the_bot_opens_shows_its_errors_until_it_is_right(
    modal_page, modal_slack, fake_bot
):
    """Bob sees the bot's modal, submits blanks, reads the bot's error, fixes it; it closes."""
    act_as(modal_page, "U0APPROVER1")
    fake_bot.answers = [{"response_action": "errors", "errors": {"reason": "Say why, please."}}]
    open_modal(modal_slack, "U0APPROVER1", deny_view())
    dialog = modal_page.get_by_role("dialog", name="Deny the request")
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    expect(dialog).to_contain_text("Deny dt-k7m2q9xa?")
    reason = dialog.get_by_label("Why?")

    dialog.get_by_role("button", name="Deny").click()
    expect(dialog.locator(".view-error")).to_have_text("Please complete this required field.")
    assert fake_bot.payloads == []

    reason.fill("   ")
    dialog.get_by_role("button", name="Deny").click()
    expect(dialog.locator(".view-error")).to_have_text("Say why, please.", timeout=WAIT_MS)
    expect(reason).to_have_value("   ")

    reason.fill("Superseded by INC-43")
    dialog.get_by_role("button", name="Deny").click()
    expect(dialog).to_have_count(0, timeout=WAIT_MS)
    [blank, fixed] = submissions(fake_bot)
    assert blank["view"]["state"]["values"]["reason"]["reason_text"]["value"] == "   "
    assert fixed["view"]["state"]["values"]["reason"]["reason_text"] == {
        "type": "plain_text_input",
        "value": "Superseded by INC-43",
    }
    assert fixed["user"]["id"] == "U0APPROVER1"
    assert fixed["view"]["private_metadata"] == "dt-k7m2q9xa"


def test_a_stream_chosen_from_the_bots_options_updates_the_modal(modal_page, modal_slack, fake_bot):
    """Typing asks the bot for streams; choosing one makes it add the stream's tasks."""
    open_modal(modal_slack, "U0REQUESTER", start_view())
    dialog = modal_page.get_by_role("dialog", name="Start dump tasks")
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    dialog.get_by_label("Reason").fill("INC-42")
    stream = dialog.get_by_role("combobox", name="Stream")
    stream.fill("clicks")
    dialog.get_by_role("option", name="clicks-stream").click()

    tasks = dialog.get_by_label("Tasks")
    expect(tasks).to_be_visible(timeout=WAIT_MS)
    expect(stream).to_have_value("clicks-stream")
    expect(dialog.get_by_label("Reason")).to_have_value("INC-42")
    tasks.select_option(["clicks-to-obs"])
    dialog.get_by_role("radio", name="stop").check()
    dialog.get_by_label("Post the card in").select_option("C0INCIDENT")
    dialog.get_by_role("button", name="Ask for approval").click()
    expect(dialog).to_have_count(0, timeout=WAIT_MS)

    kinds = [payload["type"] for payload in fake_bot.payloads]
    assert kinds == ["block_suggestion", "block_actions", "view_submission"]
    values = submissions(fake_bot)[0]["view"]["state"]["values"]
    assert values["stream"]["stream_select"]["selected_option"] == option("clicks-stream")
    assert values["tasks"]["tasks_select"]["selected_options"] == [option("clicks-to-obs")]
    assert values["action"]["action_choice"]["selected_option"] == option("stop")
    assert values["channel"]["channel_select"]["selected_conversation"] == "C0INCIDENT"
    assert values["note"]["note_text"]["value"] == "INC-42"


def test_closing_the_modal_tells_the_bot_when_asked(modal_page, modal_slack, fake_bot):
    """The modal's Escape closes it; its view asked to be told, so the bot hears view_closed."""
    open_modal(modal_slack, "U0REQUESTER", start_view())
    dialog = modal_page.get_by_role("dialog", name="Start dump tasks")
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    modal_page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    wait_until(modal_page, lambda: fake_bot.payloads, "view_closed to reach the bot")
    assert fake_bot.payloads[0]["type"] == "view_closed"
    assert modal_slack.open_view("U0REQUESTER") is None


# The demo's DMs and DIS console.


def test_a_dm_from_the_app_links_back_to_the_card(page, demo):
    """A DM from the app shows as new in the sidebar; its permalink opens the card in place."""
    card = call_api(demo.slack, "chat.postMessage", channel=CHANNEL, text="The card")["ts"]
    link = call_api(demo.slack, "chat.getPermalink", channel=CHANNEL, message_ts=card)["permalink"]
    call_api(
        demo.slack,
        "chat.postMessage",
        channel="U0APPROVER1",
        text=f"Please look at <{link}|the request>",
    )
    act_as(page, "U0APPROVER1")
    app = page.get_by_role("button", name="dumptask, 1 new")
    expect(app).to_be_visible(timeout=WAIT_MS)
    app.click()
    expect(page.locator("#channel-title")).to_have_text("dumptask")
    expect(page.get_by_role("button", name="dumptask", exact=True)).to_be_visible()
    page.get_by_role("link", name="the request").click()
    expect(page.locator("#channel-title")).to_have_text("# incident")
    expect(page.locator(f'.message.highlight[data-ts="{card}"]')).to_contain_text("The card")

    act_as(page, "U0REQUESTER")
    page.get_by_role("button", name="dumptask", exact=True).click()
    expect(page.locator("#channel-title")).to_have_text("dumptask")
    expect(page.locator("#messages .message")).to_have_count(0)


def test_the_dis_console_pauses_and_starts_a_task_behind_the_bots_back(page, demo):
    """The console's Pause and Start change the task in DIS; the bot made no call."""
    console = page.get_by_role("complementary", name="DIS console")
    row = console.locator('[data-stream="orders-stream"] [data-task="orders-to-obs"]')
    expect(row).to_contain_text("RUNNING", timeout=WAIT_MS)
    row.get_by_role("button", name="Pause orders-to-obs").click()
    expect(row).to_contain_text("PAUSED", timeout=WAIT_MS)
    assert demo.dis.task_state("orders-stream", "orders-to-obs") == "PAUSED"

    row.get_by_role("button", name="Start orders-to-obs").click()
    expect(row).to_contain_text("STARTING", timeout=WAIT_MS)
    expect(row).to_contain_text("RUNNING", timeout=WAIT_MS)
    assert demo.dis.action_calls() == []

    page.get_by_role("button", name="DIS console").click()
    expect(console).to_be_hidden()


# -- the real bot's dialogs and buttons -------------------------------------------------------


def test_deny_with_a_reason_in_the_real_bots_dialog(page, demo):
    """Bob denies alice's request in the bot's dialog; the card says denied, by him, and why."""
    send(page, REQUEST)
    card = page.locator(".message.from-app").first
    expect(card).to_contain_text("Approval needed", timeout=WAIT_MS)
    wait_for_stored_card(demo.bot, demo.slack, CHANNEL)
    act_as(page, "U0APPROVER1")
    card.get_by_role("button", name="Deny").click()
    dialog = page.get_by_role("dialog", name="Deny the request")
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    dialog.get_by_label("Why?").fill("   ")
    dialog.get_by_role("button", name="Deny").click()
    expect(dialog.locator(".view-error")).to_contain_text("Say why", timeout=WAIT_MS)
    dialog.get_by_label("Why?").fill("INC-42 is fixed upstream")
    dialog.get_by_role("button", name="Deny").click()
    expect(dialog).to_have_count(0, timeout=WAIT_MS)
    expect(card).to_contain_text("denied", timeout=WAIT_MS)
    expect(card).to_contain_text("INC-42 is fixed upstream")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    assert demo.dis.action_calls() == []


def test_a_task_changed_in_the_console_sends_the_request_back_for_approval(page, demo):
    """After the card, alice starts the task in the console; bob's approval finds it changed."""
    send(page, REQUEST)
    card = page.locator(".message.from-app").first
    expect(card).to_contain_text("PAUSED", timeout=WAIT_MS)
    wait_for_stored_card(demo.bot, demo.slack, CHANNEL)
    console = page.get_by_role("complementary", name="DIS console")
    row = console.locator('[data-stream="orders-stream"] [data-task="orders-archive"]')
    row.get_by_role("button", name="Start orders-archive").click()
    expect(row).to_contain_text("RUNNING", timeout=WAIT_MS)
    act_as(page, "U0APPROVER1")
    approve_and_confirm(page)
    expect(card).to_contain_text("changed after the approval", timeout=WAIT_MS)
    expect(card.get_by_role("button", name="Approve")).to_be_visible()
    assert demo.dis.action_calls() == []


def test_a_timed_pause_ends_early_with_resume_now(page, demo):
    """A 10-minute pause, approved by bob; alice's Resume now starts the task at once."""
    send(page, '/dumptask stop orders-stream orders-to-obs --for 10m --reason "INC-42"')
    card = page.locator(".message.from-app").first
    expect(card).to_contain_text("Timed pause", timeout=WAIT_MS)
    wait_for_stored_card(demo.bot, demo.slack, CHANNEL)
    act_as(page, "U0APPROVER1")
    card.get_by_role("button", name="Approve").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, stop").click()
    expect(card).to_contain_text("Resumes at", timeout=WAIT_MS)
    act_as(page, "U0REQUESTER")
    card.get_by_role("button", name="Resume now").click()
    expect(card).to_contain_text("Resumed", timeout=WAIT_MS)
    assert [call.action for call in demo.dis.action_calls()] == ["stop", "start"]
