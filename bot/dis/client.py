"""Typed, signed, retried calls to the DIS dump-task API.

``DisClient`` is handed an ``httpx.AsyncClient`` (so tests choose the transport)
and returns typed models, never dicts. Many slow calls can run at once on one event loop without
holding up the code that acknowledges Slack.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from bot.dis.models import (
    ActionResult,
    StreamListPayload,
    StreamPayload,
    TaskDetailsPayload,
    TaskListPayload,
    TaskPayload,
)
from bot.dis.responses import error_from_response, malformed_body_error
from bot.dis.retry import RetryPolicy, call_with_retries
from bot.dis.signing import AkSkAuth, Credentials
from bot.errors import DisError, DisErrorKind
from bot.vocabulary import DumpTask, DumpTaskDetails, StreamDetails, TaskAction

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

Payload = TypeVar(
    "Payload", TaskListPayload, TaskPayload, TaskDetailsPayload, StreamPayload, StreamListPayload
)

DEFAULT_AUTH_COOLDOWN_SECONDS = 300.0


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """The production ``httpx`` client: base URL, AK/SK auth, project header, timeouts."""
    credentials = Credentials(
        access_key=settings.dis_access_key,
        secret_key=settings.dis_secret_key,
        security_token=settings.dis_security_token,
    )
    return httpx.AsyncClient(
        base_url=settings.dis_endpoint,
        auth=AkSkAuth(credentials),
        headers={"Content-Type": "application/json", "X-Project-Id": settings.dis_project_id},
        timeout=httpx.Timeout(settings.dis_timeout_seconds),
        # As many as the job runner runs at once (bot.app), each kept open for the next call.
        limits=httpx.Limits(max_connections=128, max_keepalive_connections=128),
    )


def retry_policy_from(settings: Settings) -> RetryPolicy:
    """The retry bounds the operator configured."""
    return RetryPolicy(
        attempts=settings.dis_retry_attempts, total_seconds=settings.dis_retry_total_seconds
    )


class DisObserver(Protocol):
    """Told of every HTTP call to DIS and every retry (``bot.metrics.Metrics`` counts them)."""

    def dis_call(self, operation: str, result: str, seconds: float) -> None:
        """One call: ``result`` is ``ok`` or the failure's ``DisErrorKind`` value."""

    def dis_retry(self, operation: str) -> None:
        """A failed call is about to be tried again."""


class _Unobserved:
    def dis_call(self, operation: str, result: str, seconds: float) -> None:
        """Nobody is watching."""

    def dis_retry(self, operation: str) -> None:
        """Nobody is watching."""


def metric_name(operation: str) -> str:
    """``list tasks`` as a metric label: ``list_tasks``."""
    return operation.replace(" ", "_")


def _never_arrived(error: DisError) -> bool:
    """Retry a batch call only when it is retryable and certainly was not carried out."""
    return error.kind.retryable and error.certainly_not_received


class DisClient:
    """List, describe, start and stop the dump tasks of a stream."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        project_id: str,
        retry: RetryPolicy | None = None,
        *,
        auth_cooldown_seconds: float = DEFAULT_AUTH_COOLDOWN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        observer: DisObserver | None = None,
    ) -> None:
        self._http = http
        self._observer: DisObserver = observer or _Unobserved()
        self._project_id = project_id
        self._retry = retry or RetryPolicy()
        self._auth_cooldown = auth_cooldown_seconds
        self._monotonic = monotonic
        self._auth_refused: tuple[float, DisError] | None = None

    def _tasks_path(self, stream: str) -> str:
        project, stream = quote(self._project_id, safe=""), quote(stream, safe="")
        return f"/v2/{project}/streams/{stream}/transfer-tasks"

    async def list_streams(self, *, page_size: int = 100, most: int = 1000) -> list[str]:
        """The project's stream names, page by page (``most`` bounds a runaway listing)."""
        names: list[str] = []
        start: str | None = None
        project = quote(self._project_id, safe="")
        while len(names) < most:
            query = f"?limit={page_size}" + (f"&start_stream_name={quote(start)}" if start else "")
            page = await self._get(
                "list streams", f"/v2/{project}/streams{query}", StreamListPayload
            )
            names.extend(page.stream_names)
            if not page.has_more_streams or not page.stream_names:
                break
            start = page.stream_names[-1]
        return names[:most]

    async def list_tasks(self, stream: str) -> list[DumpTask]:
        """All dump tasks of ``stream`` (at most 5, so one call returns them all).

        ``task_id`` is read from the raw JSON; DIS's field tables do not promise it, so a task
        listed without one is described by name to learn it.
        """
        listing = await self._get("list tasks", self._tasks_path(stream), TaskListPayload)
        tasks = []
        for payload in listing.tasks:
            if payload.task_id:
                tasks.append(payload.to_task(payload.task_id))
            else:
                tasks.append(await self.describe_task(stream, payload.task_name))
        return tasks

    async def describe_task(self, stream: str, name: str) -> DumpTask:
        """One dump task, found by its name (the describe API takes names, not ids)."""
        path = f"{self._tasks_path(stream)}/{quote(name, safe='')}"
        payload = await self._get("describe task", path, TaskPayload)
        if not payload.task_id:
            raise DisError(DisErrorKind.BUG, f"DIS described task {name!r} without a task_id")
        return payload.to_task(payload.task_id)

    async def describe_stream(self, stream: str) -> StreamDetails:
        """The stream's details, above all how many hours DIS keeps its data.

        ``GET /v2/{project_id}/streams/{stream_name}``; its answer and sources are described in
        ``bot.dis.models``. A stream that does not exist is DIS.4301, a user error.
        """
        project, name = quote(self._project_id, safe=""), quote(stream, safe="")
        payload = await self._get("describe stream", f"/v2/{project}/streams/{name}", StreamPayload)
        return payload.to_details(stream)

    async def describe_task_details(self, stream: str, name: str) -> DumpTaskDetails:
        """One dump task, by name, with how far it has dumped each partition of the stream.

        The same call as ``describe_task``, read in full: the per-partition last transfer
        times tell how old the oldest data not yet dumped is (see ``bot.dis.models`` for the
        shape, ``bot.vocabulary.safe_pause_window`` for what it is used for).
        """
        path = f"{self._tasks_path(stream)}/{quote(name, safe='')}"
        payload = await self._get("describe task details", path, TaskDetailsPayload)
        if not payload.task_id:
            raise DisError(DisErrorKind.BUG, f"DIS described task {name!r} without a task_id")
        return payload.to_details(payload.task_id)

    async def act(self, stream: str, action: TaskAction, task_ids: Sequence[str]) -> ActionResult:
        """Start or stop, by ``action``; the one batch call of an approved request.

        It answers nothing per task, so the caller reads the tasks back after. It is retried
        only when the failed attempt certainly never reached DIS: a start sent twice would be
        carried out twice, and its outcome would contradict the first.
        """
        body = json.dumps({"action": action.value, "tasks": [{"id": i} for i in task_ids]})
        path = f"{self._tasks_path(stream)}/action"
        operation = f"{action} tasks"

        async def attempt() -> httpx.Response:
            return await self._attempt(operation, "POST", path, body.encode())

        response = await call_with_retries(
            self._retry,
            operation,
            attempt,
            may_retry=_never_arrived,
            on_retry=lambda: self._observer.dis_retry(metric_name(operation)),
        )
        return ActionResult(request_id=response.headers.get("X-Request-Id"))

    async def _get(self, operation: str, path: str, model: type[Payload]) -> Payload:
        """GET and parse; an unreadable body is retried like any transient failure."""

        async def attempt() -> Payload:
            response = await self._attempt(operation, "GET", path, None)
            try:
                return model.model_validate_json(response.content)
            except ValidationError as exc:
                raise malformed_body_error(response, "not the documented JSON") from exc

        return await call_with_retries(
            self._retry,
            operation,
            attempt,
            on_retry=lambda: self._observer.dis_retry(metric_name(operation)),
        )

    def _refuse_while_cooling_down(self) -> None:
        """After the gateway refused our credentials, call nothing until the cooldown is over.

        More than five failed AK/SK logins in a row lock the key for five minutes, and repeated
        failures get the caller's IP blacklisted: one refusal is enough to know the key is wrong.
        """
        if self._auth_refused is None:
            return
        refused_at, cause = self._auth_refused
        remaining = self._auth_cooldown - (self._monotonic() - refused_at)
        if remaining <= 0:
            self._auth_refused = None
            return
        raise DisError(
            DisErrorKind.AUTH,
            f"DIS calls are paused for another {math.ceil(remaining)}s (of "
            f"{self._auth_cooldown:g}s) because the gateway refused the bot's credentials: "
            f"{cause.summary}",
            code=cause.code,
            status=cause.status,
            certainly_not_received=True,
        )

    async def _attempt(
        self, operation: str, method: str, path: str, body: bytes | None
    ) -> httpx.Response:
        """One HTTP call (unless paused after an auth failure), told to the observer."""
        self._refuse_while_cooling_down()
        started = self._monotonic()
        try:
            response = await self._call(operation, method, path, body)
        except DisError as error:
            self._observe(operation, error.kind.value, started)
            raise
        self._observe(operation, "ok", started)
        return response

    def _observe(self, operation: str, result: str, started: float) -> None:
        elapsed = max(self._monotonic() - started, 0.0)
        self._observer.dis_call(metric_name(operation), result, elapsed)

    async def _call(
        self, operation: str, method: str, path: str, body: bytes | None
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # No connection was made, so the request cannot have reached DIS.
            raise DisError(
                DisErrorKind.TRANSIENT,
                f"DIS could not be reached ({type(exc).__name__})",
                certainly_not_received=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise DisError(
                DisErrorKind.TRANSIENT, f"DIS did not answer in time ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise DisError(
                DisErrorKind.TRANSIENT, f"DIS could not be reached ({type(exc).__name__})"
            ) from exc
        request_id = response.headers.get("X-Request-Id")
        logger.info(
            "DIS %s %s -> HTTP %d (request id %s)",
            operation,
            path,
            response.status_code,
            request_id,
            extra={"dis_request_id": request_id},
        )
        if response.is_success:
            return response
        error = error_from_response(response)
        if error.kind is DisErrorKind.AUTH:
            self._auth_refused = (self._monotonic(), error)
        if error.code in ("APIGW.0301", "APIG.0301"):
            # The gateway's message holds the canonical request it computed and no secret:
            # logging it lets an operator diff it against what the bot signed.
            logger.error(
                "DIS refused the signature: %s", error.message, extra={"dis_request_id": request_id}
            )
        raise error
