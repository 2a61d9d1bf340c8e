// Newsroom live updates for a story page (plain ES2017, no libraries).
//
// The page's <body> names the story (data-story-id, data-slug) and the log position it shows
// (data-position). We subscribe to the story's server-sent events from that position on
// (`?after=`; the browser's own reconnections send Last-Event-ID). Each change carries the
// server-rendered markup of its development's timeline item (`html`) and, when the claims
// ledger may have changed, of the ledger (`claims_html`): the page puts them in place without
// asking the server for anything, so a thousand readers cost the server one rendering. Changes to
// the story itself (headline, closed) fetch the fragment (/stories/{slug}/fragment) and swap
// #timeline and #claims. All markup is escaped HTML rendered by the server; it is parsed with
// DOMParser and its nodes imported, never assigned through innerHTML.
'use strict';

(() => {
  const body = document.body;
  const data = body ? body.dataset : null;
  if (!data || !data.storyId || !data.slug) return;
  if (typeof window.EventSource !== 'function' || typeof window.DOMParser !== 'function') return;

  const streamBase = '/v1/stories/' + encodeURIComponent(data.storyId) + '/stream';
  // The fragment as the reader chose to see the timeline (order, key events only).
  const chosen = new URLSearchParams();
  const asked = new URLSearchParams(window.location.search);
  ['order', 'show'].forEach((name) => {
    if (asked.has(name)) chosen.set(name, asked.get(name));
  });
  const fragmentUrl =
    '/stories/' + encodeURIComponent(data.slug) + '/fragment' +
    (chosen.toString() ? '?' + chosen.toString() : '');
  const times = window.newsroomTimes || { localise: () => {}, element: () => null };
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
        times.localise(document.getElementById('timeline'));
        times.localise(document.getElementById('claims'));
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

  function parse(markup) {
    return new DOMParser().parseFromString(markup, 'text/html').body.firstElementChild;
  }

  // Marks an item as arrived while the reader was here: a "New" badge and a class.
  function markNew(item) {
    item.classList.add('is-new');
    const labels = item.querySelector('.labels');
    if (labels && !labels.querySelector('.badge-new')) {
      const badge = document.createElement('span');
      badge.className = 'badge badge-new';
      badge.textContent = 'New';
      labels.insertBefore(document.createTextNode(' '), labels.firstChild);
      labels.insertBefore(badge, labels.firstChild);
    }
  }

  // Tells screen readers what arrived (the page's aria-live region).
  function announce(text) {
    const region = document.getElementById('live-announcer');
    if (!region) return;
    const line = document.createElement('p');
    line.textContent = text;
    region.appendChild(line);
    while (region.children.length > 3) region.removeChild(region.firstElementChild);
  }

  // Changes one of the timeline's counts ("3 developments", "1 retracted") by `by`.
  function count(selector, by, one, many) {
    const el = document.querySelector('#timeline ' + selector);
    if (!el) return;
    const n = Math.max(0, Number(el.dataset.count || 0) + by);
    el.dataset.count = String(n);
    if (selector === '.development-count') {
      el.textContent = n + ' ' + (n === 1 ? one : many);
    } else {
      el.hidden = n === 0;
      el.textContent = ' and ' + n + ' retracted, struck through';
    }
  }

  // Puts a development's timeline item in place: replaces the one shown, or inserts it where it
  // belongs in the order the reader chose (newest first unless the list says otherwise), marked
  // new; a reader showing key events only does not get others. Returns what it did ('replaced',
  // 'inserted', 'left out'), or null if the page cannot take it in place.
  function placeItem(markup) {
    const list = document.querySelector('#timeline ol.timeline-list');
    const fresh = parse(markup);
    if (!list || !fresh) return null;
    const item = document.importNode(fresh, true);
    times.localise(item);
    const keyOnly = list.dataset.show === 'key';
    const wanted = !keyOnly || item.dataset.key === 'true';
    const card = item.querySelector('article[id]');
    const shown = card ? document.getElementById(card.id) : null;
    const old = shown ? shown.closest('li') : null;
    if (old) {
      if (!wanted) {
        old.remove();
      } else {
        if (old.classList.contains('is-new')) markNew(item);
        old.replaceWith(item);
      }
      return 'replaced';
    }
    if (!wanted) return 'left out';
    const newestFirst = list.dataset.order !== 'oldest';
    const key = (li) => [Date.parse(li.dataset.occurred), Number(li.dataset.position)];
    const [at, pos] = key(item);
    const after = Array.from(list.children).find((li) => {
      const [t, p] = key(li);
      const later = t > at || (t === at && p > pos);
      return newestFirst ? !later : later;
    });
    markNew(item);
    list.insertBefore(item, after || null);
    const none = document.getElementById('no-key-events');
    if (none) none.remove();
    return 'inserted';
  }

  // "Last updated" follows the changes as they come.
  function updated(iso) {
    const dd = document.getElementById('last-updated');
    const el = typeof iso === 'string' ? times.element(iso) : null;
    if (dd && el) replaceChildren(dd, [el]);
  }

  function placeClaims(markup) {
    const current = document.getElementById('claims');
    const fresh = parse(markup);
    if (!current || !fresh) return false;
    const ledger = document.importNode(fresh, true);
    times.localise(ledger);
    current.replaceWith(ledger);
    return true;
  }

  function onEvent(event) {
    let change = null;
    try {
      change = JSON.parse(event.data);
    } catch (err) {
      change = null;
    }
    const placed =
      change !== null && typeof change.html === 'string' && !fetching
        ? placeItem(change.html)
        : null;
    const inPlace =
      placed !== null &&
      (typeof change.claims_html !== 'string' || placeClaims(change.claims_html));
    if (change !== null) {
      updated(change.at);
      const d = change.development;
      if (change.change === 'added' && placed !== null && placed !== 'replaced') {
        count('.development-count', 1, 'development', 'developments');
        // Only what the reader's view shows is announced (not what "key events" leaves out).
        if (placed === 'inserted' && d && typeof d.headline === 'string') {
          announce('New development: ' + d.headline);
        }
      } else if (change.change === 'retracted' && placed !== null) {
        count('.development-count', -1, 'development', 'developments');
        count('.retracted-count', 1);
        if (d && typeof d.headline === 'string') announce('Retracted: ' + d.headline);
      } else if (change.change === 'corrected' && d && typeof d.headline === 'string') {
        announce('Corrected: ' + d.headline);
      }
    }
    setPosition(event.lastEventId);
    if (!inPlace) refresh();
  }

  function connect() {
    retryTimer = null;
    // Resume after what the page shows; the browser's own reconnections send Last-Event-ID.
    source = new EventSource(streamBase + '?after=' + encodeURIComponent(data.position || '0'));
    source.addEventListener('open', () => {
      retryMs = 1000;
      setStatus('live', 'Live');
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
