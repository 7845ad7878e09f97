// Progress of a training run (templates/training/runs_detail.html): polls the run's JSON every second.
(function () {
  "use strict";
  var box = document.getElementById("run");
  if (!box || box.dataset.open !== "1") return;
  var id = box.dataset.run;
  var LABELS = { queued: "Đang chờ", running: "Đang chạy", succeeded: "Xong", failed: "Thất bại", cancelled: "Đã hủy" };
  function text(elId, value) {
    var el = document.getElementById(elId);
    if (el) el.textContent = value;
  }
  function duration(s) {
    s = Math.max(0, Math.round(s || 0));
    if (s < 60) return s + " giây";
    var m = Math.floor(s / 60), sec = s % 60;
    if (m < 60) return m + " phút " + (sec < 10 ? "0" : "") + sec + " giây";
    var h = Math.floor(m / 60); m = m % 60;
    return h + " giờ " + (m < 10 ? "0" : "") + m + " phút";
  }
  function show(data) {
    var p = data.progress || {};
    text("run-status", LABELS[data.status] || data.status);
    text("run-phase", p.label || "");
    text("run-component", p.component || "");
    text("run-epoch", p.epochs ? "vòng " + p.epoch + "/" + p.epochs : "");
    text("run-eta", p.eta !== null && p.eta !== undefined ? "còn khoảng " + duration(p.eta) : "");
    text("run-elapsed", duration(data.elapsed));
    text("run-note", p.note || "");
    var bar = document.getElementById("run-bar");
    if (bar) {
      if (p.percent !== null && p.percent !== undefined) bar.value = p.percent;
      else bar.removeAttribute("value");
    }
    if (data.error) {
      var err = document.getElementById("run-error");
      err.textContent = data.error;
      err.hidden = false;
    }
    if (!data.open) {
      document.getElementById("progress-box").hidden = true;
      if (data.status === "succeeded") window.location.reload();
      else { var r = document.getElementById("run-reload"); if (r) r.hidden = false; }
      return false;
    }
    return true;
  }
  function poll() {
    fetch("/training/runs/" + id + "/progress", { headers: { "X-Requested-With": "fetch", "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data === null || show(data)) setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
