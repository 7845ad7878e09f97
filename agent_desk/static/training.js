// Trainers' workbench: the words selected in the sentence fill the first empty entity field
// (the fields can also be typed by hand: the page works without this script).
(function () {
  "use strict";
  var text = document.getElementById("label-text");
  var button = document.getElementById("use-selection");
  if (!text || !button) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var picked = text.value.substring(text.selectionStart, text.selectionEnd).trim();
    if (!picked) return;
    var fields = document.querySelectorAll("#label-form input[name^='value_']");
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].value) {
        fields[i].value = picked;
        fields[i].focus();
        return;
      }
    }
  });
})();
