// Newsroom: "Notify me on this device" on the reader's alerts page (plain ES2017, no libraries).
//
// Shown only where the browser can take push messages. On a click it registers the page's
// service worker (/alerts/sw.js, same origin, allowed the /alerts scope by the server's
// Service-Worker-Allowed header), asks for permission to show notifications, subscribes with the
// installation's VAPID key (data-key) and registers the subscription as this reader's endpoint
// (POST /alerts/push, with the page's CSRF value). The worker shows what arrives.
'use strict';

(() => {
  const section = document.getElementById('push');
  if (!section) return;
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return;
  const button = document.getElementById('push-button');
  const statusEl = document.getElementById('push-status');
  section.hidden = false;

  function say(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  // base64url (the VAPID key as the server gives it) to bytes.
  function bytes(base64url) {
    const base64 = (base64url + '==='.slice((base64url.length + 3) % 4)).replace(/-/g, '+').replace(/_/g, '/');
    const raw = atob(base64);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
    return out;
  }

  async function register(subscription) {
    const response = await fetch('/alerts/push', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ csrf: section.dataset.csrf, subscription: subscription.toJSON() }),
    });
    if (!response.ok) throw new Error('registering answered ' + response.status);
  }

  async function turnOn() {
    button.disabled = true;
    say('working', 'Setting up notifications…');
    let registration;
    try {
      registration = await navigator.serviceWorker.register('/alerts/sw.js', { scope: '/alerts' });
      await navigator.serviceWorker.ready;
    } catch (e) {
      say('error', 'This browser could not set up notifications.');
      button.disabled = false;
      return;
    }
    section.dataset.worker = 'registered';
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      say('error', 'Notifications are blocked for this site; allow them in the browser\u2019s settings.');
      button.disabled = false;
      return;
    }
    try {
      const subscription = (await registration.pushManager.getSubscription()) ||
        (await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: bytes(section.dataset.key),
        }));
      await register(subscription);
      say('on', 'Notifications are on for this device.');
      button.hidden = true;
    } catch (e) {
      say('error', 'Could not turn on notifications here; try again later.');
      button.disabled = false;
    }
  }

  button.addEventListener('click', () => { turnOn(); });
})();
