// The demo's stand-in for the cloud console: every DIS dump task and its state, with the
// console's own Start and Pause, so a person can change a task behind the bot's back (drift).
//
// It polls the page server, which reads the DIS stand-in; the page never talks to DIS itself.

import { $, api, append, el, toast } from "./dom.js";

const POLL_MS = 1000;
// What the console offers for a task in each state: pause what runs, start the rest.
const RUNNING = new Set(["RUNNING", "STARTING"]);

let lastKey = null;

export function startConsole(workspace) {
  if (!workspace.dis_console) return;
  const panel = $("console");
  const toggle = $("console-toggle");
  toggle.hidden = false;
  const show = (open) => {
    panel.hidden = !open;
    document.body.classList.toggle("with-console", open);
    toggle.setAttribute("aria-pressed", String(open));
  };
  toggle.addEventListener("click", () => show(panel.hidden));
  show(true);
  poll();
  setInterval(() => {
    if (!panel.hidden) poll();
  }, POLL_MS);
}

async function poll() {
  try {
    const data = await api("/page/api/dis");
    const key = JSON.stringify(data.streams);
    if (key !== lastKey) {
      lastKey = key;
      render(data.streams);
    }
  } catch (error) {
    $("console-streams").replaceChildren(el("p", "console-note", `DIS is out of reach (${error.message}).`));
    lastKey = null;
  }
}

function render(streams) {
  const fragment = document.createDocumentFragment();
  for (const stream of streams) {
    const section = el("section", "console-stream");
    section.dataset.stream = stream.name;
    const table = el("table", "console-table");
    const caption = el("caption", "", stream.name);
    const head = el("tr");
    append(head, el("th", "", "Dump task"), el("th", "", "State"), el("th", "", ""));
    const body = el("tbody");
    for (const task of stream.tasks) body.append(row(stream.name, task));
    append(table, caption, el("thead"), body);
    table.tHead.append(head);
    section.append(table);
    fragment.append(section);
  }
  $("console-streams").replaceChildren(fragment);
}

function row(stream, task) {
  const tr = el("tr", "console-task");
  tr.dataset.task = task.name;
  const name = el("td", "console-task-name");
  append(name, el("span", "", task.name), el("span", "console-task-id", task.id));
  const state = el("td");
  state.append(el("span", `console-state state-${task.state.toLowerCase()}`, task.state));
  const action = RUNNING.has(task.state) ? "stop" : "start";
  const button = el("button", "console-button", action === "stop" ? "Pause" : "Start");
  button.type = "button";
  button.setAttribute("aria-label", `${action === "stop" ? "Pause" : "Start"} ${task.name}`);
  button.addEventListener("click", () => change(stream, task, action, button));
  const cell = el("td", "console-actions");
  cell.append(button);
  append(tr, name, state, cell);
  return tr;
}

async function change(stream, task, action, button) {
  button.disabled = true;
  try {
    await api("/page/api/dis/action", { stream, task: task.id, action });
  } catch (error) {
    toast(`The console could not ${action} ${task.name}: ${error.message}`);
  } finally {
    poll();
  }
}
