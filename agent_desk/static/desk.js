// Agent desk: live queue (Server-Sent Events), live transcript, reply without reloading.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const conv = document.getElementById("conversation");
  const waitingTable = document.getElementById("waiting");
  const activeTable = document.getElementById("active");
  const badge = document.getElementById("queue-badge");
  const baseTitle = document.title;
  let known = null; // ids of waiting conversations already seen (null before the first snapshot)
  let clockSkew = 0; // server time minus browser time, seconds
  let reloadPending = false, first = true;
  let leaving = false; // a form is being submitted: its own navigation wins over live reloads
  let queueTimeout = waitingTable ? Number(waitingTable.dataset.queueTimeout || 0) : 0;
  // Messages in the agent's other open conversations (issue 18): counted per conversation in
  // sessionStorage so the count survives moving between pages; opening a conversation clears it.
  const me = Number((document.querySelector('meta[name="desk-agent"]') || {}).content || 0);
  const mineBadge = document.getElementById("mine-badge");
  const currentId = conv ? Number(conv.dataset.id) : 0;
  function stored(key) { try { return JSON.parse(sessionStorage.getItem(key) || "{}"); } catch (e) { return {}; } }
  function store(key, value) { try { sessionStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ } }
  const unread = stored("desk-unread"), seen = stored("desk-seen");
  if (currentId) { delete unread[currentId]; store("desk-unread", unread); }
  let unreadTotal = 0;
  document.addEventListener("submit", e => { if (!e.defaultPrevented) leaving = true; });

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(c);
    return node;
  }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " giây";
    const m = Math.floor(s / 60), r = s % 60;
    if (m < 60) return m + " phút " + String(r).padStart(2, "0") + " giây";
    return Math.floor(m / 60) + " giờ " + String(m % 60).padStart(2, "0") + " phút";
  }

  // Same format and time zone as the server-rendered lines ("HH:MM:SS dd/mm/yyyy", Vietnam time).
  const vnFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit",
    day: "2-digit", month: "2-digit", year: "numeric", hour12: false,
  });
  function clock(ts) {
    const p = Object.fromEntries(vnFormat.formatToParts(new Date(ts * 1000)).map(x => [x.type, x.value]));
    return p.hour + ":" + p.minute + ":" + p.second + " " + p.day + "/" + p.month + "/" + p.year;
  }

  function beep() {
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.25);
    } catch (e) { /* audio blocked until the agent interacts with the page */ }
  }

  function preview(h) {
    return el("td", { class: "preview" }, h.last_messages.map(m =>
      el("div", { class: m.kind }, [el("b", { text: (m.kind === "user" ? "Khách" : m.agent ? "NV " + m.agent : "Bot") + ": " }), document.createTextNode(m.text)])));
  }

  function chip(channel) {
    return el("span", { class: "chip chip-" + channel, text: channel });
  }

  function renderWaiting(items) {
    const body = waitingTable.tBodies[0];
    body.replaceChildren(...(items.length ? items.map(h => {
      const form = el("form", { method: "post", action: "/conversations/" + h.id + "/claim" }, [
        el("input", { type: "hidden", name: "csrf_token", value: csrf }),
        el("button", { class: "primary", type: "submit", text: "Nhận xử lý" })]);
      const first = el("td", {}, [chip(h.channel)]);
      if (h.requeue_count) { first.append(" "); first.appendChild(el("span", { class: "chip warn", text: "chuyển lại" })); }
      if (h.bot_error) { first.append(" "); first.appendChild(el("span", { class: "chip bot-error", text: "bot lỗi" })); }
      return el("tr", { "data-id": h.id }, [first,
        el("td", { class: "wait", "data-since": h.queued_at, text: duration(Date.now() / 1000 + clockSkew - h.queued_at) }),
        el("td", { text: h.request_code || "—" }), preview(h), el("td", {}, [form])]);
    }) : [el("tr", { class: "empty" }, [el("td", { colspan: "5", text: "Không có khách hàng nào đang chờ." })])]));
  }

  function renderActive(items) {
    const body = activeTable.tBodies[0];
    body.replaceChildren(...(items.length ? items.map(h => el("tr", { "data-id": h.id }, [
      el("td", {}, h.bot_error ? [chip(h.channel), document.createTextNode(" "), el("span", { class: "chip bot-error", text: "bot lỗi" })] : [chip(h.channel)]),
      el("td", { text: h.agent_name || "" }), el("td", { text: h.request_code || "—" }),
      preview(h), el("td", {}, [el("a", { href: "/conversations/" + h.id, text: "Mở" })])]))
      : [el("tr", { class: "empty" }, [el("td", { colspan: "5", text: "Chưa có hội thoại nào." })])]));
  }

  function onMine(snap) {
    // A customer wrote in one of my conversations other than the one on screen: count, badge, beep.
    const mine = snap.active.filter(h => me && h.agent_id === me);
    const ids = new Set(mine.map(h => String(h.id)));
    let fresh = false;
    for (const k of Object.keys(unread)) if (!ids.has(k)) delete unread[k];
    for (const k of Object.keys(seen)) if (!ids.has(k)) delete seen[k];
    for (const h of mine) {
      const at = h.customer_last_at || 0;
      if (h.id !== currentId && seen[h.id] !== undefined && at > seen[h.id]) {
        unread[h.id] = (unread[h.id] || 0) + 1;
        fresh = true;
      }
      seen[h.id] = at;
    }
    store("desk-unread", unread); store("desk-seen", seen);
    unreadTotal = Object.values(unread).reduce((a, b) => a + b, 0);
    if (mineBadge) { mineBadge.textContent = unreadTotal; mineBadge.hidden = unreadTotal === 0; }
    if (activeTable) {
      for (const row of activeTable.tBodies[0].rows) row.classList.toggle("unread", Boolean(unread[row.dataset.id]));
    }
    return fresh;
  }

  function onQueue(snap) {
    clockSkew = snap.now - Date.now() / 1000;
    if (snap.queue_timeout) queueTimeout = snap.queue_timeout;
    const ids = new Set(snap.waiting.map(h => h.id));
    const fresh = known !== null && [...ids].some(id => !known.has(id));
    known = ids;
    const n = snap.waiting.length;
    if (badge) { badge.textContent = n; badge.hidden = n === 0; }
    if (waitingTable) {
      document.getElementById("waiting-count").textContent = n;
      renderWaiting(snap.waiting);
      renderActive(snap.active);
      tick();
    }
    const newMessages = onMine(snap);
    const total = n + unreadTotal;
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
    if (fresh || newMessages) beep();
    if (document.getElementById("kpi-queue") && !first && !reloadPending) {
      // Supervisor view: something changed, refresh the figures in place (batched over a second).
      reloadPending = true;
      setTimeout(() => { reloadPending = false; refreshSupervisor(); }, 1000);
    }
    first = false;
    if (conv) {
      // This conversation changed hands (handed back, timed out, returned to the queue): reload it.
      const id = Number(conv.dataset.id);
      const status = snap.waiting.some(h => h.id === id) ? "waiting" : snap.active.some(h => h.id === id) ? "active" : "closed";
      const shown = conv.dataset.status === "timed_out" || conv.dataset.status === "cancelled" ? "closed" : conv.dataset.status;
      if (status !== shown && !leaving) window.location.reload();
    }
  }

  function appendMessage(m) {
    const list = document.getElementById("transcript");
    const last = list.lastElementChild;
    if (last && Number(last.dataset.ts) >= m.ts) return; // already rendered
    const who = m.kind === "user" ? "Khách hàng" : m.kind === "bot" ? (m.agent ? "Nhân viên " + m.agent : "Bot") : "Hệ thống";
    const text = el("div", { class: "text" });
    linkify(text, m.text);
    const item = el("li", { class: "msg msg-" + m.kind + (m.agent ? " msg-agent" : ""), "data-ts": m.ts }, [
      el("div", { class: "who", text: who + " " }, [el("time", { text: clock(m.ts) })]), text]);
    if (m.buttons && m.buttons.length) {
      item.appendChild(el("div", { class: "buttons" }, m.buttons.map(b => el("span", { class: "button-chip", title: b.payload || b.url || "", text: b.title }))));
    }
    const files = fileNodes(m);
    if (files) item.appendChild(files);
    list.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  // Files in a live message, as templates/_file.html renders them: one an agent sent (through
  // /desk-files/) or one the customer sent (through the desk's customer-files route).
  function fileNodes(m) {
    const open = href => ({ href: href, target: "_blank", rel: "noopener" });
    if (m.file && /^[0-9a-f]{64}$/.test(m.file.sha256)) {
      const href = "/desk-files/" + m.file.sha256;
      const box = el("div", { class: "attach", text: "📎 " });
      if (m.file.kind === "image") box.appendChild(el("a", open(href), [el("img", { class: "attach-thumb", src: href, alt: m.file.name || "" })]));
      else { box.append("Đã gửi tệp: "); box.appendChild(el("a", Object.assign(open(href), { text: m.file.name || "tệp" }))); }
      return box;
    }
    const cf = m.customer_file;
    if (!cf) return null;
    const image = cf.kind === "image";
    const href = conv && /^[0-9a-f]{32}$/.test(cf.ref || "") ? "/conversations/" + encodeURIComponent(conv.dataset.id) + "/customer-files/" + cf.ref : "";
    const label = "Khách gửi " + (image ? "ảnh" : "tệp") + (cf.name ? ": " + cf.name : "");
    const box = el("div", { class: "attach customer-file", text: "📎 " });
    if (href && !image) box.appendChild(el("a", Object.assign(open(href), { class: "customer-file-link", text: label })));
    else box.append(label);
    if (cf.url) { box.append(" · "); linkify(box, cf.url); }
    if (href && image) {
      box.appendChild(el("a", Object.assign(open(href), { class: "customer-image" }), [
        el("img", { class: "attach-thumb customer-thumb", src: href, loading: "lazy", alt: "Ảnh khách gửi" + (cf.name ? ": " + cf.name : "") })]));
      box.appendChild(el("a", Object.assign(open(href), { class: "customer-file-link", text: "Mở ảnh cỡ đầy đủ" })));
    }
    return box;
  }

  function linkify(node, text) {
    const re = /https?:\/\/[^\s<>"']+/g;
    let pos = 0, m;
    while ((m = re.exec(text)) !== null) {
      node.appendChild(document.createTextNode(text.slice(pos, m.index)));
      node.appendChild(el("a", { href: m[0], target: "_blank", rel: "noopener noreferrer", text: m[0] }));
      pos = m.index + m[0].length;
    }
    node.appendChild(document.createTextNode(text.slice(pos)));
  }

  const url = "/api/events" + (conv ? "?conversation=" + encodeURIComponent(conv.dataset.id) : "");
  const source = new EventSource(url);
  window.deskEvents = source; // assignment.js listens on the same stream (one connection per page)
  source.addEventListener("queue", e => onQueue(JSON.parse(e.data)));
  source.addEventListener("message", e => { if (conv) appendMessage(JSON.parse(e.data)); });

  function tick() {
    for (const cell of document.querySelectorAll("td.wait")) {
      const waited = Date.now() / 1000 + clockSkew - Number(cell.dataset.since);
      cell.textContent = duration(waited);
      const row = cell.closest("tr");
      if (!queueTimeout || !waitingTable || !waitingTable.contains(row)) continue;
      // The last minute before the request times out (HANDOFF_QUEUE_TIMEOUT): amber, then red.
      const left = Math.max(0, Math.floor(queueTimeout - waited));
      row.classList.toggle("expiring", left <= 60);
      row.classList.toggle("expiring-soon", left <= 30);
      if (left <= 60) { cell.append(" "); cell.appendChild(el("span", { class: "left", text: "còn " + left + " giây" })); }
    }
  }
  setInterval(tick, 1000);

  // Supervisor page: the figures follow the queue (events) and the clock (every 5 s), no reload.
  async function refreshSupervisor() {
    try {
      const resp = await fetch("/api/supervisor", { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!resp.ok) return;
      const s = await resp.json();
      const put = (id, v) => { const node = document.getElementById(id); if (node) node.textContent = v; };
      put("kpi-queue", s.queue_length); put("kpi-longest", duration(s.longest_wait)); put("kpi-average", duration(s.average_wait));
      put("kpi-active", s.active); put("kpi-closed", s.closed_today); put("kpi-timed-out", s.timed_out_today);
      put("kpi-handling", duration(s.average_handling_today));
      const agents = document.getElementById("sup-agents");
      if (agents) {
        agents.tBodies[0].replaceChildren(...s.agents.map(a => el("tr", {}, [
          el("td", { text: a.name + " " }, [el("span", { class: "muted small", text: a.username })]),
          el("td", { text: String(a.active) }), el("td", { text: String(a.closed_today) })])));
      }
      const open = document.getElementById("sup-open");
      if (open) {
        open.tBodies[0].replaceChildren(...(s.open.length ? s.open.map(h => el("tr", {}, [
          el("td", {}, [el("a", { href: "/conversations/" + h.id, text: String(h.id) })]), el("td", { text: h.channel }),
          el("td", { text: h.status === "waiting" ? "Đang chờ" : "Đang hỗ trợ" }), el("td", { text: h.agent_name || "—" }),
          el("td", { text: duration(s.now - (h.status === "waiting" ? h.queued_at : h.claimed_at)) }),
          el("td", { text: h.request_code || "—" })]))
          : [el("tr", { class: "empty" }, [el("td", { colspan: "6", text: "Không có hội thoại mở." })])]));
      }
      const stamp = document.getElementById("sup-updated");
      if (stamp) stamp.textContent = "Cập nhật lúc " + clock(s.now);
    } catch (e) { /* offline for a moment: the next refresh catches up */ }
  }
  if (document.getElementById("kpi-queue")) setInterval(refreshSupervisor, 5000);

  const form = document.getElementById("reply-form");
  if (form) {
    const text = document.getElementById("reply-text");
    const error = document.getElementById("reply-error");
    // The draft survives a reload or saving a note (sessionStorage, per conversation) until sent.
    const draftKey = "desk-draft-" + conv.dataset.id;
    function saveDraft() {
      try { if (text.value) sessionStorage.setItem(draftKey, text.value); else sessionStorage.removeItem(draftKey); } catch (e) { /* private mode */ }
    }
    try { const draft = sessionStorage.getItem(draftKey); if (draft && !text.value) text.value = draft; } catch (e) { /* private mode */ }
    text.addEventListener("input", saveDraft);
    form.addEventListener("submit", async e => {
      e.preventDefault();
      error.textContent = "";
      const button = document.getElementById("reply-send");
      button.disabled = true;
      try {
        const resp = await fetch(form.action, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "X-Requested-With": "fetch" },
          body: JSON.stringify({ text: text.value }),
        });
        const data = await resp.json().catch(() => ({}));
        if (!resp.ok) { error.textContent = data.message || "Không gửi được tin nhắn."; return; }
        text.value = "";
        saveDraft();
      } catch (err) {
        error.textContent = "Mất kết nối tới máy chủ, hãy thử lại.";
      } finally {
        button.disabled = false;
        text.focus();
      }
    });
    text.addEventListener("keydown", e => { if (e.key === "Enter" && e.ctrlKey) form.requestSubmit(); });
    for (const b of document.querySelectorAll("#canned button[data-text]")) {
      b.addEventListener("click", () => { text.value = b.dataset.text; saveDraft(); text.focus(); });
    }
  }
  const list = document.getElementById("transcript");
  if (list && list.lastElementChild) list.lastElementChild.scrollIntoView({ block: "end" });
})();
