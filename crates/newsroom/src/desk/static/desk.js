// The newsroom desk's only script, served at /desk/static/desk.js (script-src 'self'). Every
// page works without it; it only makes mistakes harder.
//
// Enter: in a one-line field of a form marked `data-no-enter` (filing, correcting, editing),
// Enter does not send the form. Without this script it sends it to a preview, never to readers.
(function () {
  "use strict";

  var BUTTONS = ["submit", "button", "reset", "image"];

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
})();
