// Newsroom: the reader's alerts page updates itself (plain ES2017, no libraries).
//
// The page lists the latest alerts in #alert-list, whose data-last-seq is the newest alert shown.
// We listen to /alerts/stream (server-sent alerts of this reader, resumable by Last-Event-ID) and,
// whenever an alert arrives, fetch the server-rendered list from /alerts/list and swap it in. The
// list is escaped HTML rendered by the server; it is parsed with DOMParser and its nodes imported,
// never assigned through innerHTML.
'use strict';

(() => {
  const list = document.getElementById('alert-list');
  if (!list) return;
  if (typeof window.EventSource !== 'function' || typeof window.DOMParser !== 'function') return;

  const statusEl = document.getElementById('alerts-live');
  const MAX_RETRY_MS = 30000;
  let retryMs = 1000;
  let source = null;
  let refreshing = false;
  let again = false;

  function setStatus(state, text) {
    if (!statusEl) return;
    statusEl.hidden = false;
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function lastSeq() {
    const current = document.getElementById('alert-list');
    const raw = current ? current.dataset.lastSeq : '0';
    return /^\d+$/.test(raw || '') ? raw : '0';
  }

  async function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      do {
        again = false;
        const response = await fetch('/alerts/list', {
          credentials: 'same-origin',
          headers: { Accept: 'text/html' },
        });
        if (!response.ok) throw new Error('list answered ' + response.status);
        const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
        const fresh = doc.getElementById('alert-list');
        const current = document.getElementById('alert-list');
        if (fresh && current) current.replaceWith(document.importNode(fresh, true));
      } while (again);
    } catch (e) {
      setStatus('error', 'Could not load the latest alerts; reload the page.');
    } finally {
      refreshing = false;
    }
  }

  function connect() {
    source = new EventSource('/alerts/stream?after=' + lastSeq());
    source.onopen = () => {
      retryMs = 1000;
      setStatus('live', 'Live');
    };
    source.onmessage = () => refresh();
    // Alerts are named by their type (story.<kind>, story.correction, story.retraction); the page
    // lists the types in data-alert-types.
    const heading = document.querySelector('[data-alert-types]');
    const types = heading ? heading.dataset.alertTypes.split(' ') : [];
    types.filter((t) => t).forEach((t) => source.addEventListener(t, () => refresh()));
    source.onerror = () => {
      setStatus('reconnecting', 'Reconnecting…');
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      }
    };
  }

  connect();
})();
