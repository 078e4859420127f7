// Small behaviours for the whole UI (no inline scripts: the CSP forbids them).
(function () {
  "use strict";

  // Dropdown menus (<details class="menu">): one open at a time; close on outside click or Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });

  // Copy buttons: <button data-copy="field-id"> copies that field's value and says so.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    var shown = button.querySelector(".copy-label");
    if (!field || !shown) return;
    if (!button.hasAttribute("data-label")) button.setAttribute("data-label", shown.textContent);
    var label = button.getAttribute("data-label");
    function done(text) {
      shown.textContent = text;
      clearTimeout(button._copyTimer);
      button._copyTimer = setTimeout(function () { shown.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { done("Copied"); },
        function () { field.select(); done("Press Ctrl+C"); });
    } else {
      field.select();
      done(document.execCommand && document.execCommand("copy") ? "Copied" : "Press Ctrl+C");
    }
  });

  // Destructive forms ask first: <form data-confirm="Remove Tom from Acme?">.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
})();
