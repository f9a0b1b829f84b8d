/* The link page's "Copy link" button: puts the link on the clipboard and says so. Without the
   clipboard API (an older browser, a page not served over HTTPS) it selects the link instead,
   so that the therapist copies it by hand. */
(function () {
  "use strict";
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy-target"));
    var status = document.getElementById(button.getAttribute("data-copy-status"));
    if (!field) return;
    button.hidden = false;
    function say(text) {
      if (status) status.textContent = text;
    }
    button.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(
          function () { say(button.getAttribute("data-msg-copied")); },
          function () { field.select(); say(button.getAttribute("data-msg-select")); }
        );
      } else {
        field.select();
        say(button.getAttribute("data-msg-select"));
      }
    });
  });
})();
