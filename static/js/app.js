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
    if (!field) return;
    var label = button.firstChild.nodeValue;
    function done(text) {
      button.firstChild.nodeValue = text;
      setTimeout(function () { button.firstChild.nodeValue = label; }, 1500);
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
