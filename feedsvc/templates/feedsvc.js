// feedsvc's pages: copy buttons beside feed addresses, on an item's page the latest items of
// its first topic (read from the topic's JSON Feed), and where the site is served live a search
// box. Text goes in as text, never as markup.
"use strict";

// The site's root: this script lives there (pages sit one level down or at the root).
const SITE_ROOT = document.currentScript ? new URL(".", document.currentScript.src) : null;
const OPENSEARCH_TYPE = "application/opensearchdescription+xml";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => copy(button));
    button.hidden = false; // shown only where the script runs
  }
  const more = document.getElementById("more");
  if (more) {
    latest(more);
  }
  if (SITE_ROOT) {
    offerSearch(SITE_ROOT);
  }
});

// Only the live app answers searches; a static build has the same pages, byte for byte, but
// no OpenSearch description. So the box and the browsers' rel=search link are put in only
// where the site serves that description.
async function offerSearch(root) {
  const description = new URL("opensearch.xml", root);
  try {
    const response = await fetch(description);
    const type = response.headers.get("Content-Type") || "";
    if (!response.ok || !type.startsWith(OPENSEARCH_TYPE)) {
      return; // a static site (some hosts answer any path with a page: the type tells)
    }
  } catch {
    return; // a page opened from disk, or offline
  }
  if (!document.querySelector('link[rel="search"]')) {
    const link = document.createElement("link");
    link.rel = "search";
    link.type = OPENSEARCH_TYPE;
    link.title = document.querySelector("header h1").textContent;
    link.href = description.href;
    document.head.append(link);
  }
  if (document.getElementById("search")) {
    return; // the search page has its own form
  }
  const form = document.createElement("form");
  form.id = "search";
  form.setAttribute("role", "search");
  form.method = "get";
  form.action = new URL("search", root).href;
  const input = document.createElement("input");
  input.type = "search";
  input.name = "q";
  input.required = true;
  input.maxLength = 200;
  input.setAttribute("aria-label", "Search");
  const main = document.querySelector("main[data-topic]");
  const topic = main ? main.dataset.topic : "all";
  input.placeholder = topic === "all" ? "Search" : "Search this topic";
  form.append(input);
  if (topic !== "all") {
    const field = document.createElement("input");
    field.type = "hidden";
    field.name = "topic";
    field.value = topic;
    form.append(field);
  }
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "Search";
  form.append(" ", button);
  document.querySelector("header").append(form);
}

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
