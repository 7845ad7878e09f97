// /demo web chat: messages go through the desk's same-origin proxy to Rasa's REST channel.
// Bot and agent messages are read back from the conversation's tracker (send response + polling),
// because Rasa's REST channel cannot push an agent's message to the browser.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const log = document.getElementById("demo-log");
  const form = document.getElementById("demo-form");
  const input = document.getElementById("demo-input");
  const error = document.getElementById("demo-error");
  // `generation` changes with each new conversation: an answer for the one before is dropped, or its
  // messages and cursor would land in the new one (and hide the new answers behind the old cursor).
  let cursor = 0, version = "", polls = 0, busy = false, generation = 0;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(c);
    return node;
  }

  function linkify(node, text) {
    const re = /https?:\/\/[^\s<>"']+/g;
    let pos = 0, m;
    while ((m = re.exec(text)) !== null) {
      node.appendChild(document.createTextNode(text.slice(pos, m.index)));
      const url = m[0].replace(/[.,;:)]+$/, "");
      node.appendChild(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: url }));
      pos = m.index + url.length;
    }
    node.appendChild(document.createTextNode(text.slice(pos)));
  }

  function show(kind, text, extra) {
    const body = el("div", { class: "text" });
    linkify(body, text || "");
    const item = el("li", { class: "msg msg-" + kind + (extra && extra.agent ? " msg-agent" : "") }, []);
    if (extra && extra.agent) item.appendChild(el("div", { class: "who", text: "Nhân viên " + extra.agent }));
    item.appendChild(body);
    if (extra && extra.image) item.appendChild(el("img", { src: extra.image, alt: "", class: "chat-image" }));
    if (extra && extra.buttons && extra.buttons.length) {
      item.appendChild(el("div", { class: "buttons" }, extra.buttons.map(b => {
        if (b.url) {
          // A document (or any link): open it in a new tab, and offer the file to keep.
          const open = el("a", { class: "button-chip", href: b.url, target: "_blank", rel: "noopener noreferrer", text: b.title });
          if (!/\/(documents\/[^/?#]+|certificate)\/file(\?|$)/.test(b.url)) return open;
          const dl = el("a", { class: "button-chip download", href: b.url + (b.url.includes("?") ? "&" : "?") + "download=1", download: "", text: "⬇ Tải về" });
          return el("span", { class: "doc-link" }, [open, dl]);
        }
        const button = el("button", { type: "button", class: "button-chip", text: b.title });
        button.addEventListener("click", () => send(b.payload, b.title));
        return button;
      })));
    }
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  function receive(data) {
    for (const m of data.messages) show("bot", m.text, m);
    cursor = data.cursor;
    version = data.version;
  }

  async function send(message, label) {
    error.textContent = "";
    show("user", label || message);
    busy = true;
    const mine = generation;
    try {
      const resp = await fetch("/demo/api/send", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ message: message, cursor: cursor }),
      });
      const data = await resp.json().catch(() => ({}));
      if (mine !== generation) return;
      if (!resp.ok) { error.textContent = data.message || "Không gửi được tin nhắn."; return; }
      receive(data);
    } catch (e) {
      error.textContent = "Mất kết nối, vui lòng thử lại.";
    } finally {
      busy = false;
    }
  }

  async function poll() {
    if (busy) return;
    polls += 1;
    // Every 10th poll asks for a fresh read even if the event stream reported nothing new.
    const v = polls % 10 === 0 ? "" : version;
    const mine = generation;
    try {
      const resp = await fetch("/demo/api/messages?after=" + cursor + "&version=" + encodeURIComponent(v), { credentials: "same-origin" });
      if (!resp.ok) return;
      const data = await resp.json();
      if (!busy && mine === generation) receive(data);
    } catch (e) { /* offline for a moment: the next poll catches up */ }
  }

  form.addEventListener("submit", e => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  document.getElementById("demo-reset").addEventListener("click", async () => {
    busy = true;  // no poll of the old conversation meanwhile
    generation += 1;
    try {
      await fetch("/demo/api/reset", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
      log.replaceChildren();
      cursor = 0; version = "";
    } finally {
      busy = false;
    }
  });
  // A reload shows the conversation so far (the visitor's messages too), then polls from its end.
  fetch("/demo/api/messages?after=0&history=1", { credentials: "same-origin" })
    .then(r => r.ok ? r.json() : null)
    .then(d => {
      if (!d) return;
      for (const m of d.messages) { if (m.kind === "user") show("user", m.text); else show("bot", m.text, m); }
      cursor = d.cursor; version = d.version;
    })
    .finally(() => setInterval(poll, 1500));
})();
