// Times in the reader's own time zone (plain ES2017, no libraries).
//
// The server renders every <time datetime> of the reader pages in UTC, with the UTC reading in its
// title too. This script puts the reading in the browser's time zone in its text, leaving UTC on
// hover (the title); without script the pages read in UTC. live.js calls
// window.newsroomTimes.localise(node) for markup it puts in the page, and
// window.newsroomTimes.element(iso) for a time it makes itself.
'use strict';

(() => {
  const MONTHS = [
    'January', 'February', 'March', 'April', 'May', 'June',
    'July', 'August', 'September', 'October', 'November', 'December',
  ];
  const two = (n) => String(n).padStart(2, '0');

  // The server's own UTC reading: "6 December 2026, 15:43 UTC".
  function utcText(at) {
    return at.getUTCDate() + ' ' + MONTHS[at.getUTCMonth()] + ' ' + at.getUTCFullYear() + ', ' +
      two(at.getUTCHours()) + ':' + two(at.getUTCMinutes()) + ' UTC';
  }

  let format = null;
  try {
    format = new Intl.DateTimeFormat(undefined, {
      day: 'numeric',
      month: 'long',
      year: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    });
  } catch (err) {
    format = null;
  }

  function localiseOne(el) {
    if (!format || el.dataset.local === 'true') return;
    const at = new Date(el.getAttribute('datetime'));
    if (Number.isNaN(at.getTime())) return;
    el.title = utcText(at);
    el.textContent = format.format(at);
    el.dataset.local = 'true';
  }

  function localise(root) {
    const scope = root || document;
    if (scope.matches && scope.matches('time[datetime]')) localiseOne(scope);
    if (!scope.querySelectorAll) return;
    Array.prototype.forEach.call(scope.querySelectorAll('time[datetime]'), localiseOne);
  }

  // A <time> for an RFC 3339 instant, as the server would render it, then localised.
  function element(iso) {
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return null;
    const el = document.createElement('time');
    el.setAttribute('datetime', iso);
    el.title = utcText(at);
    el.textContent = utcText(at);
    localiseOne(el);
    return el;
  }

  window.newsroomTimes = { localise, element };
  localise(document);
})();
