"""Real processes for the fault suite: the bot as ``dumptask-bot serve``, and a throwaway PostgreSQL.

The bot runs exactly as an operator runs it (a subprocess with environment variables), so the
suite can kill it (SIGKILL), stop it (SIGTERM) and restart it. The PostgreSQL cluster is created
for the test on its own port and removed afterwards, so stopping or freezing it never touches the
machine's shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

from bot.audit import AuditEvent
from bot.jobs import Job
from bot.lifecycle import Request
from bot.sim.dis import DisStandIn
from bot.sim.slack import SlackStandIn
from bot.store.sql import SqlStore
from tests.conftest import BOT_TOKEN, DIS_AK, DIS_SK, PROJECT, SIGNING_SECRET

T = TypeVar("T")

POSTGRES_LIB = Path("/usr/lib/postgresql")
PG_BIN = max(POSTGRES_LIB.iterdir()) / "bin" if POSTGRES_LIB.exists() else POSTGRES_LIB / "15/bin"


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_environment(
    dis: DisStandIn, slack: SlackStandIn, database_url: str, **overrides: object
) -> dict[str, str]:
    """The environment an operator would set for a bot wired to the stand-ins."""
    values: dict[str, object] = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DIS_ENDPOINT": dis.url,
        "DIS_PROJECT_ID": PROJECT,
        "DIS_ACCESS_KEY": DIS_AK,
        "DIS_SECRET_KEY": DIS_SK,
        "DIS_TIMEOUT_SECONDS": 2,
        "DIS_RETRY_ATTEMPTS": 2,
        "DIS_RETRY_TOTAL_SECONDS": 3,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "DUMPTASK_VERIFY_INTERVAL_SECONDS": 0.2,
        "DUMPTASK_VERIFY_TIMEOUT_SECONDS": 5,
        "DUMPTASK_LEASE_SECONDS": 3,
        "SHUTDOWN_GRACE_SECONDS": 5,
    }
    values |= {key.upper(): value for key, value in overrides.items()}
    return {key: str(value) for key, value in values.items()}


class BotProcess:
    """``python -m bot serve`` in its own process, with its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self._env = {"PATH": os.environ.get("PATH", ""), **env, "PORT": str(self.port)}
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The bot's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        """Where Slack sends commands and clicks."""
        return f"{self.url}/slack/events"

    @property
    def pid(self) -> int:
        """The process id."""
        assert self._process is not None
        return self._process.pid

    def start(self, timeout: float = 60) -> Self:
        """Start serving and return once ``/healthz`` answers 200."""
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the bot exited at start:\n{self.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"the bot did not become healthy:\n{self.log()[-3000:]}")

    def log(self) -> str:
        """Everything the process logged so far."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process dies at once, holding whatever it held."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the process to exit by itself; its exit status."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(timeout=timeout)

    def signal(self, sig: int) -> None:
        """Send any signal (SIGTERM without waiting, say)."""
        assert self._process is not None
        self._process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; its exit status."""
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Whatever state it is in, make sure it is gone (test teardown)."""
        if self.running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.terminate(timeout=15)
        self.kill()


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started that are still alive (``serve``'s worker), from /proc."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class StoreReader:
    """The test's own view of the bot's database, through the real store code."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url

    def _run(self, call: Callable[[SqlStore], Coroutine[Any, Any, T]]) -> T:
        async def run() -> T:
            store = SqlStore(self._url)
            try:
                return await call(store)
            finally:
                await store.close()

        return asyncio.run(run())

    def newest(self, requester: str) -> Request | None:
        """The requester's newest request."""
        found = self._run(lambda store: store.recent_for(requester, limit=1))
        return found[0] if found else None

    def get(self, request_id: str) -> Request | None:
        """One request."""
        return self._run(lambda store: store.get(request_id))

    def audit(self, request_id: str) -> list[AuditEvent]:
        """A request's audit trail."""
        return self._run(lambda store: store.audit_trail(request_id))

    def jobs(self, request_id: str) -> list[Job]:
        """A request's jobs."""
        return self._run(lambda store: store.jobs_of(request_id))


class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own, on a free port, removed at the end.

    PostgreSQL refuses to run as root, so the cluster belongs to the ``postgres`` system user.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="dumptask-pg-", dir="/tmp"))
        self._data = self._dir / "data"
        self._frozen: list[int] = []

    @property
    def url(self) -> str:
        """The connection URL for the bot (database ``postgres``, trust authentication)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> bool:
        """Whether this machine can run a cluster of its own."""
        return (PG_BIN / "initdb").exists() and shutil.which("runuser") is not None

    def _as_postgres(self, *command: str, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def create(self) -> Self:
        """Initialise the cluster and start it."""
        shutil.chown(self._dir, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self._data), "-A", "trust", "-U", "postgres"
        )
        self.start()
        return self

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self._data),
            "-o",
            options,
            "-w",
            "start",
            "-l",
            str(self._dir / "server.log"),
        )

    def stop(self) -> None:
        """Stop the server at once, as a crash or an operator's ``stop -m immediate`` would."""
        self.thaw()
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "stop")

    def _processes(self) -> list[int]:
        pid_file = self._data / "postmaster.pid"
        postmaster = int(pid_file.read_text().splitlines()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                        children.append(int(entry.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP every process of the server: sockets stay open, nothing answers (a hang)."""
        self._frozen = self._processes()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again."""
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def remove(self) -> None:
        """Stop the server if it runs, and delete the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
