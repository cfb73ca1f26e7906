"""Block Kit in modals, checked and read the way Slack does it; pure functions, no state.

- ``check_view`` refuses what ``views.open``, ``views.update`` and ``views.push`` refuse, with
  ``invalid_arguments`` and Slack-style messages naming the JSON pointer, and stores the view as
  Slack does: every block with a ``block_id`` and every element with an ``action_id``;
- ``element_state`` turns what a person entered into the ``state.values`` entry Slack sends for
  that element (``{"type": "plain_text_input", "value": ...}``, ``selected_option``...);
- ``check_options`` reads an app's answer to an options request (``block_suggestion``).

The limits are those of Slack's reference pages (docs.slack.dev ``reference/views/modal-views``
and ``reference/block-kit/...``): a title, submit and close label of 24 characters, 100 blocks,
``private_metadata`` of 3000, ids of 255, labels and hints of 2000, placeholders of 150, options
of 75 (text) and 150 (value), 100 options a menu and 10 radio buttons or checkboxes.
"""

from __future__ import annotations

import copy
import json
import random
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.sim.slack_errors import ApiError

__all__ = [
    "DEFAULT_MIN_QUERY_LENGTH",
    "INPUT_ELEMENTS",
    "InvalidOptionsError",
    "check_options",
    "check_view",
    "element_state",
    "empty_state",
    "find_option",
    "initial_state",
    "input_elements",
    "offered_options",
    "view_elements",
]

JsonDict = dict[str, Any]

TITLE_MAX = 24
MAX_VIEW_BLOCKS = 100
PRIVATE_METADATA_MAX = 3000
ID_MAX = 255
LABEL_MAX = 2000
PLACEHOLDER_MAX = 150
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
MAX_OPTIONS = 100
MAX_CHOICES = 10
INPUT_LENGTH_MAX = 3000
SECTION_TEXT_MAX = 3000
FIELD_MAX = 2000
HEADER_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
MAX_ACTIONS = 25
MAX_CONTEXT = 10
VIEW_MAX_BYTES = 250_000
# Slack sends an options request once this many characters are typed, unless told otherwise.
DEFAULT_MIN_QUERY_LENGTH = 3

# What each input element puts in ``state.values``, and what it holds before anyone touched it.
INPUT_ELEMENTS: Mapping[str, tuple[str, object]] = {
    "plain_text_input": ("value", None),
    "number_input": ("value", None),
    "email_text_input": ("value", None),
    "url_text_input": ("value", None),
    "static_select": ("selected_option", None),
    "external_select": ("selected_option", None),
    "radio_buttons": ("selected_option", None),
    "multi_static_select": ("selected_options", []),
    "multi_external_select": ("selected_options", []),
    "checkboxes": ("selected_options", []),
    "conversations_select": ("selected_conversation", None),
    "multi_conversations_select": ("selected_conversations", []),
    "channels_select": ("selected_channel", None),
    "multi_channels_select": ("selected_channels", []),
    "users_select": ("selected_user", None),
    "multi_users_select": ("selected_users", []),
    "datepicker": ("selected_date", None),
    "timepicker": ("selected_time", None),
}
# Where an element's initial value lives, by the state key it fills.
_INITIAL_KEYS: Mapping[str, str] = {
    "value": "initial_value",
    "selected_option": "initial_option",
    "selected_options": "initial_options",
    "selected_conversation": "initial_conversation",
    "selected_conversations": "initial_conversations",
    "selected_channel": "initial_channel",
    "selected_channels": "initial_channels",
    "selected_user": "initial_user",
    "selected_users": "initial_users",
    "selected_date": "initial_date",
    "selected_time": "initial_time",
}
_STATIC_MENUS = frozenset({"static_select", "multi_static_select"})
_CHOICES = frozenset({"radio_buttons", "checkboxes"})
_EXTERNAL_MENUS = frozenset({"external_select", "multi_external_select"})
_TEXT_INPUTS = frozenset({"plain_text_input", "number_input", "email_text_input", "url_text_input"})
_INTERACTIVE = frozenset({*INPUT_ELEMENTS, "button", "overflow"})
_VIEW_KEYS = frozenset(
    {
        "type",
        "title",
        "blocks",
        "close",
        "submit",
        "private_metadata",
        "callback_id",
        "clear_on_close",
        "notify_on_close",
        "external_id",
        "submit_disabled",
    }
)
_ID_ALPHABET = string.ascii_letters + string.digits


def check_view(raw: object, rng: random.Random) -> JsonDict:
    """The view as Slack stores it, or ``ApiError("invalid_arguments")`` saying what is wrong.

    ``raw`` is the ``view`` argument: an object, or the JSON string form-encoded calls send.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ApiError("invalid_arguments", ["[ERROR] view is not valid JSON"]) from None
    if not isinstance(raw, dict):
        raise ApiError("invalid_arguments", ["[ERROR] view must be an object"])
    if len(json.dumps(raw)) > VIEW_MAX_BYTES:
        raise ApiError("view_too_large")
    checker = _Checker(rng)
    view = checker.view(copy.deepcopy(raw))
    if checker.messages:
        raise ApiError("invalid_arguments", checker.messages)
    return view


def view_elements(blocks: Iterable[JsonDict]) -> list[tuple[JsonDict, JsonDict]]:
    """Every interactive element of a stored view with its block, in order."""
    found = []
    for block in blocks:
        if block.get("type") == "input":
            found.append((block, block["element"]))
        elif block.get("type") == "actions":
            found.extend((block, element) for element in block.get("elements") or ())
        elif isinstance(block.get("accessory"), dict) and "action_id" in block["accessory"]:
            found.append((block, block["accessory"]))
    return found


def input_elements(blocks: Iterable[JsonDict]) -> list[tuple[JsonDict, JsonDict]]:
    """The input blocks of a stored view with their elements: what a submission carries."""
    return [(block, block["element"]) for block in blocks if block.get("type") == "input"]


def empty_state(element: JsonDict) -> JsonDict:
    """The state of an element nobody touched and that has no initial value."""
    key, empty = INPUT_ELEMENTS[element["type"]]
    return {"type": element["type"], key: copy.deepcopy(empty)}


def initial_state(element: JsonDict) -> JsonDict:
    """The state of an element before anyone touched it: its initial value, if it has one."""
    key, _ = INPUT_ELEMENTS[element["type"]]
    initial = element.get(_INITIAL_KEYS[key])
    if initial is None:
        return empty_state(element)
    return {"type": element["type"], key: copy.deepcopy(initial)}


def element_state(element: JsonDict, entered: object, loaded: Sequence[JsonDict] = ()) -> JsonDict:
    """The ``state.values`` entry for ``entered`` in ``element``, as Slack sends it.

    ``entered`` is what a person did: text for a text input (an empty one is ``null``); an
    option's value (or the option itself) for a menu or radio buttons, a list of them for a
    multi-select or checkboxes; an id for a conversation, channel or user menu. Options of an
    external menu are looked up in ``loaded``, what the app last answered to an options
    request. An option the element does not offer raises ``LookupError``.
    """
    key, empty = INPUT_ELEMENTS[element["type"]]
    state: JsonDict = {"type": element["type"]}
    if entered in (None, "", []):
        state[key] = copy.deepcopy(empty)
    elif key == "selected_option":
        state[key] = find_option(element, entered, loaded)
    elif key == "selected_options":
        chosen = entered if isinstance(entered, list | tuple) else [entered]
        state[key] = [find_option(element, one, loaded) for one in chosen]
    elif isinstance(empty, list):
        state[key] = [str(one) for one in (entered if isinstance(entered, list) else [entered])]
    else:
        state[key] = str(entered)
    return state


def find_option(element: JsonDict, chosen: object, loaded: Sequence[JsonDict] = ()) -> JsonDict:
    """The option object ``chosen`` names (by value, or the option itself) in ``element``."""
    offered = [*offered_options(element), *loaded]
    if isinstance(element.get("initial_option"), dict):
        offered.append(element["initial_option"])
    offered.extend(o for o in element.get("initial_options") or () if isinstance(o, dict))
    if isinstance(chosen, dict):
        if element["type"] in _EXTERNAL_MENUS and "value" in chosen:
            return copy.deepcopy(chosen)
        chosen = chosen.get("value")
    for option in offered:
        if option.get("value") == chosen:
            return copy.deepcopy(option)
    raise LookupError(
        f"{element['type']} {element.get('action_id')!r} offers no option with value {chosen!r}"
    )


class InvalidOptionsError(ValueError):
    """An app's answer to an options request that Slack would not show."""


def check_options(answer: object) -> tuple[list[JsonDict], list[JsonDict]]:
    """The ``options`` and ``option_groups`` of an options answer, or ``InvalidOptionsError``.

    Slack shows nothing when the answer is not what it expects: at most 100 options (or
    groups), each with a ``plain_text`` text of at most 75 characters and a value of at most
    150.
    """
    if not isinstance(answer, dict):
        raise InvalidOptionsError("the answer is not a JSON object")
    checker = _Checker(random.Random(0))
    options = answer.get("options")
    groups = answer.get("option_groups")
    if options is None and groups is None:
        raise InvalidOptionsError("the answer has neither options nor option_groups")
    if options is not None:
        checker.options(options, "/options", limit=MAX_OPTIONS, plain_only=True)
    if groups is not None:
        checker.option_groups(groups, "/option_groups")
    if checker.messages:
        raise InvalidOptionsError("; ".join(checker.messages))
    return list(options or []), list(groups or [])


def offered_options(element: JsonDict) -> list[JsonDict]:
    """The options a static menu, radio buttons or checkboxes offer, groups flattened."""
    options = [o for o in element.get("options") or () if isinstance(o, dict)]
    for group in element.get("option_groups") or ():
        options.extend(o for o in group.get("options") or () if isinstance(o, dict))
    return options


class _Checker:
    """Walks a view, collecting Slack-style messages and filling in missing ids."""

    def __init__(self, rng: random.Random) -> None:
        self.messages: list[str] = []
        self._rng = rng

    def fail(self, pointer: str, message: str) -> None:
        self.messages.append(f"[ERROR] {message} [json-pointer:/view{pointer}]")

    def view(self, view: JsonDict) -> JsonDict:
        self.view_fields(view)
        blocks = view.get("blocks")
        if not isinstance(blocks, list):
            self.fail("/blocks", "blocks is required and must be a list")
            return view
        if len(blocks) > MAX_VIEW_BLOCKS:
            self.fail("/blocks", f"must have at most {MAX_VIEW_BLOCKS} items")
        block_ids: set[str] = set()
        for index, block in enumerate(blocks):
            self.block(block, f"/blocks/{index}", block_ids)
        inputs = [
            i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("type") == "input"
        ]
        if inputs and view.get("submit") is None:
            self.fail(f"/blocks/{inputs[0]}/input", "must define submit to use input block")
        return view

    def view_fields(self, view: JsonDict) -> None:
        for key in sorted(set(view) - _VIEW_KEYS):
            self.fail(f"/{key}", f"unknown property {key!r}")
        if view.get("type") != "modal":
            self.fail("/type", "must be 'modal' (the stand-in serves no other surface)")
        self.text(view.get("title"), "/title", limit=TITLE_MAX, plain=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                self.text(view[key], f"/{key}", limit=TITLE_MAX, plain=True)
        for key, limit in (
            ("callback_id", ID_MAX),
            ("external_id", ID_MAX),
            ("private_metadata", PRIVATE_METADATA_MAX),
        ):
            self.string(view.get(key), f"/{key}", limit, required=False, empty=True)
        for key in ("clear_on_close", "notify_on_close", "submit_disabled"):
            if key in view and not isinstance(view[key], bool):
                self.fail(f"/{key}", "must be a boolean")

    def block(self, block: object, pointer: str, block_ids: set[str]) -> None:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            self.fail(pointer, "a block must be an object with a type")
            return
        self.unique_id(block, "block_id", pointer, block_ids)
        kind = block["type"]
        check = getattr(self, f"block_{kind}", None)
        if check is None:
            self.fail(f"{pointer}/type", f"unsupported block type {kind!r}")
            return
        check(block, pointer)

    def block_input(self, block: JsonDict, pointer: str) -> None:
        self.text(block.get("label"), f"{pointer}/label", limit=LABEL_MAX, plain=True)
        if block.get("hint") is not None:
            self.text(block["hint"], f"{pointer}/hint", limit=LABEL_MAX, plain=True)
        for key in ("optional", "dispatch_action"):
            if key in block and not isinstance(block[key], bool):
                self.fail(f"{pointer}/{key}", "must be a boolean")
        element = block.get("element")
        if not isinstance(element, dict) or element.get("type") not in INPUT_ELEMENTS:
            self.fail(f"{pointer}/element", "must be an input element")
            return
        self.element(element, f"{pointer}/element", set())

    def block_section(self, block: JsonDict, pointer: str) -> None:
        fields = block.get("fields")
        if block.get("text") is None and not fields:
            self.fail(pointer, "a section needs text or fields")
        if block.get("text") is not None:
            self.text(block["text"], f"{pointer}/text", limit=SECTION_TEXT_MAX, plain=False)
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > MAX_CHOICES:
                self.fail(f"{pointer}/fields", f"must be a list of at most {MAX_CHOICES}")
            else:
                for index, item in enumerate(fields):
                    self.text(item, f"{pointer}/fields/{index}", limit=FIELD_MAX, plain=False)
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{pointer}/accessory", set(), accessory=True)

    def block_header(self, block: JsonDict, pointer: str) -> None:
        self.text(block.get("text"), f"{pointer}/text", limit=HEADER_MAX, plain=True)

    def block_divider(self, _block: JsonDict, _pointer: str) -> None:
        return

    def block_context(self, block: JsonDict, pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= MAX_CONTEXT:
            self.fail(f"{pointer}/elements", f"must be a list of 1 to {MAX_CONTEXT} elements")
            return
        for index, element in enumerate(elements):
            if not (isinstance(element, dict) and element.get("type") == "image"):
                self.text(
                    element, f"{pointer}/elements/{index}", limit=SECTION_TEXT_MAX, plain=False
                )

    def block_actions(self, block: JsonDict, pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= MAX_ACTIONS:
            self.fail(f"{pointer}/elements", f"must be a list of 1 to {MAX_ACTIONS} elements")
            return
        action_ids: set[str] = set()
        for index, element in enumerate(elements):
            self.element(element, f"{pointer}/elements/{index}", action_ids, accessory=True)

    def element(
        self, element: object, pointer: str, action_ids: set[str], *, accessory: bool = False
    ) -> None:
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            self.fail(pointer, "an element must be an object with a type")
            return
        kind = element["type"]
        if kind == "image" and accessory:
            return
        if kind not in _INTERACTIVE or (accessory and kind in _TEXT_INPUTS):
            self.fail(f"{pointer}/type", f"unsupported element type {kind!r} here")
            return
        self.unique_id(element, "action_id", pointer, action_ids)
        if element.get("placeholder") is not None:
            self.text(
                element["placeholder"], f"{pointer}/placeholder", limit=PLACEHOLDER_MAX, plain=True
            )
        if kind == "button":
            self.text(element.get("text"), f"{pointer}/text", limit=BUTTON_TEXT_MAX, plain=True)
            self.string(element.get("value"), f"{pointer}/value", BUTTON_VALUE_MAX, required=False)
            if element.get("style") not in (None, "primary", "danger"):
                self.fail(f"{pointer}/style", "must be 'primary' or 'danger'")
        elif kind in _TEXT_INPUTS:
            self.text_input(element, pointer)
        elif kind in _STATIC_MENUS or kind in _CHOICES:
            self.choices(element, pointer)
        elif kind in _EXTERNAL_MENUS:
            self.external(element, pointer)

    def unique_id(self, holder: JsonDict, key: str, pointer: str, taken: set[str]) -> None:
        """A ``block_id`` or ``action_id``: Slack invents a missing one, refuses a repeat."""
        value = holder.get(key)
        if value is None:
            holder[key] = value = self._new_id(taken)
        elif not isinstance(value, str) or not 0 < len(value) <= ID_MAX:
            self.fail(f"{pointer}/{key}", f"must be a string of 1 to {ID_MAX} characters")
        elif value in taken:
            self.fail(f"{pointer}/{key}", f"duplicate {key} {value!r}")
        taken.add(str(value))

    def text_input(self, element: JsonDict, pointer: str) -> None:
        self.string(
            element.get("initial_value"),
            f"{pointer}/initial_value",
            INPUT_LENGTH_MAX,
            required=False,
            empty=True,
        )
        bounds = {}
        for key, low in (("min_length", 0), ("max_length", 1)):
            value = element.get(key)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not low <= value <= INPUT_LENGTH_MAX
            ):
                self.fail(
                    f"{pointer}/{key}", f"must be an integer from {low} to {INPUT_LENGTH_MAX}"
                )
            else:
                bounds[key] = value
        if bounds.get("min_length", 0) > bounds.get("max_length", INPUT_LENGTH_MAX):
            self.fail(f"{pointer}/min_length", "must not be more than max_length")
        if "multiline" in element and not isinstance(element["multiline"], bool):
            self.fail(f"{pointer}/multiline", "must be a boolean")

    def choices(self, element: JsonDict, pointer: str) -> None:
        kind = element["type"]
        limit = MAX_CHOICES if kind in _CHOICES else MAX_OPTIONS
        options, groups = element.get("options"), element.get("option_groups")
        if kind in _CHOICES or groups is None:
            self.options(
                options, f"{pointer}/options", limit=limit, plain_only=kind not in _CHOICES
            )
            if groups is not None:
                self.fail(f"{pointer}/option_groups", f"{kind} takes no option_groups")
        elif options is not None:
            self.fail(pointer, "give options or option_groups, not both")
        else:
            self.option_groups(groups, f"{pointer}/option_groups")
        offered = offered_options(element)
        initial = element.get("initial_option")
        if initial is not None and initial not in offered:
            self.fail(f"{pointer}/initial_option", "must be one of the options, exactly")
        for index, one in enumerate(element.get("initial_options") or ()):
            if one not in offered:
                self.fail(
                    f"{pointer}/initial_options/{index}", "must be one of the options, exactly"
                )

    def external(self, element: JsonDict, pointer: str) -> None:
        length = element.get("min_query_length")
        if length is not None and (
            isinstance(length, bool) or not isinstance(length, int) or length < 0
        ):
            self.fail(f"{pointer}/min_query_length", "must be a whole number")
        if element.get("initial_option") is not None:
            self.option(element["initial_option"], f"{pointer}/initial_option", plain_only=True)
        for index, initial in enumerate(element.get("initial_options") or ()):
            self.option(initial, f"{pointer}/initial_options/{index}", plain_only=True)

    def options(self, options: object, pointer: str, *, limit: int, plain_only: bool) -> None:
        if not isinstance(options, list) or not 0 < len(options) <= limit:
            self.fail(pointer, f"must be a list of 1 to {limit} options")
            return
        for index, option in enumerate(options):
            self.option(option, f"{pointer}/{index}", plain_only=plain_only)

    def option_groups(self, groups: object, pointer: str) -> None:
        if not isinstance(groups, list) or not 0 < len(groups) <= MAX_OPTIONS:
            self.fail(pointer, f"must be a list of 1 to {MAX_OPTIONS} option groups")
            return
        for index, group in enumerate(groups):
            if not isinstance(group, dict):
                self.fail(f"{pointer}/{index}", "an option group must be an object")
                continue
            self.text(
                group.get("label"), f"{pointer}/{index}/label", limit=OPTION_TEXT_MAX, plain=True
            )
            self.options(
                group.get("options"),
                f"{pointer}/{index}/options",
                limit=MAX_OPTIONS,
                plain_only=True,
            )

    def option(self, option: object, pointer: str, *, plain_only: bool) -> None:
        if not isinstance(option, dict):
            self.fail(pointer, "an option must be an object")
            return
        self.text(option.get("text"), f"{pointer}/text", limit=OPTION_TEXT_MAX, plain=plain_only)
        self.string(option.get("value"), f"{pointer}/value", OPTION_VALUE_MAX, required=True)

    def text(self, value: object, pointer: str, *, limit: int, plain: bool) -> None:
        kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
        if not isinstance(value, dict) or value.get("type") not in kinds:
            self.fail(pointer, f"must be a text object of type {' or '.join(kinds)}")
            return
        text = value.get("text")
        if not isinstance(text, str) or not 0 < len(text) <= limit:
            self.fail(f"{pointer}/text", f"must be a string of 1 to {limit} characters")

    def string(
        self, value: object, pointer: str, limit: int, *, required: bool, empty: bool = False
    ) -> None:
        if value is None:
            if required:
                self.fail(pointer, "is required")
            return
        if not isinstance(value, str) or len(value) > limit or (not value and not empty):
            self.fail(pointer, f"must be a string of at most {limit} characters")

    def _new_id(self, taken: set[str]) -> str:
        while True:
            candidate = "".join(self._rng.choices(_ID_ALPHABET, k=5))
            if candidate not in taken:
                return candidate
