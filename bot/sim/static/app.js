// The demo's channel view: renders the Slack stand-in's messages (the bot's real Block Kit JSON)
// and sends commands and clicks back through the stand-in, which signs them as Slack does.
//
// Everything shown is built with DOM nodes and textContent, never innerHTML: the bot escapes
// what users typed as &amp; &lt; &gt;, and those are decoded for display only, so a reason such
// as "<!channel>" shows literally instead of becoming markup or a mention.
"use strict";

(() => {
  const POLL_MS = 700;
  const STORAGE_KEY = "dumptask-demo-user";
  const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">" };
  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️",
    hourglass: "⌛", hourglass_flowing_sand: "⏳", rocket: "🚀", no_entry: "⛔",
    no_entry_sign: "🚫", lock: "🔒", key: "🔑", stopwatch: "⏱️", arrow_forward: "▶️",
    double_vertical_bar: "⏸️", pause_button: "⏸️", large_green_circle: "🟢",
    red_circle: "🔴", large_yellow_circle: "🟡", eyes: "👀", tada: "🎉", wave: "👋",
    information_source: "ℹ️", bell: "🔔", fire: "🔥", robot_face: "🤖", thumbsup: "👍",
    "+1": "👍", ok_hand: "👌", hammer_and_wrench: "🛠️", package: "📦", clock3: "🕒",
  };
  const PALETTE = ["#e8912d", "#2bac76", "#9f4a9a", "#e01e5a", "#0b8aa8", "#5b6abf"];
  // Slack draws emoji as images; these few (the ones the bot sends) are drawn with CSS so they
  // look the same on a machine without an emoji font, as CI's is.
  const BADGES = {
    "✅": ["check", "✓", "white_check_mark"], "✔️": ["check", "✓", "heavy_check_mark"],
    "⚠️": ["warning", "!", "warning"], "⚠": ["warning", "!", "warning"], "❌": ["cross", "✕", "x"],
  };
  const BADGE_PATTERN = /(✅|✔️|⚠️|⚠|❌)/u;

  const state = {
    workspace: null,
    user: null,
    channel: null,
    lastKey: null,
    polling: false,
    // Bumped by every refresh (another user or channel, a sent command or click): an answer
    // asked for under an older generation is stale and is never drawn.
    generation: 0,
  };

  const $ = (id) => document.getElementById(id);

  // DOM helpers: every string goes in as text.

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function append(parent, ...children) {
    for (const child of children) {
      if (child === null || child === undefined) continue;
      parent.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return parent;
  }

  // Lookups.

  const userById = (id) => state.workspace.users.find((u) => u.id === id);
  const channelById = (id) => state.workspace.channels.find((c) => c.id === id);
  const groupById = (id) => state.workspace.usergroups.find((g) => g.id === id);

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

  // Text: entities, emoji, Slack dates.

  function decodeEntities(text) {
    return text.replace(/&(amp|lt|gt);/g, (entity) => ENTITIES[entity]);
  }

  function replaceEmoji(text) {
    return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  function prettyDay(date, plain) {
    const today = new Date();
    const yesterday = new Date(today);
    yesterday.setDate(today.getDate() - 1);
    const tomorrow = new Date(today);
    tomorrow.setDate(today.getDate() + 1);
    if (sameDay(date, today)) return "today";
    if (sameDay(date, yesterday)) return "yesterday";
    if (sameDay(date, tomorrow)) return "tomorrow";
    return plain;
  }

  function ago(date) {
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    const future = seconds < 0;
    const abs = Math.abs(seconds);
    const [value, unit] =
      abs < 60 ? [abs, "second"] : abs < 3600 ? [Math.round(abs / 60), "minute"]
        : abs < 86400 ? [Math.round(abs / 3600), "hour"] : [Math.round(abs / 86400), "day"];
    const phrase = `${value} ${unit}${value === 1 ? "" : "s"}`;
    return future ? `in ${phrase}` : `${phrase} ago`;
  }

  // Slack's <!date^epoch^format|fallback>: each reader sees it in their own time zone.
  function formatSlackDate(epoch, format, fallback) {
    const date = new Date(epoch * 1000);
    if (Number.isNaN(date.getTime())) return fallback;
    const pad = (n) => String(n).padStart(2, "0");
    const dateShort = date.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
    const dateMedium = date.toLocaleDateString(undefined, { month: "long", day: "numeric", year: "numeric" });
    const dateLong = date.toLocaleDateString(undefined, {
      weekday: "long", month: "long", day: "numeric", year: "numeric",
    });
    const tokens = {
      date_num: `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
      date: dateMedium,
      date_short: dateShort,
      date_long: dateLong,
      date_pretty: prettyDay(date, dateMedium),
      date_short_pretty: prettyDay(date, dateShort),
      date_long_pretty: prettyDay(date, dateLong),
      time: date.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" }),
      time_secs: date.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" }),
      ago: ago(date),
    };
    let unknown = false;
    const text = format.replace(/\{(\w+)\}/g, (whole, name, offset) => {
      if (!(name in tokens)) {
        unknown = true;
        return whole;
      }
      const value = tokens[name];
      return offset === 0 ? value.charAt(0).toUpperCase() + value.slice(1) : value;
    });
    return unknown ? fallback : text;
  }

  // mrkdwn.

  // One <...> control sequence: a mention, a date, a link. Labels are mrkdwn-escaped text.
  function renderControl(inner) {
    const bar = inner.indexOf("|");
    const target = bar === -1 ? inner : inner.slice(0, bar);
    const label = bar === -1 ? null : decodeEntities(inner.slice(bar + 1));
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const bot = state.workspace.bot;
      const person = userById(id);
      const name = id === bot.user_id ? bot.name : person ? person.name : label || id;
      const node = el("span", "mention", `@${name}`);
      if (id === state.user) node.classList.add("mention-me");
      node.dataset.userId = id;
      return node;
    }
    if (target.startsWith("#")) {
      const channel = channelById(target.slice(1));
      return el("span", "mention channel-mention", `#${channel ? channel.name : label || target.slice(1)}`);
    }
    if (target.startsWith("!subteam^")) {
      const group = groupById(target.slice("!subteam^".length));
      const handle = group ? group.handle : (label || target).replace(/^@/, "");
      const node = el("span", "mention", `@${handle}`);
      if (group && group.members.includes(state.user)) node.classList.add("mention-me");
      return node;
    }
    if (target.startsWith("!date^")) {
      const [, epoch, format = "", link] = target.split("^");
      const fallback = label || "";
      const shown = formatSlackDate(Number(epoch), decodeEntities(format), fallback);
      const node = el("time", "slack-date", shown);
      const date = new Date(Number(epoch) * 1000);
      if (!Number.isNaN(date.getTime())) node.dateTime = date.toISOString();
      node.title = fallback;
      return link ? linkNode(link, shown) : node;
    }
    if (["!here", "!channel", "!everyone"].includes(target)) {
      return el("span", "mention mention-me", `@${target.slice(1)}`);
    }
    if (/^(https?:\/\/|mailto:)/i.test(target)) {
      return linkNode(decodeEntities(target), label || decodeEntities(target));
    }
    return document.createTextNode(label || `<${decodeEntities(inner)}>`);
  }

  function linkNode(url, text) {
    if (!/^(https?:\/\/|mailto:)/i.test(url)) return document.createTextNode(text);
    const node = el("a", "link", text);
    node.href = url;
    node.target = "_blank";
    node.rel = "noopener noreferrer";
    return node;
  }

  // Text between control sequences: placeholders stand for them; entities decoded last.
  function appendText(parent, text, controls, { emoji = true } = {}) {
    const parts = text.split(/\uE000(\d+)\uE001/);
    parts.forEach((part, index) => {
      if (index % 2 === 1) {
        parent.append(renderControl(controls[Number(part)]));
        return;
      }
      const lines = part.split("\n");
      lines.forEach((line, lineIndex) => {
        if (lineIndex > 0) parent.append(el("br"));
        const decoded = decodeEntities(line);
        if (decoded) appendEmojiText(parent, emoji ? replaceEmoji(decoded) : decoded);
      });
    });
  }

  function appendEmojiText(parent, text) {
    text.split(BADGE_PATTERN).forEach((part, index) => {
      if (index % 2 === 0) {
        if (part) parent.append(document.createTextNode(part));
        return;
      }
      const [kind, glyph, name] = BADGES[part];
      const badge = el("span", `emoji emoji-${kind}`, glyph);
      badge.setAttribute("role", "img");
      badge.setAttribute("aria-label", name);
      badge.title = `:${name}:`;
      parent.append(badge);
    });
  }

  const INLINE = /`([^`\n]+)`|(?<![\p{L}\p{N}])([*_~])(?!\s)([^\n]*?[^\s])\2(?![\p{L}\p{N}])/u;
  const STYLE_TAGS = { "*": "b", _: "i", "~": "s" };

  function appendInline(parent, text, controls) {
    let rest = text;
    while (rest) {
      const match = INLINE.exec(rest);
      if (!match) {
        appendText(parent, rest, controls);
        return;
      }
      appendText(parent, rest.slice(0, match.index), controls);
      if (match[1] !== undefined) {
        const code = el("code", "inline-code");
        appendText(code, match[1], controls, { emoji: false });
        parent.append(code);
      } else {
        const styled = el(STYLE_TAGS[match[2]]);
        appendInline(styled, match[3], controls);
        parent.append(styled);
      }
      rest = rest.slice(match.index + match[0].length);
    }
  }

  function renderMrkdwn(raw) {
    const fragment = document.createDocumentFragment();
    const controls = [];
    const text = String(raw || "")
      .replace(/[\uE000\uE001]/g, "")
      .replace(/<([^<>\n]*)>/g, (whole, inner) => {
        controls.push(inner);
        return `\uE000${controls.length - 1}\uE001`;
      });
    const chunks = text.split(/```([\s\S]*?)```/);
    chunks.forEach((chunk, index) => {
      if (index % 2 === 1) {
        const pre = el("pre", "code-block");
        appendText(pre, chunk.replace(/^\n/, ""), controls, { emoji: false });
        fragment.append(pre);
        return;
      }
      // A code block is a block of its own: the line breaks around it are not content.
      let paragraph = index > 0 ? chunk.replace(/^\n/, "") : chunk;
      if (index < chunks.length - 1) paragraph = paragraph.replace(/\n$/, "");
      if (paragraph) appendParagraphs(fragment, paragraph, controls);
    });
    return fragment;
  }

  // Lines starting with ">" (a real one, not the escaped &gt; of user text) form a quote.
  function appendParagraphs(parent, chunk, controls) {
    const lines = chunk.split("\n");
    let plain = [];
    let quote = [];
    const flushPlain = () => {
      if (plain.length) appendInline(parent, plain.join("\n"), controls);
      plain = [];
    };
    const flushQuote = () => {
      if (!quote.length) return;
      const node = el("blockquote", "quote");
      appendInline(node, quote.join("\n"), controls);
      parent.append(node);
      quote = [];
    };
    lines.forEach((line, index) => {
      const last = index === lines.length - 1;
      if (line.startsWith(">")) {
        flushPlain();
        quote.push(line.replace(/^> ?/, ""));
      } else {
        flushQuote();
        plain.push(line);
        if (last) flushPlain();
      }
    });
    flushQuote();
    flushPlain();
  }

  function renderTextObject(object, className) {
    const node = el("div", className);
    if (!object || typeof object !== "object") return node;
    if (object.type === "mrkdwn") {
      node.classList.add("mrkdwn");
      node.append(renderMrkdwn(object.text));
    } else {
      node.textContent = object.emoji === false ? String(object.text || "") : replaceEmoji(String(object.text || ""));
    }
    return node;
  }

  const plainText = (object) => (object && typeof object === "object" ? String(object.text || "") : "");

  // Block Kit.

  function rawJson(value, title) {
    const wrap = el("div", "bk-unknown");
    append(wrap, el("div", "bk-unknown-title", title), el("pre", "", JSON.stringify(value, null, 2)));
    return wrap;
  }

  function renderElement(element, message) {
    if (element && element.type === "button") return renderButton(element, message);
    if (element && element.type === "image") return el("span", "bk-image", `🖼 ${element.alt_text || "image"}`);
    return rawJson(element, `Unsupported element: ${element && element.type}`);
  }

  function renderButton(button, message) {
    const node = el("button", "bk-button", replaceEmoji(plainText(button.text)));
    node.type = "button";
    if (button.style === "primary" || button.style === "danger") node.classList.add(button.style);
    node.dataset.actionId = button.action_id || "";
    node.addEventListener("click", () => {
      if (button.confirm) openConfirm(button.confirm, () => sendClick(message, button, node));
      else sendClick(message, button, node);
    });
    return node;
  }

  const BLOCKS = {
    header(block) {
      return el("div", "bk-header", replaceEmoji(plainText(block.text)));
    },
    section(block, message) {
      const node = el("div", "bk-section");
      const main = el("div", "bk-section-main");
      if (block.text) main.append(renderTextObject(block.text, "bk-section-text"));
      if (Array.isArray(block.fields) && block.fields.length) {
        const fields = el("div", "bk-fields");
        for (const field of block.fields) fields.append(renderTextObject(field, "bk-field"));
        main.append(fields);
      }
      node.append(main);
      if (block.accessory) {
        const accessory = el("div", "bk-accessory");
        accessory.append(renderElement(block.accessory, message));
        node.append(accessory);
      }
      return node;
    },
    context(block) {
      const node = el("div", "bk-context");
      for (const element of block.elements || []) {
        if (element.type === "image") node.append(el("span", "bk-context-image", "🖼"));
        else node.append(renderTextObject(element, "bk-context-item"));
      }
      return node;
    },
    divider() {
      return el("hr", "bk-divider");
    },
    actions(block, message) {
      const node = el("div", "bk-actions");
      for (const element of block.elements || []) node.append(renderElement(element, message));
      return node;
    },
    image(block) {
      const node = el("div", "bk-image-block");
      if (block.title) node.append(el("div", "bk-image-title", plainText(block.title)));
      node.append(el("div", "bk-image", `🖼 ${block.alt_text || "image"} (not loaded: the demo stays offline)`));
      return node;
    },
  };

  function renderBlocks(message) {
    const fragment = document.createDocumentFragment();
    for (const block of message.blocks) {
      const render = block && Object.prototype.hasOwnProperty.call(BLOCKS, block.type) ? BLOCKS[block.type] : null;
      const node = render ? render(block, message) : rawJson(block, `Unsupported block: ${block && block.type}`);
      node.classList.add("bk-block");
      if (block && block.block_id) node.dataset.blockId = block.block_id;
      fragment.append(node);
    }
    return fragment;
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
    if (Array.isArray(message.blocks) && message.blocks.length) content.append(renderBlocks(message));
    else {
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
  }

  function renderIntro(channel) {
    const node = el("div", "channel-intro");
    const hint = state.workspace.command;
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

  async function api(path, body) {
    const options = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
    return data;
  }

  function toast(text) {
    const node = $("toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { node.hidden = true; }, 4000);
  }

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
          renderMessages(data);
        }
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
    state.user = id;
    try {
      localStorage.setItem(STORAGE_KEY, id);
    } catch {
      // Storage may be off (private windows); the choice then lasts for this page only.
    }
    renderPeople();
    renderChannels();
    renderMe();
    state.forceScroll = true;
    refresh();
  }

  function selectChannel(id) {
    state.channel = id;
    renderChannels();
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

  function renderChannelHeader() {
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
    renderPeople();
    renderChannels();
    renderChannelHeader();
    renderMe();
    renderComposer();
    document.body.dataset.ready = "true";
    await poll();
    setInterval(poll, POLL_MS);
  }

  main().catch((error) => {
    const banner = $("banner");
    banner.textContent = `The page could not start: ${error.message}`;
    banner.hidden = false;
  });
})();
