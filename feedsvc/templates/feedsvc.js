// feedsvc's pages: copy buttons beside feed addresses, and on an item's page the latest items
// of its first topic (read from the topic's JSON Feed). Text goes in as text, never as markup.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => copy(button));
    button.hidden = false; // shown only where the script runs
  }
  const more = document.getElementById("more");
  if (more) {
    latest(more);
  }
});

function copy(button) {
  const done = () => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  };
  const text = button.dataset.copy;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => copyBySelection(text, done));
  } else {
    copyBySelection(text, done);
  }
}

function copyBySelection(text, done) {
  // Plain http on a public address is no secure context: no clipboard API there.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  try {
    if (document.execCommand("copy")) {
      done();
    }
  } finally {
    area.remove();
  }
}

async function latest(section) {
  let feed;
  try {
    const response = await fetch(section.dataset.feed);
    if (!response.ok) {
      return;
    }
    feed = await response.json();
  } catch {
    return; // offline, or a page opened from disk: the link to the topic page stays
  }
  const list = section.querySelector("ul");
  const limit = Number(section.dataset.limit);
  const entries = (feed.items || []).filter(
    (entry) => entry.id !== section.dataset.skip && /^https?:\/\//i.test(entry.url || ""),
  );
  for (const entry of entries.slice(0, limit)) {
    const link = document.createElement("a");
    link.href = entry.url;
    link.textContent = entry.title || entry.url;
    const item = document.createElement("li");
    item.append(link);
    if (entry.date_published) {
      const time = document.createElement("time");
      time.dateTime = entry.date_published;
      time.textContent = entry.date_published.slice(0, 16).replace("T", " ") + " UTC";
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.append(" ", time);
      item.append(meta);
    }
    list.append(item);
  }
}
