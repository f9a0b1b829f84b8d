/* Client rating form (templates/feedback/_scale_form.html): unset lines set by tap, drag or keys;
 * sent with fetch only; on a 5xx or network failure the fields wait in localStorage
 * ("alliance-pending:" + idempotency key) and are re-sent unchanged. Texts come translated from
 * data-msg-* attributes; the English here is only a last resort.
 *
 * A form marked data-ask-tension has a second step after the lines: the tension question (yes /
 * no) and, after a yes, how far it was sorted out (1..5). Its answers travel in the same POST as
 * the lines, under the same key, so the saved copy and its retries carry them too; "I'd rather not
 * answer" sends the lines alone. */
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
    var statusKind = ""; /* "missing" while the count of unset lines is shown; "quiet": read out only */
    var lines = [];

    /* The tension step, when the form has one. */
    var askTension = form.hasAttribute("data-ask-tension");
    var step = "scale"; /* scale | tension */
    var scaleStep = document.getElementById("rating-step-scale");
    var tensionStep = askTension ? document.getElementById("rating-step-tension") : null;
    var scaleTitle = document.getElementById("rating-title");
    var tensionTitle = document.getElementById("tension-title");
    var backButton = document.getElementById("rating-back");
    var skipButton = document.getElementById("tension-skip");
    var choiceGroups = {}; /* field name -> {fieldset, error} */
    if (!tensionStep) askTension = false;

    function msg(name, fallback) {
      return form.getAttribute("data-msg-" + name) || fallback;
    }

    function setStatus(text, kind) {
      statusKind = kind || "";
      if (!status) return;
      if (kind) status.setAttribute("data-state", kind);
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
        if (missingShown) showMissing();
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

    /* ---- the tension step ---- */

    Array.prototype.forEach.call(form.querySelectorAll("fieldset.choice-group"), function (fieldset) {
      var name = fieldset.getAttribute("data-field");
      if (name) choiceGroups[name] = { fieldset: fieldset, error: fieldset.querySelector(".choice-error") };
    });

    function radios(name) {
      return Array.prototype.slice.call(form.querySelectorAll('input[type="radio"][name="' + name + '"]'));
    }

    function chosen(name) {
      var checked = radios(name).filter(function (input) { return input.checked; });
      return checked.length ? checked[0].value : "";
    }

    function choose(name, value) {
      radios(name).forEach(function (input) { input.checked = input.value === value; });
    }

    function setChoiceError(name, text) {
      var group = choiceGroups[name];
      if (!group) return;
      group.fieldset.classList.toggle("has-error", !!text);
      radios(name).forEach(function (input) {
        if (text) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      });
      if (group.error) {
        group.error.textContent = text;
        group.error.hidden = !text;
      }
    }

    /* The resolution is asked only after a yes; a no forgets a resolution chosen before. */
    function showResolution() {
      var group = choiceGroups.tension_resolution;
      var yes = chosen("tension") === "yes";
      if (group) group.fieldset.hidden = !yes;
      if (!yes) {
        choose("tension_resolution", "");
        setChoiceError("tension_resolution", "");
      }
    }

    function focusQuietly(element) {
      if (!element) return;
      try {
        element.focus({ preventScroll: true });
      } catch (err) {
        element.focus();
      }
    }

    /* Show one step; `focus` moves the focus to its heading, so a screen reader reads it out. */
    function showStep(name, focus) {
      if (!askTension) return;
      step = name;
      var tension = name === "tension";
      if (scaleStep) scaleStep.hidden = tension;
      tensionStep.hidden = !tension;
      if (backButton) backButton.hidden = !tension;
      if (button) {
        button.textContent = tension
          ? form.getAttribute("data-label-send") || "Send my answers"
          : form.getAttribute("data-label-next") || "Next";
      }
      showResolution();
      if (focus) {
        window.scrollTo(0, 0);
        focusQuietly(tension ? tensionTitle : scaleTitle);
      }
    }

    form.addEventListener("change", function (event) {
      var target = event.target;
      if (!target || target.type !== "radio" || state !== "editing") return;
      setChoiceError(target.name, "");
      if (target.name === "tension") showResolution();
      if (statusKind === "missing" || statusKind === "quiet") setStatus("", "");
    });

    /* The first unanswered question of the tension step and its message, or null. */
    function tensionMissing() {
      var answer = chosen("tension");
      if (!answer) {
        return ["tension", msg("tension-missing", "Please choose yes or no, or “I’d rather not answer”.")];
      }
      if (answer === "yes" && !chosen("tension_resolution")) {
        return ["tension_resolution", msg("resolution-missing", "Please choose how far it was sorted out.")];
      }
      return null;
    }

    function focusGroup(name) {
      var list = radios(name);
      var checked = list.filter(function (input) { return input.checked; });
      var target = checked[0] || list[0];
      if (!target) return;
      try {
        choiceGroups[name].fieldset.scrollIntoView({ block: "center" });
      } catch (err) {}
      focusQuietly(target);
    }

    /* The fields to send: the lines and the key, and the tension answer unless declined. */
    function collect(withTension) {
      var fields = {};
      new FormData(form).forEach(function (value, name) {
        if (name !== "csrfmiddlewaretoken" && name !== "tension" && name !== "tension_resolution") {
          fields[name] = String(value);
        }
      });
      if (withTension) {
        var answer = chosen("tension");
        fields.tension = answer;
        if (answer === "yes") fields.tension_resolution = chosen("tension_resolution");
      }
      return fields;
    }

    function unsetLines() {
      return lines.filter(function (line) { return line.tenths === null; });
    }

    function missingText(line) {
      return line.fieldset.getAttribute("data-msg-missing") || "Please mark the line “" + line.label + "”.";
    }

    /* Lines left unmarked at a submit are marked gently, with one message: beside the line when
       one is left, else a count under the form. Red stays for answers the server refused. */
    var missingShown = false;
    function showMissing() {
      var missing = unsetLines();
      missingShown = missing.length > 0;
      lines.forEach(function (line) {
        var on = missing.indexOf(line) !== -1;
        line.fieldset.classList.toggle("is-missing", on);
        if (line.fieldset.classList.contains("has-error")) return;
        if (on) line.track.setAttribute("aria-invalid", "true");
        else line.track.removeAttribute("aria-invalid");
        if (line.error) {
          line.error.textContent = on && missing.length === 1 ? missingText(line) : "";
          line.error.hidden = !line.error.textContent;
        }
      });
      if (!missing.length) return setStatus("", "");
      if (missing.length === 1) return setStatus(missingText(missing[0]), "quiet");
      setStatus(msg("remaining-" + missing.length, missing.length + " lines still need a mark."), "missing");
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
      if (backButton) backButton.disabled = locked;
      if (skipButton) skipButton.disabled = locked;
      Array.prototype.forEach.call(form.querySelectorAll('input[type="radio"]'), function (input) {
        input.disabled = locked;
      });
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
      var firstChoice = null;
      lines.forEach(function (line) {
        var list = errors[line.name];
        setError(line, list ? texts(list).join(" ") : "");
        if (list && !first) first = line;
      });
      ["tension", "tension_resolution"].forEach(function (name) {
        var list = errors[name];
        if (!choiceGroups[name]) return;
        setChoiceError(name, list ? texts(list).join(" ") : "");
        if (list && !firstChoice) firstChoice = name;
      });
      Object.keys(errors).forEach(function (name) {
        var known = lines.some(function (line) { return line.name === name; }) || !!choiceGroups[name];
        if (!known) general = general.concat(texts(errors[name])); /* "__all__" and anything unexpected */
      });
      if (askTension) {
        /* The lines first; else the tension step, the resolution shown if the server speaks of it. */
        if (first) showStep("scale", false);
        else if (firstChoice) {
          showStep("tension", false);
          if (errors.tension_resolution && choiceGroups.tension_resolution) {
            choiceGroups.tension_resolution.fieldset.hidden = false;
          }
        }
      }
      setStatus(
        general.length
          ? general.join(" ")
          : msg("invalid", "Some answers could not be accepted. Please look at the messages below."),
        "error"
      );
      if (first) focusLine(first);
      else if (firstChoice) focusGroup(firstChoice);
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
        if (line.tenths !== null) setError(line, "");
      });
      if (missing.length) {
        showStep("scale", false);
        showMissing();
        return focusLine(missing[0]);
      }
      if (askTension && step === "scale") {
        setStatus("", "");
        return showStep("tension", true);
      }
      if (askTension) {
        var gap = tensionMissing();
        if (gap) {
          setChoiceError(gap[0], gap[1]);
          setStatus(gap[1], "quiet"); /* shown beside the question; the live region reads it out */
          return focusGroup(gap[0]);
        }
      }
      setStatus("", "");
      send(collect(askTension), form.action);
    });

    if (askTension) {
      if (backButton) {
        backButton.addEventListener("click", function () {
          if (state !== "editing") return;
          setStatus("", "");
          showStep("scale", true);
        });
      }
      if (skipButton) {
        skipButton.addEventListener("click", function () {
          if (state !== "editing" || unsetLines().length) return;
          setChoiceError("tension", "");
          setChoiceError("tension_resolution", "");
          setStatus("", "");
          send(collect(false), form.action);
        });
      }
      showStep("scale", false);
    }

    /* Answers this tablet kept for this very form (same idempotency key): show them and send. */
    var saved = key ? store(storeName) : null;
    if (saved) {
      lines.forEach(function (line) {
        var value = parseFloat(saved.fields[line.name]);
        if (!isNaN(value)) setValue(line, value * 10);
      });
      if (askTension && typeof saved.fields.tension === "string") {
        /* Shown as they were chosen; the saved fields themselves are what is sent. */
        choose("tension", saved.fields.tension);
        choose("tension_resolution", String(saved.fields.tension_resolution || ""));
        showStep("tension", false);
      }
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
