// Activating or restoring a model takes about half a minute (Rasa loads it): say so and keep the
// button from being pressed twice while the page waits for the answer.
(function () {
  "use strict";
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.disabled = true;
      }
      var note = document.createElement("span");
      note.className = "muted small busy-note";
      note.setAttribute("role", "status");
      note.textContent = form.getAttribute("data-busy");
      form.appendChild(note);
    });
  });
})();
