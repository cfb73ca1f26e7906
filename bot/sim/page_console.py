"""The demo's stand-in for the cloud console: every dump task's state, and start or pause.

A person can change a task behind the bot's back, as someone in the console would, and see what
the bot makes of it (drift). The page never talks to DIS: these routes call the DIS stand-in the
page server was given, through ``DisConsole``::

    GET  /page/api/dis           every stream with its tasks: id, name, state, destination
    POST /page/api/dis/action    {stream, task, action: "start" | "stop"}

Without a DIS stand-in both answer 404 ``dis_not_connected`` and the page shows no console.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from aiohttp import web

from bot.sim.dis_state import TaskView
from bot.sim.page_api import PageError, as_json, read_fields

__all__ = ["ConsoleRoutes", "DisConsole"]

JsonDict = dict[str, Any]
ACTIONS = ("start", "stop")


class DisConsole(Protocol):
    """What the console needs of DIS: ``DisStandIn`` has it."""

    def stream_names(self) -> list[str]:
        """Every stream's name, alphabetically."""
        ...

    def tasks(self, stream: str) -> Sequence[TaskView]:
        """A stream's dump tasks as DIS reports them now."""
        ...

    def console_action(self, stream: str, action: str, tasks: Iterable[str]) -> None:
        """Start or stop tasks by id or name, as the console does."""
        ...


class ConsoleRoutes:
    """The routes above, over an optional DIS stand-in."""

    def __init__(self, dis: DisConsole | None) -> None:
        self._dis = dis

    @property
    def available(self) -> bool:
        """Whether there is a DIS to show."""
        return self._dis is not None

    def install(self, app: web.Application) -> None:
        """Add the routes to the page's ``aiohttp`` app."""
        app.router.add_get("/page/api/dis", as_json(self.streams))
        app.router.add_post("/page/api/dis/action", as_json(self.action))

    async def streams(self, _request: web.Request) -> JsonDict:
        """Every stream and its tasks, as the console lists them."""
        dis = self._require()
        return {
            "ok": True,
            "streams": [
                {"name": name, "tasks": [_task(task) for task in dis.tasks(name)]}
                for name in dis.stream_names()
            ],
        }

    async def action(self, request: web.Request) -> JsonDict:
        """Start or stop one task, as the console's button does."""
        dis = self._require()
        fields = await read_fields(request, "stream", "task", "action")
        if fields["action"] not in ACTIONS:
            raise PageError(400, "invalid_action")
        try:
            dis.console_action(fields["stream"], fields["action"], [fields["task"]])
        except LookupError:
            raise PageError(404, "task_not_found") from None
        [task] = [t for t in dis.tasks(fields["stream"]) if fields["task"] in (t.task_id, t.name)]
        return {"ok": True, "task": _task(task)}

    def _require(self) -> DisConsole:
        if self._dis is None:
            raise PageError(404, "dis_not_connected")
        return self._dis


def _task(task: TaskView) -> JsonDict:
    return {
        "id": task.task_id,
        "name": task.name,
        "state": str(task.state),
        "destination_type": task.destination_type,
        "last_transfer_timestamp": task.last_transfer_timestamp,
    }
