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

  // A refused HTMX action (400/409) that answers with the fragment to show (the server marks it
  // with HX-Refusal) is swapped in like a success, so its message is seen, not dropped.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("HX-Refusal")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
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

  // "Select all" boxes: <input type="checkbox" data-select-all="ids"> checks every box of its
  // form named "ids" (and shows mixed when only some are).
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.form) return;
    var name = box.getAttribute("data-select-all");
    if (name) {
      box.form.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (b) {
        b.checked = box.checked;
      });
      return;
    }
    var all = box.form.querySelector('input[data-select-all="' + box.name + '"]');
    if (!all) return;
    var boxes = box.form.querySelectorAll('input[type=checkbox][name="' + box.name + '"]');
    var checked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    all.checked = checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  });

  // On a phone the main menu is a row that scrolls sideways: show the current section in it.
  document.addEventListener("DOMContentLoaded", function () {
    var nav = document.querySelector(".mainnav");
    var current = nav && nav.querySelector('[aria-current="page"]');
    if (current && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
  });

  // Destructive forms ask first: <form data-confirm="Remove Tom from Acme?">.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
})();
