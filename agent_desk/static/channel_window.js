// Zalo's messaging window on a conversation page (agent_desk/channel_window.py): the time left counts
// down, turns into a warning near the end, and says so when it is over (the server then refuses chat
// replies and offers "Gửi SMS"); a new customer message moves the end, or reopens a closed window.
(function () {
  "use strict";
  const banner = document.getElementById("window-banner");
  if (!banner) return;
  const skew = Number(banner.dataset.now) - Date.now() / 1000; // server time minus browser time
  const hours = Number(banner.dataset.hours);
  const warnBefore = Number(banner.dataset.warn);
  let ends = Number(banner.dataset.ends);
  let state = banner.dataset.state; // open | closed (as rendered) | ended (here) | reopened
  const left = document.getElementById("window-left");
  const warning = document.getElementById("window-warning");

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " giây";
    const m = Math.floor(s / 60), r = s % 60;
    if (m < 60) return m + " phút " + String(r).padStart(2, "0") + " giây";
    return Math.floor(m / 60) + " giờ " + String(m % 60).padStart(2, "0") + " phút";
  }

  function say(parts) {
    // Only our own fixed texts: no customer data goes through here.
    banner.replaceChildren();
    for (const part of parts) banner.append(part);
  }

  function reloadLink(text) {
    const a = document.createElement("a");
    a.href = window.location.pathname;
    a.textContent = text;
    return a;
  }

  function tick() {
    if (state !== "open") return;
    const remaining = ends - (Date.now() / 1000 + skew);
    if (remaining <= 0) {
      state = "ended";
      banner.classList.remove("window-warning");
      banner.classList.add("window-closed");
      const b = document.createElement("b");
      b.textContent = "Đã hết thời hạn nhắn tin Zalo.";
      say([b, " Zalo không cho gửi tin nhắn tư vấn nữa; chỉ gửi được SMS. ", reloadLink("Tải lại trang để gửi SMS")]);
      return;
    }
    left.textContent = duration(remaining);
    const near = remaining < warnBefore;
    banner.classList.toggle("window-warning", near);
    if (warning) warning.hidden = !near;
  }

  const events = window.deskEvents; // desk.js's event stream of this conversation
  if (events) {
    events.addEventListener("message", e => {
      const m = JSON.parse(e.data);
      if (m.kind !== "user" || !m.ts) return;
      if (state === "open") { ends = Math.max(ends, m.ts + hours * 3600); tick(); return; }
      if (state === "reopened") return;
      state = "reopened";
      banner.classList.remove("window-closed", "window-warning");
      say(["Khách vừa nhắn lại: có thể trả lời qua Zalo. ", reloadLink("Tải lại trang để trả lời")]);
    });
  }
  tick();
  setInterval(tick, 1000);
})();
