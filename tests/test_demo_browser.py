"""The demo page in headless Chromium: the whole approval flow, clicked through as people would.

Debian's Chromium (/usr/bin/chromium) is launched through Playwright, never a downloaded browser.
Without it the tests skip, except under CI=true, where a missing browser is a failure (CI
installs it). The final channel is saved to out/demo-final.png as a CI artifact.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from bot.demo import BOT_TOKEN, CHANNEL, DemoStack
from tests.flow_helpers import wait_for_stored_card

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


@pytest.fixture
def page(browser, demo) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(demo.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=WAIT_MS)
    yield page
    context.close()
    assert errors == [], f"the page raised: {errors}"


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
