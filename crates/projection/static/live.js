// Newsroom live updates for a story page (plain ES2017, no libraries).
//
// The page's <body> names the story (data-story-id, data-slug) and the log position it shows
// (data-position). We subscribe to the story's server-sent events; whenever something happens we
// fetch the server-rendered fragment (/stories/{slug}/fragment) and swap the #timeline and
// #claims sections in place. The fragment is escaped HTML rendered by the server; it is parsed
// with DOMParser and its nodes imported, never assigned through innerHTML.
'use strict';

(() => {
  const body = document.body;
  const data = body ? body.dataset : null;
  if (!data || !data.storyId || !data.slug) return;
  if (typeof window.EventSource !== 'function' || typeof window.DOMParser !== 'function') return;

  const streamUrl = '/v1/stories/' + encodeURIComponent(data.storyId) + '/stream';
  const fragmentUrl = '/stories/' + encodeURIComponent(data.slug) + '/fragment';
  // The stream names each event by the change it reports (see `Change` in api.rs).
  const EVENT_TYPES = [
    'message',
    'added',
    'corrected',
    'retracted',
    'story_revised',
    'story_closed',
    'story_reopened',
  ];
  const MAX_RETRY_MS = 30000;

  const statusEl = document.getElementById('live-status');

  function setStatus(state, text) {
    if (!statusEl) return;
    statusEl.hidden = false;
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function setPosition(raw) {
    if (typeof raw !== 'string' || !/^\d+$/.test(raw)) return;
    const current = Number(data.position);
    const next = Number(raw);
    if (!Number.isFinite(current) || next > current) data.position = raw;
  }

  function replaceChildren(target, nodes) {
    if (typeof target.replaceChildren === 'function') {
      target.replaceChildren(...nodes);
      return;
    }
    while (target.firstChild) target.removeChild(target.firstChild);
    nodes.forEach((node) => target.appendChild(node));
  }

  function swap(fresh, id) {
    const incoming = fresh.getElementById(id);
    const current = document.getElementById(id);
    if (!incoming || !current) return;
    const nodes = Array.from(incoming.childNodes, (node) => document.importNode(node, true));
    replaceChildren(current, nodes);
  }

  // One fetch at a time; events arriving meanwhile are folded into one more fetch.
  let fetching = false;
  let pending = false;

  async function refresh() {
    if (fetching) {
      pending = true;
      return;
    }
    fetching = true;
    try {
      do {
        pending = false;
        const response = await fetch(fragmentUrl, {
          method: 'GET',
          credentials: 'same-origin',
          cache: 'no-store',
          headers: { Accept: 'text/html' },
        });
        if (!response.ok) throw new Error('fragment request failed: ' + response.status);
        const text = await response.text();
        const fresh = new DOMParser().parseFromString(text, 'text/html');
        swap(fresh, 'timeline');
        swap(fresh, 'claims');
        const root = fresh.getElementById('live-fragment');
        if (root) setPosition(root.dataset.position);
      } while (pending);
    } catch (err) {
      // Keep what the reader has; the next event or reconnection tries again.
      if (window.console) window.console.warn('newsroom live update:', err);
    } finally {
      fetching = false;
    }
  }

  let source = null;
  let retryMs = 1000;
  let retryTimer = null;

  function onEvent(event) {
    setPosition(event.lastEventId);
    refresh();
  }

  function connect() {
    retryTimer = null;
    source = new EventSource(streamUrl);
    source.addEventListener('open', () => {
      retryMs = 1000;
      setStatus('live', 'Live');
      // Catch up on anything that happened while we were not listening.
      refresh();
    });
    source.addEventListener('error', () => {
      setStatus('reconnecting', 'Reconnecting…');
      if (source && source.readyState === EventSource.CLOSED) {
        // The browser gave up (for example on an error response): retry ourselves, backing off.
        source = null;
        const delay = retryMs + Math.floor(Math.random() * 500);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
        retryTimer = window.setTimeout(connect, delay);
      }
    });
    EVENT_TYPES.forEach((type) => source.addEventListener(type, onEvent));
  }

  function disconnect() {
    if (retryTimer !== null) {
      window.clearTimeout(retryTimer);
      retryTimer = null;
    }
    if (source) {
      source.close();
      source = null;
    }
  }

  // Close the stream when the page is put away (keeps the back/forward cache usable) and
  // reopen it when the page comes back.
  window.addEventListener('pagehide', disconnect);
  window.addEventListener('pageshow', (event) => {
    if (event.persisted && !source && retryTimer === null) connect();
  });

  connect();
})();
