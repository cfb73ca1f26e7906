"""The demo page's modals: the view the bot opened for the person at the keyboard, and what they do.

The view itself comes with the channel's poll (``modal_view``), so the page opens, redraws and
closes it as soon as the bot acts. What the person does goes through the Slack stand-in, which
sends it to the bot exactly as Slack would::

    POST /page/api/view/submit    {user, view_id, values: {block_id: value}}: the submit button
    POST /page/api/view/close     {user, view_id}: the close button, the x, or Escape
    POST /page/api/view/options   {user, view_id, action_id, value}: typing in an external select
    POST /page/api/view/action    {user, view_id, action_id, value}: a choice in an element

A value is what the person entered: text, an option's value, a list of values, a channel id.
"""

from __future__ import annotations

from typing import Any

import httpx
from aiohttp import web

from bot.sim.page_api import PageError, as_json, read_object
from bot.sim.slack import MissingInputError, SlackStandIn, View
from bot.sim.slack_views import TROUBLE

__all__ = ["ModalRoutes", "modal_view"]

JsonDict = dict[str, Any]


def modal_view(view: View | None) -> JsonDict | None:
    """What the page draws of the view a person sees: blocks, current values, errors."""
    if view is None:
        return None
    definition = view.definition
    return {
        "id": view.id,
        "hash": view.hash,
        "callback_id": view.callback_id,
        "title": definition["title"],
        "submit": definition.get("submit"),
        "close": definition.get("close"),
        "blocks": definition["blocks"],
        "values": view.state(),
        "errors": view.errors,
        "failure": None if view.failure is None else f"{TROUBLE} ({view.failure})",
    }


class ModalRoutes:
    """The routes above, over one ``SlackStandIn``."""

    def __init__(self, stand_in: SlackStandIn) -> None:
        self._stand_in = stand_in

    def install(self, app: web.Application) -> None:
        """Add the routes to the page's ``aiohttp`` app."""
        app.router.add_post("/page/api/view/submit", as_json(self.submit))
        app.router.add_post("/page/api/view/close", as_json(self.close))
        app.router.add_post("/page/api/view/options", as_json(self.options))
        app.router.add_post("/page/api/view/action", as_json(self.action))

    async def submit(self, request: web.Request) -> JsonDict:
        """Submit the view; an empty required input is answered with its error, unsent."""
        body, user, view_id = await self._shown(request)
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise PageError(400, "invalid_values")
        try:
            response = await self._stand_in.asubmit_view(user, view_id, values)
        except MissingInputError as missing:
            raise PageError(400, "missing_input", errors=missing.errors) from None
        except LookupError:
            raise PageError(400, "invalid_values") from None
        except httpx.TimeoutException:
            return {"ok": False, "error": "operation_timeout"}
        except httpx.HTTPError:
            return {"ok": False, "error": "dispatch_failed"}
        return {"ok": response.status_code == 200, "status": response.status_code}

    async def close(self, request: web.Request) -> JsonDict:
        """Dismiss the modal; the bot hears of it if the view asked to be told."""
        _, user, view_id = await self._shown(request)
        try:
            response = await self._stand_in.aclose_view(user, view_id)
        except httpx.HTTPError:
            response = None
        return {"ok": True, "notified": response is not None}

    async def options(self, request: web.Request) -> JsonDict:
        """Ask the bot for the options of an external select, as typed so far."""
        body, user, view_id = await self._shown(request)
        action_id, value = _string(body, "action_id"), body.get("value", "")
        if not isinstance(value, str):
            raise PageError(400, "invalid_value")
        try:
            suggestions = await self._stand_in.asuggest_options(user, view_id, action_id, value)
        except LookupError:
            raise PageError(400, "no_such_action") from None
        except httpx.HTTPError as error:
            return {"ok": False, "error": type(error).__name__}
        return {
            "ok": suggestions.error is None,
            "sent": suggestions.response is not None,
            "options": suggestions.options,
            "option_groups": suggestions.option_groups,
            "error": suggestions.error,
        }

    async def action(self, request: web.Request) -> JsonDict:
        """Record a choice; Slack sends it at once only where the element dispatches actions."""
        body, user, view_id = await self._shown(request)
        action_id = _string(body, "action_id")
        try:
            response = await self._stand_in.aselect_in_view(
                user, view_id, action_id, body.get("value")
            )
        except LookupError:
            raise PageError(400, "invalid_value") from None
        except httpx.HTTPError as error:
            return {"ok": False, "error": type(error).__name__}
        if response is None:
            return {"ok": True, "sent": False}
        return {"ok": response.status_code == 200, "sent": True, "status": response.status_code}

    async def _shown(self, request: web.Request) -> tuple[JsonDict, str, str]:
        """The body, the person and the view, which must be the one they see."""
        body = await read_object(request)
        user, view_id = _string(body, "user"), _string(body, "view_id")
        try:
            self._stand_in.workspace.user(user)
        except KeyError:
            raise PageError(400, "user_not_found") from None
        shown = self._stand_in.open_view(user)
        if shown is None or shown.id != view_id:
            raise PageError(404, "view_not_found")
        if self._stand_in.request_url is None:
            raise PageError(503, "bot_not_connected")
        return body, user, view_id


def _string(body: JsonDict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise PageError(400, f"missing_{name}")
    return value
