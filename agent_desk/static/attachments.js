// Send a file to the customer (agent_desk/attachments.py): the raw bytes, CSRF in a header.
(function () {
  "use strict";
  var form = document.getElementById("attach-form");
  if (!form) return;
  var input = document.getElementById("attach-file");
  var error = document.getElementById("attach-error");
  var button = document.getElementById("attach-send");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = input.files && input.files[0];
    if (!file) return;
    error.textContent = "";
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRF-Token": form.dataset.csrf,
        "X-Requested-With": "fetch",
        "X-File-Name": encodeURIComponent(file.name),
        "Content-Type": "application/octet-stream"
      },
      body: file
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (!resp.ok) throw new Error(body.message || "Tệp chưa gửi được.");
        window.location.reload();
      });
    }).catch(function (e) {
      error.textContent = e.message;
    }).then(function () { button.disabled = false; });
  });
})();
