// mrkdwn, plain_text and Slack's control sequences (mentions, channels, dates, links), as DOM.
//
// The bot escapes what people typed as &amp; &lt; &gt;; those are decoded for display only, so
// a reason such as "<!channel>" shows literally instead of becoming markup or a mention.
// ``context`` says who is reading (mentions of them stand out) and whom names resolve to.

import { el } from "./dom.js";

export const context = {
  workspace: null,
  user: null,
  // Called with (channel, ts) when a permalink to this workspace is followed.
  onPermalink: null,
};

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
// Slack draws emoji as images; these few (the ones the bot sends) are drawn with CSS so they
// look the same on a machine without an emoji font, as CI's is.
const BADGES = {
  "✅": ["check", "✓", "white_check_mark"], "✔️": ["check", "✓", "heavy_check_mark"],
  "⚠️": ["warning", "!", "warning"], "⚠": ["warning", "!", "warning"], "❌": ["cross", "✕", "x"],
};
const BADGE_PATTERN = /(✅|✔️|⚠️|⚠|❌)/u;

// Text: entities, emoji, Slack dates.

export function decodeEntities(text) {
  return text.replace(/&(amp|lt|gt);/g, (entity) => ENTITIES[entity]);
}

export function replaceEmoji(text) {
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

const userById = (id) => context.workspace.users.find((u) => u.id === id);
const channelById = (id) => context.workspace.channels.find((c) => c.id === id);
const groupById = (id) => context.workspace.usergroups.find((g) => g.id === id);

// One <...> control sequence: a mention, a date, a link. Labels are mrkdwn-escaped text.
function renderControl(inner) {
  const bar = inner.indexOf("|");
  const target = bar === -1 ? inner : inner.slice(0, bar);
  const label = bar === -1 ? null : decodeEntities(inner.slice(bar + 1));
  if (target.startsWith("@")) {
    const id = target.slice(1);
    const bot = context.workspace.bot;
    const person = userById(id);
    const name = id === bot.user_id ? bot.name : person ? person.name : label || id;
    const node = el("span", "mention", `@${name}`);
    if (id === context.user) node.classList.add("mention-me");
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
    if (group && group.members.includes(context.user)) node.classList.add("mention-me");
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

// A permalink to this workspace opens in the page (the demo is offline), anything else in a tab.
function linkNode(url, text) {
  if (!/^(https?:\/\/|mailto:)/i.test(url)) return document.createTextNode(text);
  const permalink = parsePermalink(url);
  if (permalink && context.onPermalink) {
    const node = el("a", "link permalink", text);
    node.href = `#${permalink.channel}/${permalink.ts}`;
    node.title = url;
    node.addEventListener("click", (event) => {
      event.preventDefault();
      context.onPermalink(permalink.channel, permalink.ts);
    });
    return node;
  }
  const node = el("a", "link", text);
  node.href = url;
  node.target = "_blank";
  node.rel = "noopener noreferrer";
  return node;
}

// https://<domain>.slack.com/archives/<channel>/p<ts without its dot>, as chat.getPermalink
// answers: the channel and the message's ts, or null for any other link.
export function parsePermalink(url) {
  const team = context.workspace && context.workspace.team;
  if (!team || !team.domain) return null;
  const prefix = `https://${team.domain}.slack.com/archives/`;
  if (!url.startsWith(prefix)) return null;
  const match = /^([A-Z0-9]+)\/p(\d{10})(\d{6})(?:[?#].*)?$/.exec(url.slice(prefix.length));
  return match ? { channel: match[1], ts: `${match[2]}.${match[3]}` } : null;
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

export function renderMrkdwn(raw) {
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

export function renderTextObject(object, className) {
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

export const plainText = (object) => (object && typeof object === "object" ? String(object.text || "") : "");
