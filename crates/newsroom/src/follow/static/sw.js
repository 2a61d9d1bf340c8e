// Newsroom's service worker for the reader's alerts: shows each push message as a notification
// and opens the story at the development when it is clicked. A push message is JSON (see
// crates/notifier/src/webpush.rs): headline, story, body, link, tag, correction, retraction.
// A correction or retraction carries its original's tag, so it replaces that notification.
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// Only http(s) links are opened; anything else leads to the alerts page.
function safeLink(raw) {
  try {
    const url = new URL(raw, self.location.origin);
    if (url.protocol === 'https:' || url.protocol === 'http:') return url.href;
  } catch (e) {
    // fall through
  }
  return new URL('/alerts', self.location.origin).href;
}

self.addEventListener('push', (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (e) {
    message = {};
  }
  const mark = message.correction ? 'Correction: ' : (message.retraction ? 'Retracted: ' : '');
  const title = mark + (message.headline || 'News alert');
  const options = {
    body: message.body || message.story || '',
    data: { link: safeLink(message.link || '/alerts') },
  };
  if (message.tag) {
    options.tag = String(message.tag);
    // A correction replacing its original is shown again, not silently swapped.
    options.renotify = Boolean(message.correction || message.retraction);
  }
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const link = event.notification.data && event.notification.data.link;
  event.waitUntil(self.clients.openWindow(safeLink(link || '/alerts')));
});
