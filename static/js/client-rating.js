/* Client rating form (templates/feedback/_scale_form.html): unset lines set by tap, drag or keys;
 * sent with fetch only; on a 5xx or network failure the fields wait in localStorage
 * ("alliance-pending:" + idempotency key) and are re-sent unchanged. Texts come translated from
 * data-msg-* attributes; the English here is only a last resort. */
(function () {
  "use strict";

  var STORE_PREFIX = "alliance-pending:";
  var RETRY_FIRST_MS = 5000;
  var RETRY_MAX_MS = 30000;
  var SENDING_HINT_MS = 600;
  var KEY_STEPS = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 10, PageDown: -10 };

  function clamp(tenths) {
    return Math.min(100, Math.max(0, Math.round(tenths)));
  }

  /* Read (undefined), delete (null) or write the saved copy; without storage, memory still retries. */
  function store(name, entry) {
    try {
      if (entry === undefined) {
        var saved = JSON.parse(window.localStorage.getItem(name) || "null");
        return saved && saved.fields && typeof saved.fields === "object" ? saved : null;
      }
      if (entry === null) window.localStorage.removeItem(name);
      else window.localStorage.setItem(name, JSON.stringify(entry));
    } catch (err) {
      /* nothing more to do */
    }
    return null;
  }

  function init(form) {
    if (!form || form.hasAttribute("data-vas-ready")) return; /* loaded twice: bind once */
    form.setAttribute("data-vas-ready", "");

    var status = document.getElementById("rating-status");
    var button = document.getElementById("rating-submit");
    var keyInput = form.querySelector('input[name="idempotency_key"]');
    var key = (keyInput && keyInput.value) || form.getAttribute("data-idempotency-key") || "";
    var storeName = STORE_PREFIX + key;
    var lang = document.documentElement.lang || undefined;
    var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)");

    var state = "editing"; /* editing | sending | pending | refused | done */
    var pending = null; /* the saved entry while waiting for the connection */
    var inFlight = false;
    var retryTimer = null;
    var retryDelay = RETRY_FIRST_MS;
    var hintTimer = null;
    var statusKind = ""; /* "missing" while the count of unset lines is shown */
    var lines = [];

    function msg(name, fallback) {
      return form.getAttribute("data-msg-" + name) || fallback;
    }

    function setStatus(text, kind) {
      statusKind = kind || "";
      if (!status) return;
      if (kind) status.setAttribute("data-state", kind === "missing" ? "error" : kind);
      else status.removeAttribute("data-state");
      if (text && status.textContent === text) {
        /* The same words again: empty the region first so screen readers repeat them. */
        status.textContent = "";
        window.setTimeout(function () {
          status.textContent = text;
        }, 120);
      } else {
        status.textContent = text || "";
      }
    }

    function showOffline() {
      setStatus(
        msg("offline", "Your answers are saved on this tablet and will be sent when the connection is back."),
        "offline"
      );
    }

    /* ---- the lines ---- */

    function setValue(line, tenths) {
      tenths = clamp(tenths);
      line.tenths = tenths;
      var text = (tenths / 10).toFixed(1);
      var spoken = text;
      try {
        spoken = (tenths / 10).toLocaleString(lang, { minimumFractionDigits: 1 });
      } catch (err) {}
      line.input.value = text;
      if (line.thumb) line.thumb.style.left = tenths + "%";
      line.fieldset.classList.add("is-set");
      line.track.setAttribute("aria-valuenow", text);
      line.track.setAttribute("aria-valuetext", msg("valuetext", "{value} out of 10").replace("{value}", spoken));
      if (state === "editing") {
        setError(line, "");
        if (statusKind === "missing") summariseMissing();
      }
    }

    function setError(line, text) {
      line.fieldset.classList.toggle("has-error", !!text);
      if (text) line.track.setAttribute("aria-invalid", "true");
      else line.track.removeAttribute("aria-invalid");
      if (line.error) {
        line.error.textContent = text;
        line.error.hidden = !text;
      }
    }

    function fromPointer(line, event) {
      var rect = line.track.getBoundingClientRect();
      if (rect.width > 0) setValue(line, (100 * (event.clientX - rect.left)) / rect.width);
    }

    function endDrag(line, event) {
      if (line.pointerId === null || (event && event.pointerId !== line.pointerId)) return;
      line.pointerId = null;
      line.track.classList.remove("is-dragging");
    }

    function bindLine(line) {
      var track = line.track;
      track.addEventListener("pointerdown", function (event) {
        if (state !== "editing" || (event.pointerType === "mouse" && event.button !== 0)) return;
        line.pointerId = event.pointerId;
        try {
          track.setPointerCapture(event.pointerId);
        } catch (err) {
          /* the pointer is already gone: the tap still counts */
        }
        track.classList.add("is-dragging");
        fromPointer(line, event); /* the browser focuses the track itself, without a focus ring */
      });
      track.addEventListener("pointermove", function (event) {
        if (line.pointerId === event.pointerId && state === "editing") fromPointer(line, event);
      });
      ["pointerup", "pointercancel", "lostpointercapture"].forEach(function (type) {
        track.addEventListener(type, function (event) { endDrag(line, event); });
      });
      track.addEventListener("keydown", function (event) {
        if (state !== "editing" || event.altKey || event.ctrlKey || event.metaKey) return;
        var start = line.tenths === null ? 50 : line.tenths; /* the first key starts at 5.0 */
        var next;
        if (event.key === "Home") next = 0;
        else if (event.key === "End") next = 100;
        else if (KEY_STEPS.hasOwnProperty(event.key)) next = start + KEY_STEPS[event.key];
        else return;
        event.preventDefault();
        setValue(line, next);
      });
    }

    Array.prototype.forEach.call(form.querySelectorAll("fieldset.vas"), function (fieldset) {
      var name = fieldset.getAttribute("data-item");
      var track = fieldset.querySelector(".vas-track");
      var input = name && fieldset.querySelector('input[name="' + name + '"]');
      if (!track || !input) return;
      var label = fieldset.querySelector(".vas-label");
      var line = {
        name: name,
        fieldset: fieldset,
        track: track,
        thumb: track.querySelector(".vas-thumb"),
        input: input,
        error: fieldset.querySelector(".vas-error"),
        label: label ? label.textContent.trim() : name,
        tenths: null,
        pointerId: null
      };
      input.value = "";
      track.setAttribute("aria-valuetext", msg("unset", "Not marked yet"));
      track.removeAttribute("aria-valuenow");
      bindLine(line);
      lines.push(line);
    });

    function unsetLines() {
      return lines.filter(function (line) { return line.tenths === null; });
    }

    function summariseMissing() {
      var count = unsetLines().length;
      if (!count) return setStatus("", "");
      setStatus(
        msg("remaining-" + count, count === 1 ? "One line still needs a mark." : count + " lines still need a mark."),
        "missing"
      );
    }

    function focusLine(line) {
      var smooth = !(reduceMotion && reduceMotion.matches);
      try {
        line.fieldset.scrollIntoView({ block: "center", behavior: smooth ? "smooth" : "auto" });
      } catch (err) {
        line.fieldset.scrollIntoView();
      }
      line.track.focus({ preventScroll: true });
    }

    /* Locked unless editing: while sending, while waiting for the connection, after a refusal. */
    function enter(newState) {
      state = newState;
      var locked = newState !== "editing";
      form.classList.toggle("is-locked", locked);
      form.setAttribute("aria-busy", newState === "sending" ? "true" : "false");
      lines.forEach(function (line) {
        if (locked) {
          line.track.setAttribute("aria-disabled", "true");
          endDrag(line);
        } else {
          line.track.removeAttribute("aria-disabled");
        }
      });
      if (button) button.disabled = locked;
    }

    /* ---- sending ---- */

    function csrfToken() {
      var input = form.querySelector('input[name="csrfmiddlewaretoken"]');
      if (input && input.value) return input.value;
      var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
      return match ? decodeURIComponent(match[1]) : "";
    }

    function clearTimers() {
      window.clearTimeout(retryTimer);
      window.clearTimeout(hintTimer);
      retryTimer = hintTimer = null;
    }

    function send(fields, action) {
      if (inFlight || state === "done" || state === "refused") return;
      clearTimers();
      if (navigator.onLine === false) return goOffline(fields, action);
      if (state === "editing") {
        enter("sending");
        hintTimer = window.setTimeout(function () {
          if (state === "sending") setStatus(msg("sending", "Sending your answers…"), "info");
        }, SENDING_HINT_MS);
      }
      var token = csrfToken(); /* read afresh each time: it may have been rotated */
      var body = new FormData();
      Object.keys(fields).forEach(function (name) { body.append(name, fields[name]); });
      var headers = { Accept: "application/json" };
      if (token) {
        body.append("csrfmiddlewaretoken", token);
        headers["X-CSRFToken"] = token;
      }
      inFlight = true;
      function broken() {
        inFlight = false;
        goOffline(fields, action);
      }
      fetch(action, { method: "POST", body: body, headers: headers, credentials: "same-origin", cache: "no-store" }).then(
        function (response) {
          /* A body cut off mid-way is a network failure: sending again is safe (same key). */
          return response.text().then(function (text) {
            var data = null;
            try {
              data = JSON.parse(text);
            } catch (err) {
              /* not JSON: the status code decides */
            }
            inFlight = false;
            window.clearTimeout(hintTimer);
            handleResponse(response, data && typeof data === "object" ? data : null, fields, action);
          }, broken);
        },
        broken
      );
    }

    function handleResponse(response, data, fields, action) {
      var code = response.status;
      var kind = data ? data.status : null;
      if (code >= 500 || code === 408 || code === 429) {
        goOffline(fields, action); /* the server or a gateway cannot take it now: try again later */
      } else if (code >= 200 && code < 300 && kind !== "invalid" && kind !== "refused") {
        finish(data, response);
      } else if (code === 400 && kind === "invalid") {
        invalid(data.errors && typeof data.errors === "object" ? data.errors : {});
      } else {
        refused(data && typeof data.message === "string" ? data.message : "");
      }
    }

    function forget() {
      clearTimers();
      store(storeName, null);
      pending = null;
    }

    function finish(data, response) {
      forget();
      enter("done");
      var next = data && typeof data.next === "string" ? data.next : "";
      if (!next && response.redirected) next = response.url;
      if (next) window.location.assign(next);
      else setStatus(msg("stored", "Thank you. Your answers have been sent."), "info");
    }

    function texts(list) {
      return [].concat(list).map(function (item) {
        return item && typeof item === "object" && item.message ? item.message : String(item);
      });
    }

    function invalid(errors) {
      forget();
      enter("editing");
      var general = [];
      var first = null;
      lines.forEach(function (line) {
        var list = errors[line.name];
        setError(line, list ? texts(list).join(" ") : "");
        if (list && !first) first = line;
      });
      Object.keys(errors).forEach(function (name) {
        var known = lines.some(function (line) { return line.name === name; });
        if (!known) general = general.concat(texts(errors[name])); /* "__all__" and anything unexpected */
      });
      setStatus(
        general.length
          ? general.join(" ")
          : msg("invalid", "Some answers could not be accepted. Please look at the messages below."),
        "error"
      );
      if (first) focusLine(first);
    }

    function refused(message) {
      forget();
      enter("refused");
      setStatus(message || msg("refused", "These answers could not be sent. Please hand the tablet back."), "error");
    }

    function goOffline(fields, action) {
      if (!pending) {
        pending = { action: action, fields: fields, key: key, savedAt: new Date().toISOString() };
        store(storeName, pending);
      }
      if (state !== "pending") {
        enter("pending");
        showOffline();
      }
      window.clearTimeout(retryTimer);
      retryTimer = window.setTimeout(retryNow, retryDelay);
      retryDelay = Math.min(RETRY_MAX_MS, Math.round(retryDelay * 1.5));
    }

    function retryNow() {
      retryTimer = null;
      if (state === "pending" && pending) send(pending.fields, pending.action || form.action);
    }

    window.addEventListener("online", function () {
      if (state !== "pending") return;
      retryDelay = RETRY_FIRST_MS;
      retryNow();
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault(); /* never a normal navigation */
      if (state !== "editing") return;
      var missing = unsetLines();
      lines.forEach(function (line) {
        setError(
          line,
          line.tenths !== null ? "" : line.fieldset.getAttribute("data-msg-missing") || "Please mark the line “" + line.label + "”."
        );
      });
      if (missing.length) {
        summariseMissing();
        return focusLine(missing[0]);
      }
      setStatus("", "");
      var fields = {};
      new FormData(form).forEach(function (value, name) {
        if (name !== "csrfmiddlewaretoken") fields[name] = String(value);
      });
      send(fields, form.action);
    });

    /* Answers this tablet kept for this very form (same idempotency key): show them and send. */
    var saved = key ? store(storeName) : null;
    if (saved) {
      lines.forEach(function (line) {
        var value = parseFloat(saved.fields[line.name]);
        if (!isNaN(value)) setValue(line, value * 10);
      });
      pending = saved;
      enter("pending");
      showOffline();
      retryNow();
    }
  }

  function start() { init(document.getElementById("rating-form")); }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
