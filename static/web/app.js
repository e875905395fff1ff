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

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function base64UrlToBytes(text) {
    var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  // "Get notifications in this browser": subscribe to Web Push with the platform's VAPID key and link this browser
  // as a device of the signed-in person.
  function offerWebPush() {
    var button = document.getElementById("enable-web-push");
    if (!button || !("serviceWorker" in navigator) || !("PushManager" in window)) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(button.dataset.keyUrl, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          var key = answer.data && answer.data.public_key;
          if (!key) throw new Error("Web Push is not set up on this server.");
          return Notification.requestPermission().then(function () {
            return navigator.serviceWorker.ready;
          }).then(function (registration) {
            return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key) });
          });
        })
        .then(function (subscription) {
          return fetch(button.dataset.devicesUrl, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRFToken": cookie("csrftoken") },
            body: JSON.stringify({ platform: "web", subscription: subscription.toJSON(), name: "Browser" }),
          });
        })
        .then(function (response) {
          if (!response.ok) throw new Error("The server did not link this browser.");
          window.location.hash = "devices";
          window.location.reload();
        })
        .catch(function (error) {
          button.disabled = false;
          window.alert(error.message);
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshList();
    registerServiceWorker();
    offerWebPush();
  });
})();
