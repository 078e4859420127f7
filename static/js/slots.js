// The slot picker shows times in the browser's own zone: when the page was drawn in another one
// (the candidate's stored zone or the organization's) and the candidate has not chosen one, ask
// for the page again in the zone Intl reports. Without JavaScript the page works as drawn.
(function () {
  "use strict";
  var root = document.querySelector("[data-slots-zone]");
  if (!root || root.getAttribute("data-zone-chosen") === "yes") return;
  var browser;
  try {
    browser = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!browser || browser === root.getAttribute("data-slots-zone")) return;
  var select = document.getElementById("tz");
  var offered = select && Array.prototype.some.call(select.options, function (option) {
    return option.value === browser;
  });
  if (!offered) return;
  var url = new URL(select.form.action, window.location.href);
  url.searchParams.set("tz", browser);
  window.location.replace(url.toString());
})();
