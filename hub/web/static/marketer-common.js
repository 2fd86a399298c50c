// What the marketer's pages share: status badges, numbers, a confirmation dialog, and template
// or field errors shown next to the field they are about.
(function () {
  "use strict";
  const t = hub.t.mk;
  const el = hub.el;
  const STATUS_CLASS = {scheduled: "warn", sending: "good", paused: "warn", finished: "good", cancelled: "bad"};
  const REASON_CLASS = {unsubscribed: "warn", hard_bounce: "bad", complaint: "bad", soft_bounces: "warn"};

  function statusBadge(status) {
    return el("span", {class: "badge " + (STATUS_CLASS[status] || ""), dataset: {status: status}, text: t.status[status] || status});
  }

  function reasonBadge(reason) {
    return el("span", {class: "badge " + (REASON_CLASS[reason] || ""), dataset: {reason: reason}, text: t.reason[reason] || reason});
  }

  function number(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString(document.documentElement.lang);
  }

  function percent(rate) {
    return rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1).replace(".", t.decimal) + " %";
  }

  function format(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, key) { return values[key] === undefined ? "" : String(values[key]); });
  }

  // A modal question; resolves true when the user confirms.  The page's own dialog, not
  // window.confirm, so it reads in the page's language and shows what is about to happen.
  function confirmed(message, yes, danger) {
    return new Promise(function (resolve) {
      const dialog = el("dialog", {class: "mk-confirm", role: "alertdialog"}, [
        el("p", {text: message}),
        el("form", {method: "dialog", class: "toolbar"}, [
          el("button", {value: "yes", class: danger ? "danger" : "primary", id: "confirm-yes", text: yes || hub.t.ui.yes}),
          el("button", {value: "no", id: "confirm-no", text: hub.t.ui.cancel}),
        ]),
      ]);
      dialog.addEventListener("close", function () {
        resolve(dialog.returnValue === "yes");
        dialog.remove();
      });
      document.body.appendChild(dialog);
      dialog.showModal();
    });
  }

  // A template problem as the editor shows it: the line and the variable, in words.
  function problemText(detail) {
    const parts = [];
    if (detail.line) parts.push(format(t.error_line, {line: detail.line}));
    if (detail.variable) parts.push(format(t.error_variable, {variable: detail.variable}));
    else if (!detail.line) parts.push(t.error_template);
    return parts.join(", ");
  }

  // Shows each of an API error's details next to its field (an element #error-<field>); what
  // has no place on the page goes to a toast.  Returns true when something was shown in place.
  function showErrors(err, onLine) {
    const details = (err.body && err.body.details) || [];
    let placed = false;
    details.forEach(function (detail) {
      const field = String(detail.field || "").split(".")[0];
      const box = document.getElementById("error-" + field);
      if (!box) return;
      placed = true;
      const input = document.getElementById(field);
      if (input) input.classList.add("invalid");
      hub.clear(box).classList.add("shown");
      const summary = "line" in detail || "variable" in detail ? problemText(detail) : "";
      if (summary) box.appendChild(el("strong", {class: "summary", text: summary}));
      box.appendChild(el("span", {class: "message", text: detail.message}));
      if (detail.line && onLine) {
        box.appendChild(el("button", {type: "button", class: "goto-line", text: t.goto_line, onclick: function () { onLine(field, detail.line); }}));
      }
    });
    if (!placed) hub.failed(err);
    return placed;
  }

  function clearErrors(scope) {
    (scope || document).querySelectorAll(".field-error.shown").forEach(function (box) { hub.clear(box).classList.remove("shown"); });
    (scope || document).querySelectorAll(".invalid").forEach(function (input) { input.classList.remove("invalid"); });
  }

  window.mk = {t: t, statusBadge: statusBadge, reasonBadge: reasonBadge, number: number, percent: percent, format: format,
    confirmed: confirmed, showErrors: showErrors, clearErrors: clearErrors};
})();
