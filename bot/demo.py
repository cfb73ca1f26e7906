"""``dumptask-bot demo``: the whole flow on this machine, clickable in a browser.

Three servers on loopback, wired the way production is:

- the DIS stand-in with the sample streams of ``dis_sample.json`` (tasks RUNNING, PAUSED and
  ERROR; a start takes two seconds to show);
- the Slack stand-in with the sample workspace (alice asks, bob and carol approve, mallory is
  an outsider, all in ``#incident``) and the page (``slack_page``) that shows the channel, the
  people's DMs with the app, the modals the bot opens, and a DIS console beside them;
- the real bot, built by ``create_bot`` and served by uvicorn exactly as ``serve`` does, with a
  fresh SQLite database in a temporary directory.

``DemoStack`` starts and stops them together, for ``run_demo`` and for the tests. The demo reads
nothing from the environment or ``.env``: a real configuration lying around must not leak in.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Self

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot.settings import Settings
from bot.sim.bot_thread import BotThread
from bot.sim.dis import SAMPLE_DATA, DisStandIn
from bot.sim.dis_data import load_data
from bot.sim.server import StartStop, stop_signals
from bot.sim.slack import SlackStandIn
from bot.sim.slack_page import PageConfig, install_page

__all__ = ["DEFAULT_PORT", "DemoStack", "run_demo"]

DEFAULT_PORT = 8080
HOST = "127.0.0.1"
# Made up: the stand-in accepts them and nothing else does.
BOT_TOKEN = "xoxb-demo-bot-token"  # noqa: S105 - a sample value, not a secret
SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - a sample value, not a secret
CHANNEL = "C0INCIDENT"
APPROVERS = "S0ONCALL"  # the sample workspace's on-call leads: bob and carol
ROLES = {
    "U0REQUESTER": "requester",
    "U0APPROVER1": "approver",
    "U0APPROVER2": "approver",
    "U0OUTSIDER": "outsider",
}
VERIFY_INTERVAL_SECONDS = 0.5


class DemoSettings(Settings):
    """``Settings`` built only from the values given in code, never from the environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the constructor's arguments count."""
        del settings_cls, env_settings, dotenv_settings, file_secret_settings
        return (init_settings,)


def demo_settings(slack: SlackStandIn, dis: DisStandIn, database: Path) -> Settings:
    """The bot's settings for the demo: the stand-ins' URLs, the sample AK/SK, bob and carol."""
    data = load_data(SAMPLE_DATA)
    credential = data.credentials[0]
    return DemoSettings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        dis_endpoint=dis.url,
        dis_project_id=data.project_id,
        dis_access_key=credential.access_key,
        dis_secret_key=credential.secret_key,
        dumptask_approvers=[APPROVERS],
        dumptask_verify_interval_seconds=VERIFY_INTERVAL_SECONDS,
        # So a person can watch a timed pause end: `--for 30s` is accepted in the demo only.
        dumptask_allow_seconds=True,
        database_url=f"sqlite:///{database}",
        host=HOST,
        port=0,
    )


class DemoStack(StartStop):
    """The DIS stand-in, the Slack stand-in with its page, and the real bot, on loopback.

    ``port`` is the page's (the Slack stand-in's) port; 0 picks a free one, see ``url``. The
    other servers always take free ports. Stopping removes the demo database.
    """

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        self._port = port
        self._resources: contextlib.ExitStack | None = None
        self._slack: SlackStandIn | None = None
        self._dis: DisStandIn | None = None
        self._bot: BotThread | None = None
        self._directory: Path | None = None

    @property
    def slack(self) -> SlackStandIn:
        """The Slack stand-in (its workspace holds what the page shows)."""
        assert self._slack is not None, "the demo is not running"
        return self._slack

    @property
    def dis(self) -> DisStandIn:
        """The DIS stand-in."""
        assert self._dis is not None, "the demo is not running"
        return self._dis

    @property
    def bot(self) -> BotThread:
        """The bot's server thread."""
        assert self._bot is not None, "the demo is not running"
        return self._bot

    @property
    def directory(self) -> Path:
        """The temporary directory holding the demo database, removed on stop."""
        assert self._directory is not None, "the demo is not running"
        return self._directory

    @property
    def url(self) -> str:
        """The page's address."""
        return f"{self.slack.url}/"

    def start(self) -> Self:
        """Start DIS, Slack and the bot; on any failure stop what had started, then raise."""
        if self._resources is not None:
            raise RuntimeError("the demo is already running")
        with contextlib.ExitStack() as resources:
            directory = Path(
                resources.enter_context(tempfile.TemporaryDirectory(prefix="dumptask-demo-"))
            )
            dis = resources.enter_context(DisStandIn.from_file(SAMPLE_DATA, host=HOST))
            slack = SlackStandIn(
                bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, host=HOST, port=self._port
            ).with_sample_workspace()
            install_page(slack, PageConfig(roles=ROLES, default_channel=CHANNEL), dis=dis)
            resources.enter_context(slack)
            settings = demo_settings(slack, dis, directory / "demo.db")
            bot = resources.enter_context(BotThread(settings))
            slack.request_url = bot.events_url
            self._resources = resources.pop_all()
        self._directory, self._dis, self._slack, self._bot = directory, dis, slack, bot
        return self

    def stop(self) -> None:
        """Stop the bot, then the stand-ins, and delete the demo database."""
        resources, self._resources = self._resources, None
        if resources is not None:
            resources.close()
        self._slack = self._dis = self._bot = self._directory = None


def run_demo(port: int = DEFAULT_PORT) -> int:
    """Run the demo until Ctrl-C (or SIGTERM); return the process exit status."""
    with stop_signals() as stopping:
        try:
            stack = DemoStack(port=port).start()
        except (OSError, RuntimeError) as error:
            print(f"dumptask-bot demo: could not start: {error}", file=sys.stderr)  # noqa: T201
            return 1
        try:
            print(f"Open {stack.url} in a browser", flush=True)  # noqa: T201 - the output
            print("Press Ctrl-C to stop.", flush=True)  # noqa: T201
            while not stopping.wait(timeout=0.5):
                pass
            print("Stopping the demo...", flush=True)  # noqa: T201
        finally:
            stack.stop()
    return 0
