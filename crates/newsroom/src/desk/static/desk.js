// The newsroom desk's only script, served at /desk/static/desk.js (script-src 'self'). Every
// page works without it; it only makes mistakes harder and keeps unsent work.
//
// Enter: in a one-line field of a form marked `data-no-enter` (filing, correcting, editing),
// Enter does not send the form. Without this script it sends it to a preview, never to readers.
//
// Drafts: a form marked `data-draft="<key>"` (the filing form) is saved in the browser's
// localStorage under that key as it is typed. When the form is opened afresh (`data-fresh`), a
// saved draft is put back, with a notice and a way to discard it. A page that confirms a filing
// carries `data-filed="<development id>"`: the draft of that filing is then removed.
//
// Presence: a form marked `data-presence="<url>"` (approving, correcting, retracting) tells the
// desk every 30 s that it is still open (`doing` = `data-doing`), and that it is left when the
// page goes away, so that others see who is at work on the development.
//
// Sending on a bad connection: a form marked `data-retry` (the filing's preview) sends its
// confirming button with fetch, the same body a plain POST would carry. It names its
// development by id, so the desk files it once however often it arrives. When the connection
// fails (or a gateway answers 502/503/504) the page says so, in a status region and visibly,
// and tries again with growing delays ("Try now" at once, and as soon as the browser is back
// online) until the desk answers; then it goes where the answer says: the page a redirect leads
// to, or the page the desk answered with (a refusal, a sign-in after a lapsed session).
(function () {
  "use strict";

  var BUTTONS = ["submit", "button", "reset", "image"];
  var DRAFTS = "newsroom-desk-draft:";

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.isComposing) {
      return;
    }
    var field = event.target;
    if (!(field instanceof HTMLInputElement) || BUTTONS.indexOf(field.type) >= 0) {
      return;
    }
    if (field.form && field.form.hasAttribute("data-no-enter")) {
      event.preventDefault();
    }
  });

  function storage() {
    try {
      return window.localStorage;
    } catch (e) {
      return null;
    }
  }

  // The fields worth keeping: everything named but the CSRF value and the buttons.
  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (e) {
      return e.name && e.name !== "csrf" && BUTTONS.indexOf(e.type) < 0;
    });
  }

  function typedSomething(form) {
    return fields(form).some(function (e) {
      return (e.tagName === "TEXTAREA" || e.type === "text" || e.type === "url") &&
        e.value.trim() !== "";
    });
  }

  function save(form, store) {
    var key = form.getAttribute("data-draft");
    try {
      if (!typedSomething(form)) {
        store.removeItem(key);
        return;
      }
      var values = fields(form).map(function (e) {
        return [e.name, e.value];
      });
      // `synced` turns true once the server has this very draft (see serverDrafts).
      store.setItem(key, JSON.stringify({ saved: Date.now(), fields: values, synced: false }));
    } catch (e) {
      // Full or refused: the server-side form is all there is.
    }
  }

  // Puts a draft's values back, field by field in order; names typed into more boxes than the
  // form has go into its last box of that name, separated by commas.
  function restore(form, draft) {
    var values = {};
    draft.fields.forEach(function (pair) {
      (values[pair[0]] = values[pair[0]] || []).push(pair[1]);
    });
    var used = {};
    var last = {};
    fields(form).forEach(function (e) {
      var kept = values[e.name];
      if (!kept) {
        return;
      }
      var i = used[e.name] || 0;
      used[e.name] = i + 1;
      last[e.name] = e;
      if (i < kept.length) {
        e.value = kept[i];
      }
    });
    Object.keys(values).forEach(function (name) {
      var rest = values[name].slice(used[name] || 0).filter(function (v) {
        return v.trim() !== "";
      });
      if (rest.length && last[name]) {
        var box = last[name];
        box.value = [box.value].concat(rest).filter(function (v) {
          return v.trim() !== "";
        }).join(", ");
      }
    });
  }

  function announce(form, draft, store) {
    var note = document.createElement("div");
    note.className = "notice draft-notice";
    note.setAttribute("role", "status");
    var when = new Date(draft.saved);
    note.appendChild(document.createTextNode(
      "Your unsent draft from " + when.toLocaleString() + " is back in the form below. "
    ));
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "button-link";
    discard.textContent = "Discard the draft";
    discard.addEventListener("click", function () {
      store.removeItem(form.getAttribute("data-draft"));
      window.location.reload();
    });
    note.appendChild(discard);
    form.parentNode.insertBefore(note, form);
  }

  function forgetFiled(store) {
    var filed = Array.prototype.map.call(
      document.querySelectorAll("[data-filed]"),
      function (e) {
        return e.getAttribute("data-filed");
      }
    );
    if (!filed.length) {
      return;
    }
    var keys = [];
    for (var i = 0; i < store.length; i++) {
      var key = store.key(i);
      if (key && key.indexOf(DRAFTS) === 0) {
        keys.push(key);
      }
    }
    keys.forEach(function (key) {
      try {
        var draft = JSON.parse(store.getItem(key));
        var id = draft.fields.filter(function (pair) {
          return pair[0] === "id";
        })[0];
        if (id && filed.indexOf(id[1]) >= 0) {
          store.removeItem(key);
        }
      } catch (e) {
        store.removeItem(key);
      }
    });
  }

  function drafts() {
    var store = storage();
    if (!store) {
      return;
    }
    forgetFiled(store);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-draft]"), function (form) {
      // A form just opened takes the browser's draft; one filled from the server's draft takes
      // it only if it holds typing the server never got (saved after the last save that
      // reached the server: offline, signed out, or the page left before it was sent).
      var fromServer = form.hasAttribute("data-from-server-draft");
      if (form.hasAttribute("data-fresh") || fromServer) {
        try {
          var draft = JSON.parse(store.getItem(form.getAttribute("data-draft")));
          if (draft && Array.isArray(draft.fields) && !(fromServer && draft.synced)) {
            restore(form, draft);
            if (fromServer) {
              Array.prototype.forEach.call(
                document.querySelectorAll("[data-server-draft-notice]"),
                function (mark) {
                  var banner = mark.closest("[role=status]");
                  if (banner) {
                    banner.parentNode.removeChild(banner);
                  }
                }
              );
            }
            announce(form, draft, store);
          }
        } catch (e) {
          store.removeItem(form.getAttribute("data-draft"));
        }
      }
      form.addEventListener("input", function () {
        save(form, store);
      });
      form.addEventListener("change", function () {
        save(form, store);
      });
    });
  }

  // Server-side drafts: a form with `data-server-draft` is also sent there, a second after the
  // typing stops, so that it is kept per person (and back after a lapsed session, on any
  // device). Offline, or signed out, the browser's own draft above still holds it.
  function serverDrafts() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-server-draft]"), function (form) {
      var timer = null;
      var store = storage();
      var key = form.getAttribute("data-draft");
      // Marks the browser's draft as the server's too, if it is still the one that was sent.
      function synced(stamp) {
        if (!store || !key || stamp === null) {
          return;
        }
        try {
          var draft = JSON.parse(store.getItem(key));
          if (draft && draft.saved === stamp) {
            draft.synced = true;
            store.setItem(key, JSON.stringify(draft));
          }
        } catch (e) {
          // Nothing to mark.
        }
      }
      function send(leaving) {
        timer = null;
        if (!typedSomething(form)) {
          return;
        }
        var stamp = null;
        try {
          var local = store && key && JSON.parse(store.getItem(key));
          stamp = local ? local.saved : null;
        } catch (e) {
          stamp = null;
        }
        var body = new URLSearchParams();
        Array.prototype.forEach.call(form.elements, function (e) {
          if (e.name && BUTTONS.indexOf(e.type) < 0) {
            body.append(e.name, e.value);
          }
        });
        fetch(form.getAttribute("data-server-draft"), {
          method: "POST",
          body: body,
          credentials: "same-origin",
          redirect: "manual",
          // Leaving the page: the save still goes out after it is gone.
          keepalive: !!leaving
        }).then(function (r) {
          if (r.status === 204) {
            synced(stamp);
          }
        }).catch(function () {});
      }
      // What was typed in the last second goes out before the page is left.
      window.addEventListener("pagehide", function () {
        if (timer) {
          window.clearTimeout(timer);
          send(true);
        }
      });
      function later() {
        if (timer) {
          window.clearTimeout(timer);
        }
        timer = window.setTimeout(send, 1000);
      }
      form.addEventListener("input", later);
      form.addEventListener("change", later);
    });
  }

  function presence() {
    var form = document.querySelector("form[data-presence]");
    var csrf = form && form.querySelector("input[name=csrf]");
    if (!form || !csrf) {
      return;
    }
    var url = form.getAttribute("data-presence");
    function mark(fields) {
      var body = new URLSearchParams({ csrf: csrf.value });
      Object.keys(fields).forEach(function (k) {
        body.set(k, fields[k]);
      });
      return body;
    }
    var timer = setInterval(function () {
      fetch(url, {
        method: "POST",
        body: mark({ doing: form.getAttribute("data-doing") }),
        credentials: "same-origin",
      }).catch(function () {});
    }, 30000);
    window.addEventListener("pagehide", function () {
      clearInterval(timer);
      if (navigator.sendBeacon) {
        navigator.sendBeacon(url, mark({ left: "1" }));
      }
    });
  }

  // Notices: what others did to this person's filings, shown as it happens in
  // `#desk-notices` (an aria-live list) from `/desk/notices`, asked every 10 s.
  function notices() {
    var region = document.getElementById("desk-notices");
    var list = document.getElementById("desk-notices-list");
    if (!region || !list || !window.fetch) {
      return;
    }
    var after = null;
    function ask() {
      if (!document.contains(list)) {
        // The page was replaced by an answer written in its place (see `retrying`).
        return;
      }
      var url = "/desk/notices" + (after === null ? "" : "?after=" + after);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          return r.ok ? r.json() : null;
        })
        .then(function (answer) {
          if (!answer) {
            return;
          }
          after = answer.position;
          if (answer.html) {
            list.insertAdjacentHTML("afterbegin", answer.html);
            region.hidden = false;
          }
        })
        .catch(function () {});
    }
    ask();
    setInterval(ask, 10000);
  }

  // Countdowns: a `span.countdown[data-until]` beside an embargo's moment says how long is left,
  // to the second, until the moment comes (the scheduler lifts it then; reload to see it).
  function left(ms) {
    var s = Math.floor(ms / 1000);
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var parts = [];
    if (d) parts.push(d + " d");
    if (d || h) parts.push(h + " h");
    if (d || h || m) parts.push(m + " min");
    if (!d) parts.push((s % 60) + " s");
    return parts.join(" ");
  }

  function countdowns() {
    var spans = document.querySelectorAll("span.countdown[data-until]");
    var undos = document.querySelectorAll("form.undo-form[data-until]");
    if (!spans.length && !undos.length) {
      return;
    }
    function tick() {
      var now = Date.now();
      Array.prototype.forEach.call(spans, function (span) {
        var until = Date.parse(span.getAttribute("data-until"));
        if (isNaN(until)) {
          return;
        }
        if (span.classList.contains("countdown-left")) {
          // An undo window's notice: the seconds left, then what came of it.
          span.textContent = until > now ? Math.ceil((until - now) / 1000) + " s" : "0 s";
        } else {
          span.textContent = until > now ? "(in " + left(until - now) + ")" : "(due now: reload to see it lifted)";
        }
      });
      // An undo window that has passed can no longer be undone: its button goes.
      Array.prototype.forEach.call(undos, function (form) {
        var until = Date.parse(form.getAttribute("data-until"));
        if (!isNaN(until) && until <= now && !form.hidden) {
          form.hidden = true;
          var said = document.createElement("span");
          said.textContent = "Published (reload to see it on the desk).";
          form.parentNode.insertBefore(said, form);
        }
      });
    }
    tick();
    window.setInterval(tick, 1000);
  }

  var GATEWAY = [502, 503, 504];

  function retrying() {
    if (!window.fetch || !window.URLSearchParams) {
      return;
    }
    Array.prototype.forEach.call(document.querySelectorAll("form[data-retry]"), function (form) {
      // Said once per failed attempt (the live region), seen counting down (the box).
      var status = document.createElement("p");
      status.className = "visually-hidden";
      status.id = "send-status";
      status.setAttribute("role", "status");
      status.setAttribute("aria-live", "polite");
      var box = document.createElement("div");
      box.className = "notice notice-warning send-retry";
      box.hidden = true;
      var said = document.createElement("span");
      said.setAttribute("aria-hidden", "true");
      var now = document.createElement("button");
      now.type = "button";
      now.className = "button-link";
      now.textContent = "Try now";
      box.appendChild(said);
      box.appendChild(document.createTextNode(" "));
      box.appendChild(now);
      form.parentNode.insertBefore(box, form);
      form.parentNode.insertBefore(status, form);

      var body = null;
      var failures = 0;
      var due = 0;
      var timer = null;
      var sending = false;

      function stop() {
        if (timer) {
          window.clearInterval(timer);
          timer = null;
        }
      }

      function show(text) {
        said.textContent = text;
        box.hidden = false;
      }

      function later(why) {
        sending = false;
        failures += 1;
        var wait = Math.min(30, Math.pow(2, failures - 1));
        due = Date.now() + wait * 1000;
        var text = "Not sent yet (" + why + ") — trying again in ";
        status.textContent = text + wait + " s.";
        show(text + wait + " s.");
        stop();
        timer = window.setInterval(function () {
          var left = Math.ceil((due - Date.now()) / 1000);
          if (left <= 0) {
            send();
          } else {
            show(text + left + " s.");
          }
        }, 250);
      }

      // The desk's answer, shown as the page: scripts and styles come from the desk as before.
      function answered(response) {
        stop();
        if (response.redirected) {
          window.location.assign(response.url);
          return null;
        }
        return response.text().then(function (html) {
          document.open();
          document.write(html);
          document.close();
        });
      }

      function send() {
        stop();
        if (sending || !body) {
          return;
        }
        sending = true;
        if (failures) {
          status.textContent = "Not sent yet — sending it again now.";
          show("Not sent yet — sending it again now.");
        }
        fetch(form.action, {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { Accept: "text/html" }
        })
          .then(function (response) {
            if (GATEWAY.indexOf(response.status) >= 0) {
              later("the desk's gateway answered " + response.status);
              return null;
            }
            return answered(response);
          }, function () {
            later("no connection");
          })
          .catch(function () {
            // The answer broke off while it was read: it may have been filed; sending the
            // same filing again is answered from the first.
            later("the answer broke off");
          });
      }

      now.addEventListener("click", send);
      window.addEventListener("online", function () {
        if (timer) {
          send();
        }
      });
      form.addEventListener("submit", function (event) {
        var button = event.submitter;
        if (!button || button.name !== "confirm") {
          // "Change it": a plain submit, and nothing left to retry.
          stop();
          body = null;
          return;
        }
        event.preventDefault();
        if (body) {
          // Already on its way, or waiting to be tried again: now, then.
          send();
          return;
        }
        body = new URLSearchParams();
        Array.prototype.forEach.call(form.elements, function (e) {
          if (e.name && BUTTONS.indexOf(e.type) < 0) {
            body.append(e.name, e.value);
          }
        });
        body.append(button.name, button.value);
        send();
      });
    });
  }

  function ready() {
    retrying();
    drafts();
    serverDrafts();
    presence();
    notices();
    countdowns();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
