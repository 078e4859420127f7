// Template editor: click-to-insert variables, desktop/mobile preview width.
(function () {
  "use strict";
  var form = document.getElementById("editor-form");
  if (!form) return;
  var last = form.querySelector("textarea[name=html]");

  form.addEventListener("focusin", function (event) {
    if (event.target.hasAttribute("data-insert-target")) last = event.target;
  });

  document.querySelectorAll("button.var[data-insert]").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-insert");
      var field = last || form.querySelector("textarea[name=html]");
      var start = field.selectionStart || 0, end = field.selectionEnd || 0;
      field.value = field.value.slice(0, start) + text + field.value.slice(end);
      field.focus();
      field.selectionStart = field.selectionEnd = start + text.length;
      field.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });

  var preview = document.getElementById("preview");
  document.querySelectorAll(".segmented .seg").forEach(function (button) {
    button.addEventListener("click", function () {
      preview.setAttribute("data-device", button.getAttribute("data-device"));
      document.querySelectorAll(".segmented .seg").forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
    });
  });
})();
