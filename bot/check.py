"""``dumptask-bot check``: tell an operator what is misconfigured before users find out.

Each item gets one verdict line: the configuration itself, Slack's ``auth.test``, the store, and
the DIS list API for a stream the operator names.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from bot.dis.client import DisClient, build_http_client, retry_policy_from
from bot.errors import DisError, StoreError
from bot.settings import Settings
from bot.slack.client import slack_client
from bot.store.sql import open_store


@dataclass(frozen=True, slots=True)
class Verdict:
    """One checked item: whether it works, and what was seen or what to do."""

    item: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``OK   item: detail`` or ``FAIL item: detail``."""
        return f"{'OK  ' if self.ok else 'FAIL'} {self.item}: {self.detail}"


async def check_slack(settings: Settings) -> Verdict:
    """Call ``auth.test`` with the bot token."""
    client = slack_client(settings)
    try:
        response = await client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "unknown_error")
        return Verdict("Slack auth.test", ok=False, detail=f"{code}; check SLACK_BOT_TOKEN")
    except OSError as error:
        return Verdict("Slack auth.test", ok=False, detail=f"cannot reach Slack ({error})")
    return Verdict(
        "Slack auth.test",
        ok=True,
        detail=f"bot user {response.get('user')} ({response.get('user_id')}) "
        f"in team {response.get('team')}",
    )


async def check_store(settings: Settings) -> Verdict:
    """Open the store (creating its schema) and ping it."""
    try:
        store = await open_store(settings.database_url)
        try:
            await store.ping()
        finally:
            await store.close()
    except StoreError as error:
        return Verdict("database", ok=False, detail=str(error))
    return Verdict("database", ok=True, detail="reachable, schema ready")


async def check_dis(settings: Settings, stream: str | None) -> Verdict:
    """List the tasks of ``stream`` with the configured AK/SK."""
    if not stream:
        return Verdict(
            "DIS list API", ok=False, detail="no stream given; run `dumptask-bot check <stream>`"
        )
    http = build_http_client(settings)
    try:
        client = DisClient(http, settings.dis_project_id, retry_policy_from(settings))
        tasks = await client.list_tasks(stream)
    except DisError as error:
        return Verdict(
            f"DIS list {stream}", ok=False, detail=f"{error.summary}. {error.kind.advice}"
        )
    finally:
        await http.aclose()
    names = ", ".join(f"{task.name} ({task.state})" for task in tasks) or "no dump tasks"
    return Verdict(f"DIS list {stream}", ok=True, detail=f"{len(tasks)} task(s): {names}")


async def run_checks(settings: Settings, stream: str | None) -> list[Verdict]:
    """Every check, in the order an operator would fix them."""
    return [
        Verdict("configuration", ok=True, detail="all settings valid"),
        await check_slack(settings),
        await check_store(settings),
        await check_dis(settings, stream),
    ]
