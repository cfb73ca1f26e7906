// The modal the bot opened for the person at the keyboard, drawn as Slack's client draws it.
//
// The view comes with every poll (``syncModal``): it opens, redraws when the bot updates it or
// answers with errors, and closes when the bot is done with it. What the person types stays
// in the page until they submit, as in Slack; choices in elements that dispatch actions, and
// what is typed in an external select, go to the stand-in at once, which asks the bot.
//
// Inputs are redrawn only when the view changes (its id, hash, errors or failure), and then
// keep what was typed in every input the new view still has (same block, action and type).

import { renderBlock, rawJson } from "./blocks.js";
import { $, api, append, el, toast } from "./dom.js";
import { context, plainText, renderTextObject } from "./mrkdwn.js";

const SEARCH_DELAY_MS = 250;
const DEFAULT_MIN_QUERY_LENGTH = 3;

const modal = {
  view: null,
  user: null,
  key: null,
  refresh: () => {},
  // block_id -> { element, node, read(), error } for every input drawn.
  inputs: new Map(),
  busy: false,
};

let nextId = 0;
const uniqueId = (prefix) => `${prefix}-${(nextId += 1)}`;

export function syncModal(view, user, refresh) {
  modal.refresh = refresh;
  if (!view) {
    if (modal.view) hide();
    return;
  }
  const key = JSON.stringify([user, view.id, view.hash, view.errors, view.failure]);
  if (key === modal.key) return;
  const sameView = modal.view && modal.view.id === view.id && modal.user === user;
  const typed = sameView ? typedValues() : new Map();
  const focused = sameView ? focusedBlock() : null;
  modal.key = key;
  modal.view = view;
  modal.user = user;
  draw(view, typed, focused);
}

function hide() {
  modal.view = null;
  modal.key = null;
  modal.inputs = new Map();
  document.removeEventListener("keydown", onKey);
  $("view-root").replaceChildren();
}

// Drawing.

function draw(view, typed, focused) {
  modal.inputs = new Map();
  const backdrop = el("div", "modal-backdrop view-backdrop");
  const dialog = el("div", "modal view-modal");
  dialog.setAttribute("role", "dialog");
  dialog.setAttribute("aria-modal", "true");
  dialog.setAttribute("aria-labelledby", "view-title");
  dialog.dataset.viewId = view.id;
  dialog.dataset.callbackId = view.callback_id;

  const head = el("div", "modal-head");
  const title = el("h2", "modal-title", plainText(view.title));
  title.id = "view-title";
  const x = el("button", "modal-close", "×");
  x.type = "button";
  x.setAttribute("aria-label", "Close");
  x.addEventListener("click", close);
  append(head, el("span", "avatar avatar-xs avatar-app", "dt"), title, x);

  const body = el("div", "view-body");
  for (const block of view.blocks) {
    body.append(renderBlock(block, onButton, { input: (input) => drawInput(input, view, typed) }));
  }
  if (view.failure) body.append(el("div", "view-failure", view.failure));

  const actions = el("div", "modal-actions");
  const cancel = el("button", "bk-button", plainText(view.close) || "Cancel");
  cancel.type = "button";
  cancel.addEventListener("click", close);
  actions.append(cancel);
  if (view.submit) {
    const submitButton = el("button", "bk-button primary view-submit", plainText(view.submit));
    submitButton.type = "button";
    submitButton.addEventListener("click", submit);
    actions.append(submitButton);
  }
  append(dialog, head, body, actions);
  backdrop.append(dialog);
  document.removeEventListener("keydown", onKey);
  document.addEventListener("keydown", onKey);
  $("view-root").replaceChildren(backdrop);

  const wrong = [...modal.inputs.keys()].find((blockId) => view.errors[blockId]);
  const target = modal.inputs.get(wrong || focused) || modal.inputs.values().next().value;
  if (target) target.focus();
}

function drawInput(block, view, typed) {
  const element = block.element || {};
  const wrap = el("div", "view-input");
  const controlId = uniqueId("view-input");
  const label = el("label", "view-label", plainText(block.label));
  label.htmlFor = controlId;
  if (block.optional) label.append(el("span", "view-optional", " (optional)"));
  const sent = ((view.values || {})[block.block_id] || {})[element.action_id];
  const carried = typed.get(typedKey(block, element));
  const input = drawControl(block, element, controlId, carried !== undefined ? carried : fromState(sent));
  wrap.append(label, input.node);
  if (block.hint) wrap.append(renderTextObject(block.hint, "view-hint"));
  const message = view.errors[block.block_id];
  if (message) {
    wrap.classList.add("has-error");
    const error = el("div", "view-error", message);
    error.id = uniqueId("view-error");
    error.setAttribute("role", "alert");
    input.node.setAttribute("aria-describedby", error.id);
    wrap.append(error);
  }
  modal.inputs.set(block.block_id, { ...input, element, block });
  return wrap;
}

// What the view's state holds for an element, in the form the controls take.
function fromState(state) {
  if (!state) return undefined;
  if ("value" in state) return state.value || "";
  if ("selected_option" in state) return state.selected_option;
  if ("selected_options" in state) return state.selected_options;
  for (const key of ["selected_conversation", "selected_channel", "selected_user", "selected_date", "selected_time"]) {
    if (key in state) return state[key] || "";
  }
  return undefined;
}

const typedKey = (block, element) => `${block.block_id}\u0000${element.action_id}\u0000${element.type}`;

function typedValues() {
  const values = new Map();
  for (const { block, element, read } of modal.inputs.values()) values.set(typedKey(block, element), read());
  return values;
}

function focusedBlock() {
  for (const [blockId, input] of modal.inputs) {
    if (input.node.contains(document.activeElement)) return blockId;
  }
  return null;
}

// The controls. Each is { node, read(), focus() }; read() gives what the stand-in takes.

function drawControl(block, element, id, value) {
  const dispatch = Boolean(block.dispatch_action);
  const choose = (chosen) => {
    if (dispatch) sendAction(element, chosen);
  };
  switch (element.type) {
    case "plain_text_input":
    case "number_input":
    case "email_text_input":
    case "url_text_input":
      return textInput(element, id, value, choose);
    case "static_select":
    case "multi_static_select":
      return staticSelect(element, id, value, choose);
    case "radio_buttons":
    case "checkboxes":
      return choices(element, id, value, choose);
    case "external_select":
      return externalSelect(element, id, value, choose);
    case "conversations_select":
    case "channels_select":
    case "users_select":
      return entitySelect(element, id, value, choose);
    case "datepicker":
    case "timepicker": {
      const node = el("input", "view-control");
      node.id = id;
      node.type = element.type === "datepicker" ? "date" : "time";
      node.value = value || "";
      node.addEventListener("change", () => choose(node.value));
      return { node, read: () => node.value || null, focus: () => node.focus() };
    }
    default: {
      const node = rawJson(element, `Unsupported input: ${element.type}`);
      return { node, read: () => null, focus: () => {} };
    }
  }
}

function textInput(element, id, value, choose) {
  const multiline = element.type === "plain_text_input" && element.multiline;
  const node = el(multiline ? "textarea" : "input", "view-control");
  node.id = id;
  if (!multiline) {
    node.type = { number_input: "number", email_text_input: "email", url_text_input: "url" }[element.type] || "text";
  }
  if (element.placeholder) node.placeholder = plainText(element.placeholder);
  if (element.max_length) node.maxLength = element.max_length;
  node.value = value !== undefined ? value : element.initial_value || "";
  if (!multiline) {
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        choose(node.value);
      }
    });
  }
  const focus = () => {
    node.focus();
    // A redrawn input keeps the caret where typing goes on: at the end.
    if (node.type === "text" || multiline) node.setSelectionRange(node.value.length, node.value.length);
  };
  return { node, read: () => node.value, focus };
}

function optionNode(option) {
  const node = el("option", "", plainText(option.text));
  node.value = option.value;
  return node;
}

function staticSelect(element, id, value, choose) {
  const multi = element.type === "multi_static_select";
  const node = el("select", "view-control");
  node.id = id;
  node.multiple = multi;
  if (!multi) {
    const empty = el("option", "", plainText(element.placeholder) || "Choose an option");
    empty.value = "";
    node.append(empty);
  }
  for (const option of element.options || []) node.append(optionNode(option));
  for (const group of element.option_groups || []) {
    const optgroup = el("optgroup");
    optgroup.label = plainText(group.label);
    for (const option of group.options || []) optgroup.append(optionNode(option));
    node.append(optgroup);
  }
  const chosen = new Set((multi ? value || [] : [value]).filter(Boolean).map((o) => (typeof o === "string" ? o : o.value)));
  for (const option of node.options) option.selected = chosen.has(option.value);
  if (multi) node.size = Math.min(6, Math.max(2, node.options.length));
  const read = () => (multi ? [...node.selectedOptions].map((o) => o.value) : node.value || null);
  node.addEventListener("change", () => choose(read()));
  return { node, read, focus: () => node.focus() };
}

function choices(element, id, value, choose) {
  const multi = element.type === "checkboxes";
  const node = el("div", "view-choices");
  node.id = id;
  node.setAttribute("role", multi ? "group" : "radiogroup");
  const name = uniqueId("view-choice");
  const chosen = new Set((multi ? value || [] : [value]).filter(Boolean).map((o) => (typeof o === "string" ? o : o.value)));
  const boxes = [];
  for (const option of element.options || []) {
    const row = el("label", "view-choice");
    const box = el("input");
    box.type = multi ? "checkbox" : "radio";
    box.name = name;
    box.value = option.value;
    box.checked = chosen.has(option.value);
    box.addEventListener("change", () => choose(read()));
    boxes.push(box);
    append(row, box, renderTextObject(option.text, "view-choice-text"));
    node.append(row);
  }
  const read = () => {
    const checked = boxes.filter((box) => box.checked).map((box) => box.value);
    return multi ? checked : checked[0] || null;
  };
  return { node, read, focus: () => boxes[0] && boxes[0].focus() };
}

// An external select: typing asks the bot for options (through the stand-in), as Slack does
// once min_query_length characters are typed; picking one shows its text.
function externalSelect(element, id, value, choose) {
  const node = el("div", "view-combobox");
  const box = el("input", "view-control");
  box.id = id;
  box.type = "text";
  box.setAttribute("role", "combobox");
  box.setAttribute("aria-autocomplete", "list");
  box.setAttribute("aria-expanded", "false");
  box.autocomplete = "off";
  box.placeholder = plainText(element.placeholder) || "Type to search";
  const list = el("ul", "view-listbox");
  list.id = uniqueId("view-listbox");
  list.setAttribute("role", "listbox");
  list.hidden = true;
  box.setAttribute("aria-controls", list.id);
  let selected = value && typeof value === "object" ? value : element.initial_option || null;
  box.value = selected ? plainText(selected.text) : "";
  const minimum = element.min_query_length ?? DEFAULT_MIN_QUERY_LENGTH;
  let timer = null;
  let asked = 0;

  const showOptions = (options, note) => {
    list.replaceChildren();
    for (const option of options) {
      const item = el("li", "view-option", plainText(option.text));
      item.setAttribute("role", "option");
      item.dataset.value = option.value;
      item.addEventListener("mousedown", (event) => event.preventDefault());
      item.addEventListener("click", () => {
        selected = option;
        box.value = plainText(option.text);
        list.hidden = true;
        box.setAttribute("aria-expanded", "false");
        choose(option);
      });
      list.append(item);
    }
    if (note) list.append(el("li", "view-option-note", note));
    list.hidden = !list.childElementCount;
    box.setAttribute("aria-expanded", String(!list.hidden));
  };

  const search = async () => {
    const typed = box.value;
    if (typed.length < minimum) {
      showOptions([], typed ? `Type at least ${minimum} characters` : null);
      return;
    }
    const mine = (asked += 1);
    try {
      const answer = await api("/page/api/view/options", {
        user: modal.user, view_id: modal.view.id, action_id: element.action_id, value: typed,
      });
      if (mine !== asked) return;
      const grouped = (answer.option_groups || []).flatMap((group) => group.options || []);
      const options = [...(answer.options || []), ...grouped];
      showOptions(options, answer.error ? "No options (the app's answer could not be shown)" : options.length ? null : "No results");
    } catch (error) {
      if (mine === asked) showOptions([], `No options: ${error.message}`);
    }
  };

  box.addEventListener("input", () => {
    selected = null;
    clearTimeout(timer);
    timer = setTimeout(search, SEARCH_DELAY_MS);
  });
  box.addEventListener("focus", () => {
    if (minimum === 0 && !selected) search();
  });
  box.addEventListener("blur", () => {
    list.hidden = true;
    box.setAttribute("aria-expanded", "false");
  });
  append(node, box, list);
  // The option itself, so its text survives an update of the view.
  return { node, read: () => selected, focus: () => box.focus() };
}

function entitySelect(element, id, value, choose) {
  const node = el("select", "view-control");
  node.id = id;
  const empty = el("option", "", plainText(element.placeholder) || "Choose an option");
  empty.value = "";
  node.append(empty);
  const people = context.workspace.users.map((user) => [user.id, `@${user.name}`]);
  const channels = context.workspace.channels
    .filter((channel) => channel.members.includes(modal.user))
    .map((channel) => [channel.id, `# ${channel.name}`]);
  for (const [entity, name] of element.type === "users_select" ? people : channels) {
    const option = el("option", "", name);
    option.value = entity;
    node.append(option);
  }
  node.value = value || "";
  node.addEventListener("change", () => choose(node.value || null));
  return { node, read: () => node.value || null, focus: () => node.focus() };
}

// Talking to the stand-in.

async function sendAction(element, value) {
  try {
    const answer = await api("/page/api/view/action", {
      user: modal.user, view_id: modal.view.id, action_id: element.action_id, value,
    });
    if (!answer.ok) toast(`The app did not answer (${answer.error || answer.status}).`);
  } catch (error) {
    toast(`Could not send: ${error.message}`);
  } finally {
    modal.refresh();
  }
}

function onButton(button) {
  sendAction(button, null);
}

async function submit() {
  if (modal.busy || !modal.view) return;
  const values = {};
  for (const [blockId, input] of modal.inputs) values[blockId] = input.read();
  modal.busy = true;
  $("view-root").classList.add("busy");
  try {
    const answer = await api("/page/api/view/submit", { user: modal.user, view_id: modal.view.id, values });
    if (!answer.ok) toast(`The app did not take it (${answer.error || answer.status}).`);
  } catch (error) {
    if (error.data && error.data.errors) showErrors(error.data.errors);
    else toast(`Could not submit: ${error.message}`);
  } finally {
    modal.busy = false;
    $("view-root").classList.remove("busy");
    modal.refresh();
  }
}

// Errors Slack's own client shows (a required input left empty), without asking the bot.
function showErrors(errors) {
  for (const [blockId, message] of Object.entries(errors)) {
    const input = modal.inputs.get(blockId);
    if (!input) continue;
    const wrap = input.node.closest(".view-input");
    if (wrap.querySelector(".view-error")) continue;
    wrap.classList.add("has-error");
    const error = el("div", "view-error", message);
    error.setAttribute("role", "alert");
    wrap.append(error);
  }
}

async function close() {
  if (!modal.view) return;
  const { user, view } = modal;
  hide();
  try {
    await api("/page/api/view/close", { user, view_id: view.id });
  } catch (error) {
    toast(`Could not close: ${error.message}`);
  } finally {
    modal.refresh();
  }
}

function onKey(event) {
  // A confirm dialog above the modal takes Escape first.
  if (event.key === "Escape" && !$("dialog-root").childElementCount) close();
}
