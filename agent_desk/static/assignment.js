// Assignment: the status selector in the header, and live notice of conversations given to this agent.
(function () {
  "use strict";
  const form = document.getElementById("presence-form");
  if (!form) return;
  const me = Number(form.dataset.agentId);
  const select = document.getElementById("presence-status");
  // With scripts the status is saved as soon as it is picked; the button is the no-script fallback.
  document.getElementById("presence-save").hidden = true;
  select.addEventListener("change", () => form.requestSubmit());

  const events = window.deskEvents; // opened by desk.js on the pages that stream (queue, conversation, supervisor)
  if (!events) return;
  const conv = document.getElementById("conversation");
  let reloadPending = false;
  let leaving = false; // a form is being submitted (e.g. this transfer): its own navigation wins
  document.addEventListener("submit", e => { if (!e.defaultPrevented) leaving = true; });
  function reloadSoon(delay) {
    if (reloadPending || leaving) return;
    reloadPending = true;
    setTimeout(() => window.location.reload(), delay);
  }

  function notice(data) {
    const tpl = document.getElementById("assigned-notice");
    const box = tpl.content.firstElementChild.cloneNode(true);
    const slot = name => box.querySelector('[data-slot="' + name + '"]');
    slot("id").textContent = data.handoff_id;
    slot("link").href = "/conversations/" + data.handoff_id;
    slot("auto").hidden = data.kind !== "auto";
    slot("manual").hidden = data.kind === "auto";
    slot("by").textContent = data.by_name || "";
    slot("note-line").hidden = !data.note;
    slot("note").textContent = data.note || "";
    slot("close").addEventListener("click", () => box.remove());
    document.body.appendChild(box);
  }

  events.addEventListener("assigned", e => {
    const data = JSON.parse(e.data);
    // Whoever is looking at this conversation (old owner, new owner) gets the page for their new role.
    if (conv && Number(conv.dataset.id) === data.handoff_id) reloadSoon(0);
    else if (data.to_agent_id === me) notice(data);
  });
  events.addEventListener("presence", e => {
    const data = JSON.parse(e.data);
    if (data.agent_id === me && select.value !== data.status) select.value = data.status;
    if (document.getElementById("presence-table")) reloadSoon(3000);
  });
})();
