"""Modal views as Slack keeps them: whose they are, their stack, what was entered, their errors.

A person sees at most one modal, a stack of up to three views; only the top one can be
submitted. ``Modals`` holds them and applies what the app does to them (``views.open``,
``views.push``, ``views.update``, the answer to a submission) and what the person does (type,
select, submit, close). It is not thread-safe on its own: the ``Workspace`` calls it under its
lock, and it raises the ``ApiError`` Slack would answer.

What a submission carries follows Slack: ``view.state.values`` holds every input block, keyed by
``block_id`` then ``action_id``, with what was entered, else the element's initial value, else
``null`` (an empty list for multi-selects). The answer decides what happens next: nothing (or
``response_action: clear``) closes the view (``clear``: the whole modal); ``update`` replaces it,
``push`` stacks another on it, ``errors`` keeps it open with a message under each named input.
"""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.sim.slack_blockkit import (
    INPUT_ELEMENTS,
    check_view,
    element_state,
    initial_state,
    input_elements,
    offered_options,
    view_elements,
)
from bot.sim.slack_errors import ApiError

__all__ = ["MAX_STACK", "REQUIRED", "TROUBLE", "MissingInputError", "Modals", "View"]

JsonDict = dict[str, Any]

MAX_STACK = 3
# Slack's words in a modal whose app answered a submission with something it could not use.
TROUBLE = "We had some trouble connecting. Try again?"
REQUIRED = "Please complete this required field."


class MissingInputError(ValueError):
    """A submission Slack's client would not send: required inputs are empty.

    ``errors`` maps each such input's ``block_id`` to the message Slack shows under it.
    """

    def __init__(self, block_ids: Sequence[str]) -> None:
        super().__init__(f"required input(s) left empty: {', '.join(block_ids)}")
        self.errors = dict.fromkeys(block_ids, REQUIRED)


@dataclass(frozen=True, slots=True)
class View:
    """A snapshot of one modal view, for tests and the page; changing it changes nothing.

    ``definition`` is the view as stored (blocks with their ids); ``values`` is what the person
    has entered so far (``block_id`` -> ``action_id`` -> state); ``errors`` the messages shown
    under inputs (from ``response_action: errors``); ``failure`` why the app's last answer
    could not be used (``operation_timeout``, ``dispatch_failed``, ``invalid_response``...),
    shown as Slack's "We had some trouble connecting" in the modal.
    """

    id: str
    user: str
    definition: JsonDict
    hash: str
    values: JsonDict
    errors: dict[str, str]
    failure: str | None
    root_view_id: str
    previous_view_id: str | None
    is_open: bool

    @property
    def callback_id(self) -> str:
        """The app's name for this view."""
        return str(self.definition.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        """What the app stashed in the view."""
        return str(self.definition.get("private_metadata") or "")

    @property
    def external_id(self) -> str:
        """The app's own unique id for the view, if it gave one."""
        return str(self.definition.get("external_id") or "")

    @property
    def title(self) -> str:
        """The title's text."""
        return str(self.definition["title"]["text"])

    @property
    def blocks(self) -> list[JsonDict]:
        """The blocks as stored, each with its ``block_id``."""
        return list(self.definition["blocks"])

    def element(self, key: str) -> tuple[JsonDict, JsonDict]:
        """The block and element an ``action_id`` or an input's ``block_id`` names."""
        return locate(self.definition, key)

    def state(self) -> JsonDict:
        """``state.values`` as Slack would send them now (see the module docstring)."""
        return state_values(self.definition, self.values)

    def as_payload(self, team_id: str, app_id: str, bot_id: str) -> JsonDict:
        """The view object as Slack hands it to the app (API answers, interaction payloads)."""
        view = self.definition
        return {
            "id": self.id,
            "team_id": team_id,
            "type": view["type"],
            "blocks": copy.deepcopy(view["blocks"]),
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": self.state()},
            "hash": self.hash,
            "title": copy.deepcopy(view["title"]),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id,
            "app_id": app_id,
            "external_id": self.external_id,
            "app_installed_team_id": team_id,
            "bot_id": bot_id,
        }


def locate(definition: JsonDict, key: str) -> tuple[JsonDict, JsonDict]:
    """The block and element of a view named by an ``action_id`` or an input's ``block_id``."""
    found = [
        (block, element)
        for block, element in view_elements(definition["blocks"])
        if key == element.get("action_id") or (key == block["block_id"] and "element" in block)
    ]
    if len(found) != 1:
        problem = "no" if not found else "more than one"
        raise LookupError(f"{problem} element with action_id or input block_id {key!r} in the view")
    return found[0]


def state_values(definition: JsonDict, entered: JsonDict) -> JsonDict:
    """Every input's state (entered, else initial), plus whatever else was entered."""
    values: JsonDict = {}
    for block, element in input_elements(definition["blocks"]):
        values.setdefault(block["block_id"], {})[element["action_id"]] = initial_state(element)
    for block_id, elements in entered.items():
        values.setdefault(block_id, {}).update(copy.deepcopy(elements))
    return values


@dataclass(slots=True)
class _View:
    id: str
    user: str
    definition: JsonDict
    hash: str
    root_view_id: str
    previous_view_id: str | None
    values: JsonDict = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    failure: str | None = None
    is_open: bool = True
    # The options the app last answered for each external menu, so a choice keeps its text.
    loaded: dict[tuple[str, str], list[JsonDict]] = field(default_factory=dict)

    def snapshot(self) -> View:
        return View(
            self.id,
            self.user,
            copy.deepcopy(self.definition),
            self.hash,
            copy.deepcopy(self.values),
            dict(self.errors),
            self.failure,
            self.root_view_id,
            self.previous_view_id,
            self.is_open,
        )


class Modals:
    """Every view apps opened, and each person's stack; see the module docstring."""

    def __init__(self, rng: random.Random, clock: Callable[[], float]) -> None:
        self._rng = rng
        self._clock = clock
        self._views: dict[str, _View] = {}
        self._stacks: dict[str, list[str]] = {}

    # Reading.

    def get(self, view_id: str) -> View:
        """One view, open or closed; ``KeyError`` when no app ever opened it."""
        return self._views[view_id].snapshot()

    def top(self, user: str) -> View | None:
        """The view ``user`` sees now, if a modal is open for them."""
        stack = self._stacks.get(user)
        return self._views[stack[-1]].snapshot() if stack else None

    def stack(self, user: str) -> list[View]:
        """The views of ``user``'s modal, the root first and the visible one last."""
        return [self._views[view_id].snapshot() for view_id in self._stacks.get(user, [])]

    # What the app does (Web API methods).

    def open(self, user: str, raw: object) -> View:
        """``views.open``: a new modal for ``user``, replacing any they had."""
        definition = self._checked(raw, replacing=None)
        for view_id in self._stacks.pop(user, []):
            self._views[view_id].is_open = False
        view_id = self._new_view_id()
        self._views[view_id] = _View(view_id, user, definition, self._new_hash(), view_id, None)
        self._stacks[user] = [view_id]
        return self._views[view_id].snapshot()

    def push(self, user: str, raw: object) -> View:
        """``views.push``: a view on top of ``user``'s open modal."""
        stack = self._stacks.get(user)
        if not stack:
            raise ApiError("not_found")
        if len(stack) >= MAX_STACK:
            raise ApiError("push_limit_reached")
        definition = self._checked(raw, replacing=None)
        view_id = self._new_view_id()
        self._views[view_id] = _View(
            view_id, user, definition, self._new_hash(), stack[0], stack[-1]
        )
        stack.append(view_id)
        return self._views[view_id].snapshot()

    def update(
        self, view_id: str | None, external_id: str | None, raw: object, expected_hash: str | None
    ) -> View:
        """``views.update`` of an open view named by id or ``external_id``, hash checked.

        What was entered in inputs the new view keeps (same ``block_id``, ``action_id`` and
        element type) is kept, as Slack does; the errors shown go.
        """
        if bool(view_id) == bool(external_id):
            raise ApiError(
                "invalid_arguments", ["[ERROR] give exactly one of view_id, external_id"]
            )
        view = self._find_open(view_id, external_id)
        if expected_hash and expected_hash != view.hash:
            raise ApiError("hash_conflict")
        self._replace(view, self._checked(raw, replacing=view.id))
        return view.snapshot()

    # What the person does.

    def enter(self, view_id: str, key: str, entered: object) -> tuple[JsonDict, JsonDict]:
        """Record what the person typed or chose in the element ``key`` names.

        Returns the block and element; raises ``LookupError`` for an element or an option the
        view does not have, ``KeyError`` for a view that is not open.
        """
        view = self._open_view(view_id)
        block, element = locate(view.definition, key)
        if element["type"] in INPUT_ELEMENTS:  # a button holds no state
            loaded = view.loaded.get((block["block_id"], element["action_id"]), [])
            state = element_state(element, entered, loaded)
            view.values.setdefault(block["block_id"], {})[element["action_id"]] = state
        return copy.deepcopy(block), copy.deepcopy(element)

    def remember_options(
        self, view_id: str, block_id: str, action_id: str, options: Sequence[JsonDict]
    ) -> None:
        """Keep the options the app answered, so choosing one later finds its text."""
        view = self._open_view(view_id)
        view.loaded[(block_id, action_id)] = copy.deepcopy(list(options))

    def submit(self, user: str, view_id: str, entered: Mapping[str, object]) -> View:
        """The view as the person submits it, after recording ``entered``.

        Only the visible view of the person's own modal can be submitted (``LookupError``
        otherwise); an empty required input raises ``MissingInputError`` and nothing is sent,
        as Slack's client refuses. The errors shown so far go.
        """
        stack = self._stacks.get(user) or []
        if not stack or stack[-1] != view_id:
            raise LookupError(f"{view_id} is not the view {user} sees")
        for key, value in entered.items():
            self.enter(view_id, key, value)
        view = self._views[view_id]
        state = state_values(view.definition, view.values)
        missing = [
            block["block_id"]
            for block, element in input_elements(view.definition["blocks"])
            if not block.get("optional")
            and _is_empty(state[block["block_id"]][element["action_id"]])
        ]
        if missing:
            view.errors = MissingInputError(missing).errors
            raise MissingInputError(missing)
        view.errors, view.failure = {}, None
        return view.snapshot()

    def answer_submission(self, view_id: str, answer: JsonDict | None) -> None:
        """Apply the app's answer to a submission (``None``: an empty 200)."""
        view = self._open_view(view_id)
        action = None if answer is None else answer.get("response_action")
        if action is None or action == "clear":
            self._close(view.user, everything=action == "clear")
        elif action == "errors":
            errors = answer.get("errors") if answer else None
            inputs = {block["block_id"] for block, _ in input_elements(view.definition["blocks"])}
            if (
                not isinstance(errors, dict)
                or not errors
                or not set(errors) <= inputs
                or not all(isinstance(message, str) for message in errors.values())
            ):
                view.failure = "invalid_errors"
                return
            view.errors = dict(errors)
        elif action in ("update", "push"):
            assert answer is not None
            try:
                if action == "update":
                    self._replace(view, self._checked(answer.get("view"), replacing=view.id))
                else:
                    self.push(view.user, answer.get("view"))
            except ApiError as error:
                view.failure = f"invalid_view: {error}"
        else:
            view.failure = "invalid_response"

    def fail(self, view_id: str, reason: str) -> None:
        """The app's answer to a submission never came or could not be read."""
        self._open_view(view_id).failure = reason

    def close(self, user: str, view_id: str) -> View:
        """The person dismisses their modal (its "x"): every view of it closes."""
        stack = self._stacks.get(user) or []
        if view_id not in stack:
            raise LookupError(f"{view_id} is not in {user}'s open modal")
        view = self._views[stack[-1]].snapshot()
        self._close(user, everything=True)
        return view

    # Internals.

    def _checked(self, raw: object, *, replacing: str | None) -> JsonDict:
        definition = check_view(raw, self._rng)
        external_id = definition.get("external_id")
        if external_id and any(
            other.is_open
            and other.id != replacing
            and other.definition.get("external_id") == external_id
            for other in self._views.values()
        ):
            raise ApiError("duplicate_external_id")
        return definition

    def _replace(self, view: _View, definition: JsonDict) -> None:
        kept: JsonDict = {}
        for block, element in view_elements(definition["blocks"]):
            old = view.values.get(block["block_id"], {}).get(element["action_id"])
            if old is not None and old.get("type") == element["type"]:
                kept.setdefault(block["block_id"], {})[element["action_id"]] = still_offered(
                    element, old
                )
        view.definition, view.values, view.hash = definition, kept, self._new_hash()
        view.errors, view.failure = {}, None

    def _close(self, user: str, *, everything: bool) -> None:
        stack = self._stacks.get(user, [])
        closing = stack[:] if everything else stack[-1:]
        for view_id in closing:
            self._views[view_id].is_open = False
            stack.remove(view_id)
        if not stack:
            self._stacks.pop(user, None)

    def _open_view(self, view_id: str) -> _View:
        view = self._views.get(view_id)
        if view is None or not view.is_open:
            raise KeyError(f"no open view {view_id}")
        return view

    def _find_open(self, view_id: str | None, external_id: str | None) -> _View:
        for view in self._views.values():
            if view.is_open and (
                view.id == view_id
                or (external_id and view.definition.get("external_id") == external_id)
            ):
                return view
        raise ApiError("not_found")

    def _new_view_id(self) -> str:
        while True:
            candidate = "V" + "".join(
                self._rng.choices(string.ascii_uppercase + string.digits, k=10)
            )
            if candidate not in self._views:
                return candidate

    def _new_hash(self) -> str:
        suffix = "".join(self._rng.choices(string.ascii_letters + string.digits, k=8))
        return f"{int(self._clock())}.{suffix}"


def still_offered(element: JsonDict, state: JsonDict) -> JsonDict:
    """What is left of a choice once ``element`` changed: options it no longer offers go.

    Text, and the options of an external menu (whatever the app answers next), stay.
    """
    offered = offered_options(element)
    if not offered:
        return state
    kept = dict(state)
    if kept.get("selected_option") not in (None, *offered):
        kept["selected_option"] = None
    if "selected_options" in kept:
        kept["selected_options"] = [o for o in kept["selected_options"] if o in offered]
    return kept


def _is_empty(state: JsonDict) -> bool:
    return all(value in (None, "", []) for key, value in state.items() if key != "type")
