// The little JavaScript the engineer pages need: refresh the incident list by itself, and register the
// service worker that receives Web Push notifications.
(function () {
  "use strict";

  function refreshList() {
    var box = document.getElementById("incident-rows");
    if (!box) return;
    var seconds = parseInt(box.dataset.refreshSeconds || "15", 10);
    window.setInterval(function () {
      if (document.hidden) return;
      fetch(box.dataset.refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) box.innerHTML = html; })
        .catch(function () { /* offline: try again at the next tick */ });
    }, seconds * 1000);
  }

  function registerServiceWorker() {
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshList();
    registerServiceWorker();
  });
})();
