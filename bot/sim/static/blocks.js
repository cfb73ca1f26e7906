// Block Kit blocks as the Slack client draws them in messages and modals.
//
// Buttons call ``onButton(button, node)``; anything the page does not draw is shown as JSON,
// so an unexpected block is visible rather than silently missing.

import { append, el } from "./dom.js";
import { plainText, renderTextObject, replaceEmoji } from "./mrkdwn.js";

export function rawJson(value, title) {
  const wrap = el("div", "bk-unknown");
  append(wrap, el("div", "bk-unknown-title", title), el("pre", "", JSON.stringify(value, null, 2)));
  return wrap;
}

function renderElement(element, onButton) {
  if (element && element.type === "button") return renderButton(element, onButton);
  if (element && element.type === "image") return el("span", "bk-image", `🖼 ${element.alt_text || "image"}`);
  return rawJson(element, `Unsupported element: ${element && element.type}`);
}

function renderButton(button, onButton) {
  const node = el("button", "bk-button", replaceEmoji(plainText(button.text)));
  node.type = "button";
  if (button.style === "primary" || button.style === "danger") node.classList.add(button.style);
  node.dataset.actionId = button.action_id || "";
  node.addEventListener("click", () => onButton(button, node));
  return node;
}

const BLOCKS = {
  header(block) {
    return el("div", "bk-header", replaceEmoji(plainText(block.text)));
  },
  section(block, onButton) {
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
      accessory.append(renderElement(block.accessory, onButton));
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
  actions(block, onButton) {
    const node = el("div", "bk-actions");
    for (const element of block.elements || []) node.append(renderElement(element, onButton));
    return node;
  },
  image(block) {
    const node = el("div", "bk-image-block");
    if (block.title) node.append(el("div", "bk-image-title", plainText(block.title)));
    node.append(el("div", "bk-image", `🖼 ${block.alt_text || "image"} (not loaded: the demo stays offline)`));
    return node;
  },
};

// One block; ``extra`` draws block types of a surface of its own (a modal's inputs).
export function renderBlock(block, onButton, extra = {}) {
  const known = (table) => block && Object.prototype.hasOwnProperty.call(table, block.type);
  const render = known(extra) ? extra[block.type] : known(BLOCKS) ? BLOCKS[block.type] : null;
  const node = render ? render(block, onButton) : rawJson(block, `Unsupported block: ${block && block.type}`);
  node.classList.add("bk-block");
  if (block && block.block_id) node.dataset.blockId = block.block_id;
  return node;
}

export function renderBlocks(blocks, onButton) {
  const fragment = document.createDocumentFragment();
  for (const block of blocks) fragment.append(renderBlock(block, onButton));
  return fragment;
}
