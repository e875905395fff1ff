// Service worker of the installable web app: shows Web Push notifications for incidents and opens the incident
// when one is tapped.
self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { title: event.data && event.data.text() }; }
  var title = data.title || "On-call";
  var options = {
    body: data.body || "",
    tag: data.incident_id ? "incident-" + data.incident_id : undefined,
    renotify: true,
    requireInteraction: data.severity === "Critical",
    data: { url: data.url || "/incidents/" },
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/incidents/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if ("focus" in windows[i]) { windows[i].navigate(url); return windows[i].focus(); }
      }
      return self.clients.openWindow(url);
    })
  );
});
