"""Starting and stopping what the benchmark measures, each as a process of its own.

The bot runs exactly as an operator runs it (``python -m bot serve`` with environment
variables), so whatever it does inside (threads, a worker process) is measured as a whole. The
baseline and the two stand-ins get processes of their own too, so none of them competes with
the load generator for a GIL. Every process starts in its own session with its output in a log
file, and is stopped with SIGTERM (SIGKILL if it lingers).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from bench.config import BOT_TOKEN, DIS_AK, DIS_SK, PROJECT, SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_environment(
    dis_url: str, slack_api_url: str, database_url: str, **overrides: object
) -> dict[str, str]:
    """What an operator would set for a bot wired to the stand-ins.

    DIS may take 2 s a call in the slow-cloud measurement, so its timeout is well above that;
    no reminders, and approvals outlive any run, so nothing but the load makes the bot work.
    """
    values: dict[str, object] = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "DIS_ENDPOINT": dis_url,
        "DIS_PROJECT_ID": PROJECT,
        "DIS_ACCESS_KEY": DIS_AK,
        "DIS_SECRET_KEY": DIS_SK,
        "DIS_TIMEOUT_SECONDS": 10,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "DUMPTASK_REMIND_AFTER_SECONDS": 0,
        "DUMPTASK_APPROVAL_TTL_SECONDS": 3600,
        "DUMPTASK_VERIFY_INTERVAL_SECONDS": 0.2,
    }
    values |= {key.upper(): value for key, value in overrides.items()}
    return {key: str(value) for key, value in values.items()}


class Process:
    """One child process with its log file; ``with`` stops it whatever happened."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self._argv = argv
        self._env = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", **env}
        self.log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        """The process id (the root of its tree)."""
        assert self._process is not None
        return self._process.pid

    def spawn(self, *, pipe_stdout: bool = False) -> None:
        """Start the process; its stderr (and stdout unless piped) go to the log file."""
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                self._argv,
                env=self._env,
                cwd=ROOT,
                stdout=subprocess.PIPE if pipe_stdout else log,
                stderr=log if pipe_stdout else subprocess.STDOUT,
                start_new_session=True,
            )

    def first_line(self, timeout: float = READY_TIMEOUT_SECONDS) -> str:
        """The first line the process printed (a stand-in prints its URL once it listens)."""
        assert self._process is not None
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline().decode().strip() if ready else ""
        if not line:
            raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}")
        return line

    def wait_healthy(self, url: str, timeout: float = READY_TIMEOUT_SECONDS) -> float:
        """Poll ``url`` until it answers 200; the seconds since the process was spawned."""
        assert self._process is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start:\n{self.log()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return time.monotonic() - self.started_at
                time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not become healthy:\n{self.log()[-3000:]}")

    def log(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class StandIn(Process):
    """A stand-in server (``bench.dis_server`` or ``bench.slack_server``) and its URL."""

    def __init__(self, name: str, module: str, args: list[str], log_dir: Path) -> None:
        super().__init__(name, [sys.executable, "-m", module, *args], {}, log_dir)
        self.url = ""

    def start(self) -> Self:
        """Start it and return once it listens."""
        self.spawn(pipe_stdout=True)
        self.url = self.first_line()
        return self


class Server(Process):
    """Something serving Slack's requests on a port: the bot, or the bare Bolt baseline."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, port: int
    ) -> None:
        self.port = port
        super().__init__(name, argv, {**env, "PORT": str(port)}, log_dir)
        self.startup_seconds = float("nan")

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        """Where Slack sends commands and clicks."""
        return f"{self.url}/slack/events"

    def start(self) -> Self:
        """Start it and return once ``/healthz`` answers 200, timing the start-up."""
        self.spawn()
        self.startup_seconds = self.wait_healthy(f"{self.url}/healthz")
        return self


def bot(name: str, env: dict[str, str], log_dir: Path) -> Server:
    """The bot in HTTP mode, as ``python -m bot serve``."""
    return Server(name, [sys.executable, "-m", "bot", "serve"], env, log_dir, free_port())


def baseline(name: str, slack_api_url: str, log_dir: Path) -> Server:
    """The bare Bolt app (``bench.baseline``)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.baseline", "--port", str(port)]
    return Server(name, [*argv, "--slack-api-url", slack_api_url], {}, log_dir, port)
