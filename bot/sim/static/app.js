// The demo's Slack-like client: a channel (or a person's DM with the app), the modal the bot
// opened for the person at the keyboard, and a DIS console beside them. It renders the Slack
// stand-in's messages (the bot's real Block Kit JSON) and sends commands, clicks and what is
// done in a modal back through the stand-in, which signs them as Slack does.
//
// Everything shown is built with DOM nodes and textContent, never innerHTML (see mrkdwn.js).

import { renderBlocks } from "./blocks.js";
import { startConsole } from "./console.js";
import { $, api, append, el, toast } from "./dom.js";
import { syncModal } from "./modal.js";
import { context, plainText, renderMrkdwn, renderTextObject, replaceEmoji } from "./mrkdwn.js";

const POLL_MS = 700;
const STORAGE_KEY = "dumptask-demo-user";
const PALETTE = ["#e8912d", "#2bac76", "#9f4a9a", "#e01e5a", "#0b8aa8", "#5b6abf"];

const state = {
  workspace: null,
  user: null,
  channel: null,
  lastKey: null,
  polling: false,
  // Bumped by every refresh (another user or channel, a sent command or click): an answer
  // asked for under an older generation is stale and is never drawn.
  generation: 0,
  // The person's DMs with the app, and how many messages of each they have seen.
  dms: [],
  seen: {},
  // A message to scroll to and mark once its channel is drawn (a followed permalink).
  highlight: null,
};

// Lookups.

const userById = (id) => state.workspace.users.find((u) => u.id === id);
const channelById = (id) => state.workspace.channels.find((c) => c.id === id);
const isDm = (id) => id.startsWith("D");

function initials(name) {
  const words = String(name).trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return "?";
  const letters = words.length === 1 ? words[0].slice(0, 2) : words[0][0] + words[words.length - 1][0];
  return letters.toUpperCase();
}

// People get distinct colours in the order the workspace lists them; others by a hash.
function colorFor(id) {
  const index = state.workspace.users.findIndex((user) => user.id === id);
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[(index >= 0 ? index : hash) % PALETTE.length];
}

function avatar(author, size) {
  const classes = ["avatar", size ? `avatar-${size}` : ""];
  if (author.kind === "app") {
    classes.push("avatar-app");
    return el("span", classes.join(" "), "dt");
  }
  if (author.kind === "slackbot") {
    classes.push("avatar-slackbot");
    return el("span", classes.join(" "), "SB");
  }
  const node = el("span", classes.join(" "), initials(author.real_name || author.name));
  node.style.backgroundColor = colorFor(author.id);
  return node;
}

// Messages.

function timeOf(ts) {
  return new Date(Number(ts) * 1000).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
}

function renderMessage(message, { reply = false } = {}) {
  const node = el("div", "message");
  node.dataset.ts = message.ts;
  node.dataset.author = message.author.id;
  if (reply) node.classList.add("reply");
  if (message.ephemeral) node.classList.add("ephemeral");
  if (message.author.kind === "app") node.classList.add("from-app");
  if (message.ephemeral) {
    node.append(el("div", "ephemeral-note", "Only visible to you"));
  }
  const row = el("div", "message-row");
  const body = el("div", "message-body");
  const meta = el("div", "message-meta");
  append(meta, el("span", "author", message.author.kind === "person" ? message.author.real_name : message.author.name));
  if (message.author.kind === "app") meta.append(el("span", "app-badge", "APP"));
  const time = el("time", "message-time", timeOf(message.ts));
  time.dateTime = new Date(Number(message.ts) * 1000).toISOString();
  meta.append(time);
  if (message.edited) meta.append(el("span", "edited", "(edited)"));
  const content = el("div", "message-content");
  if (Array.isArray(message.blocks) && message.blocks.length) {
    content.append(renderBlocks(message.blocks, (button, node) => press(message, button, node)));
  } else {
    const text = el("div", "mrkdwn message-text");
    text.append(renderMrkdwn(message.text));
    content.append(text);
  }
  append(body, meta, content);
  append(row, avatar(message.author, reply ? "sm" : ""), body);
  node.append(row);
  return node;
}

function renderMessages(data) {
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const top = [];
  const replies = new Map();
  const tops = new Set(data.messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts).map((m) => m.ts));
  for (const message of data.messages) {
    if (message.thread_ts && message.thread_ts !== message.ts && tops.has(message.thread_ts)) {
      if (!replies.has(message.thread_ts)) replies.set(message.thread_ts, []);
      replies.get(message.thread_ts).push(message);
    } else {
      top.push(message);
    }
  }
  const fragment = document.createDocumentFragment();
  fragment.append(renderIntro(data.channel));
  for (const message of top) {
    const group = el("div", "message-group");
    group.append(renderMessage(message));
    const thread = replies.get(message.ts);
    if (thread) {
      const node = el("div", "thread");
      node.dataset.threadTs = message.ts;
      const count = thread.length;
      node.append(el("div", "thread-count", `${count} ${count === 1 ? "reply" : "replies"}`));
      for (const reply of thread) node.append(renderMessage(reply, { reply: true }));
      group.append(node);
    }
    fragment.append(group);
  }
  list.replaceChildren(fragment);
  if (nearBottom || state.forceScroll) list.scrollTop = list.scrollHeight;
  state.forceScroll = false;
  showHighlight();
}

// A followed permalink: scroll to its message and mark it, once it is drawn.
function showHighlight() {
  if (!state.highlight || state.highlight.channel !== state.channel) return;
  const node = [...document.querySelectorAll("#messages .message")].find(
    (message) => message.dataset.ts === state.highlight.ts,
  );
  if (!node) return;
  node.classList.add("highlight");
  node.scrollIntoView({ block: "center" });
  state.highlight = null;
}

function followPermalink(channel, ts) {
  const known = channelById(channel) || state.dms.some((dm) => dm.id === channel);
  if (!known) {
    toast("That message is in a conversation you cannot see.");
    return;
  }
  state.highlight = { channel, ts };
  if (channel === state.channel) showHighlight();
  else selectChannel(channel);
}

function renderIntro(channel) {
  const node = el("div", "channel-intro");
  const hint = state.workspace.command;
  if (channel.is_im) {
    append(
      node,
      el("h2", "", "This is the very beginning of your direct messages with dumptask"),
      el("p", "", "The app sends you what needs you here: requests to approve, reminders, outcomes."),
    );
    return node;
  }
  append(
    node,
    el("h2", "", `This is the very beginning of #${channel.name}`),
    el("p", "", "Everything here runs on this machine: the real bot, a Slack stand-in and a DIS stand-in."),
  );
  const tryIt = el("p", "");
  append(tryIt, "Try it: as alice, type ", el("code", "inline-code",
    `${hint.name} start orders-stream orders-archive --reason "INC-42 demo"`),
    ", then switch to bob or carol and approve.");
  node.append(tryIt);
  return node;
}

// A button: one with a confirm dialog asks first.

function press(message, button, node) {
  if (button.confirm) openConfirm(button.confirm, () => sendClick(message, button, node));
  else sendClick(message, button, node);
}

// The confirm dialog of a button: confirm sends the click, deny (or Escape) closes it.

function openConfirm(confirm, onConfirm) {
  const root = $("dialog-root");
  const backdrop = el("div", "modal-backdrop");
  const modal = el("div", "modal");
  modal.setAttribute("role", "dialog");
  modal.setAttribute("aria-modal", "true");
  modal.setAttribute("aria-labelledby", "modal-title");
  const title = el("h2", "modal-title", replaceEmoji(plainText(confirm.title) || "Are you sure?"));
  title.id = "modal-title";
  const close = () => {
    document.removeEventListener("keydown", onKey);
    root.replaceChildren();
  };
  const onKey = (event) => {
    if (event.key === "Escape") close();
  };
  const closeButton = el("button", "modal-close", "×");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", "Close");
  closeButton.addEventListener("click", close);
  const text = renderTextObject(confirm.text, "modal-text");
  const deny = el("button", "bk-button", plainText(confirm.deny) || "Cancel");
  deny.type = "button";
  deny.addEventListener("click", close);
  const ok = el("button", `bk-button ${confirm.style === "danger" ? "danger" : "primary"}`,
    plainText(confirm.confirm) || "Yes");
  ok.type = "button";
  ok.addEventListener("click", () => {
    close();
    onConfirm();
  });
  const actions = el("div", "modal-actions");
  append(actions, deny, ok);
  const head = el("div", "modal-head");
  append(head, title, closeButton);
  append(modal, head, text, actions);
  backdrop.append(modal);
  backdrop.addEventListener("click", (event) => {
    if (event.target === backdrop) close();
  });
  document.addEventListener("keydown", onKey);
  root.replaceChildren(backdrop);
  ok.focus();
}

// Talking to the stand-in.

async function sendClick(message, button, node) {
  node.disabled = true;
  node.classList.add("busy");
  try {
    const answer = await api("/page/api/click", {
      user: state.user, channel: state.channel, ts: message.ts, action_id: button.action_id,
    });
    if (!answer.ok) toast(`The app did not answer the click (${answer.error || answer.status}).`);
  } catch (error) {
    toast(`Click failed: ${error.message}`);
  } finally {
    refresh();
  }
}

async function send(text) {
  const body = { user: state.user, channel: state.channel, text };
  const path = text.startsWith("/") ? "/page/api/command" : "/page/api/message";
  state.forceScroll = true;
  try {
    await api(path, body);
    return true;
  } catch (error) {
    toast(`Could not send: ${error.message}`);
    return false;
  } finally {
    refresh();
  }
}

function refresh() {
  state.lastKey = null;
  state.generation += 1;
  poll();
}

// One poll at a time. A refresh while one is in flight cannot start another, so the poll in
// flight notices the new generation when its answer comes, drops that answer (it may be for
// the previous user, whose ephemeral messages must not stay on screen) and asks again.
async function poll() {
  if (state.polling || !state.user) return;
  state.polling = true;
  try {
    let asked;
    do {
      asked = state.generation;
      const { user, channel } = state;
      const query = new URLSearchParams({ channel, user });
      const data = await api(`/page/api/messages?${query}`);
      $("banner").hidden = true;
      const key = `${user}|${channel}|${data.version}`;
      if (asked === state.generation && key !== state.lastKey) {
        state.lastKey = key;
        state.dms = data.dms;
        renderMessages(data);
        renderDms();
      }
      if (asked === state.generation) syncModal(data.modal, user, refresh);
    } while (asked !== state.generation);
  } catch (error) {
    const banner = $("banner");
    banner.textContent = `Lost touch with the demo (${error.message}). Is \`dumptask-bot demo\` still running?`;
    banner.hidden = false;
  } finally {
    state.polling = false;
  }
}

// Chrome: people, channels, the message box.

function selectUser(id) {
  const wasDm = isDm(state.channel);
  state.user = id;
  context.user = id;
  state.dms = [];
  try {
    localStorage.setItem(STORAGE_KEY, id);
  } catch {
    // Storage may be off (private windows); the choice then lasts for this page only.
  }
  renderPeople();
  renderChannels();
  renderDms();
  renderMe();
  state.forceScroll = true;
  // Someone else's DM is not theirs to read: show them their own.
  if (wasDm) openDm();
  else refresh();
}

function selectChannel(id) {
  state.channel = id;
  renderChannels();
  renderDms();
  renderChannelHeader();
  state.forceScroll = true;
  refresh();
}

function renderPeople() {
  const list = $("people");
  list.replaceChildren();
  for (const user of state.workspace.users) {
    const item = el("li");
    const button = el("button", "sidebar-item person");
    button.type = "button";
    button.dataset.user = user.id;
    button.setAttribute("role", "radio");
    button.setAttribute("aria-checked", String(user.id === state.user));
    button.setAttribute("aria-label", `${user.name}${user.role ? ` (${user.role})` : ""}`);
    if (user.id === state.user) button.classList.add("active");
    const names = el("span", "person-names");
    append(names, el("span", "person-name", user.name), el("span", "person-real", user.real_name));
    append(button, avatar({ ...user, kind: "person" }, "xs"), names);
    if (user.role) button.append(el("span", `role role-${user.role}`, user.role));
    button.addEventListener("click", () => selectUser(user.id));
    item.append(button);
    list.append(item);
  }
}

function renderChannels() {
  const list = $("channels");
  list.replaceChildren();
  for (const channel of state.workspace.channels) {
    const item = el("li");
    const button = el("button", "sidebar-item", `# ${channel.name}`);
    button.type = "button";
    button.dataset.channel = channel.id;
    if (channel.id === state.channel) {
      button.classList.add("active");
      button.setAttribute("aria-current", "page");
    }
    button.addEventListener("click", () => selectChannel(channel.id));
    item.append(button);
    list.append(item);
  }
}

// The app in the sidebar: its DM with the person at the keyboard, and how many messages there
// they have not seen yet.
function renderDms() {
  const button = $("dm-app");
  const [dm] = state.dms;
  const active = isDm(state.channel);
  button.classList.toggle("active", active);
  if (active) button.setAttribute("aria-current", "page");
  else button.removeAttribute("aria-current");
  if (dm && active) state.seen[dm.id] = dm.count;
  const unread = dm ? dm.count - (state.seen[dm.id] || 0) : 0;
  const badge = $("dm-badge");
  badge.textContent = String(unread);
  badge.hidden = unread <= 0;
  button.setAttribute("aria-label", unread > 0 ? `dumptask, ${unread} new` : "dumptask");
}

async function openDm() {
  try {
    const answer = await api("/page/api/dm", { user: state.user });
    selectChannel(answer.channel);
  } catch (error) {
    toast(`Could not open the DM: ${error.message}`);
  }
}

function renderChannelHeader() {
  if (isDm(state.channel)) {
    $("channel-title").textContent = "dumptask";
    document.title = "dumptask (DM) · dumptask demo";
    $("channel-meta").textContent = "Direct messages with the app · only you can see them";
    $("message-input").placeholder =
      `Message dumptask or ${state.workspace.command.name} ${state.workspace.command.usage_hint}`;
    return;
  }
  const channel = channelById(state.channel);
  $("channel-title").textContent = `# ${channel.name}`;
  document.title = `#${channel.name} · dumptask demo`;
  const members = channel.members.length + (channel.bot_member ? 1 : 0);
  $("channel-meta").textContent =
    `${members} members · dumptask ${channel.bot_member ? "is in this channel" : "is not in this channel"}`;
  $("message-input").placeholder = `Message #${channel.name} or ${state.workspace.command.name} ${state.workspace.command.usage_hint}`;
}

function renderMe() {
  const me = userById(state.user);
  const node = $("me");
  node.replaceChildren();
  append(node, "You are ", avatar({ ...me, kind: "person" }, "xs"), el("strong", "", me.name));
  if (me.role) node.append(el("span", `role role-${me.role}`, me.role));
}

function renderComposer() {
  const command = state.workspace.command;
  const footer = $("composer-footer");
  append(footer, el("strong", "", command.name), ` ${command.usage_hint}`, el("span", "footer-sep", " · "),
    "Enter to send · pick who you are on the left");
  const hint = $("command-hint");
  const row = el("button", "command-hint-row");
  row.type = "button";
  const names = el("div", "command-hint-text");
  const usage = el("div");
  append(usage, el("strong", "", command.name), " ", el("span", "usage-hint", command.usage_hint));
  append(names, usage, el("div", "command-hint-description", command.description));
  append(row, el("span", "avatar avatar-xs avatar-app", "dt"), names, el("span", "command-hint-app", "dumptask"));
  row.addEventListener("click", () => {
    const input = $("message-input");
    input.value = `${command.name} `;
    input.focus();
    updateHint();
  });
  append(hint, el("div", "command-hint-title", "Commands matching"), row);

  const input = $("message-input");
  const updateHint = () => {
    const value = input.value;
    hint.hidden = !(value.startsWith("/") && command.name.startsWith(value.split(" ")[0]) && !value.includes(" "));
  };
  input.addEventListener("input", updateHint);
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.disabled = true;
    const sent = await send(text);
    input.disabled = false;
    if (sent) input.value = "";
    updateHint();
    input.focus();
  });
}

async function main() {
  state.workspace = await api("/page/api/workspace");
  $("workspace-name").textContent = state.workspace.team.name;
  state.channel = state.workspace.default_channel;
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    saved = null;
  }
  const first = state.workspace.users[0];
  state.user = userById(saved) ? saved : first && first.id;
  context.workspace = state.workspace;
  context.user = state.user;
  context.onPermalink = followPermalink;
  $("dm-app").addEventListener("click", openDm);
  renderPeople();
  renderChannels();
  renderDms();
  renderChannelHeader();
  renderMe();
  renderComposer();
  startConsole(state.workspace);
  document.body.dataset.ready = "true";
  await poll();
  setInterval(poll, POLL_MS);
}

main().catch((error) => {
  const banner = $("banner");
  banner.textContent = `The page could not start: ${error.message}`;
  banner.hidden = false;
});
