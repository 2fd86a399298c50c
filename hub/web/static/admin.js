// What the admin's pages share: showing the API's validation errors beside the fields they
// concern, and looking up a text by key with the key itself as the fallback.
(function () {
  "use strict";
  const hub = window.hub;

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (node) { node.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (node) { node.removeAttribute("aria-invalid"); });
    const general = form.querySelector(".form-error");
    if (general) general.textContent = "";
  }

  // err: a hub.ApiError. hints: field -> plain words for that field's rule. conflict(message)
  // -> {field, text} for a 409, naming the field a duplicate concerns.
  function showErrors(form, err, hints, conflict) {
    clearErrors(form);
    const general = form.querySelector(".form-error");
    const placed = [];
    function place(field, text) {
      const slot = field && form.querySelector('.field-error[data-for="' + field + '"]');
      if (!slot) return false;
      slot.textContent = slot.textContent ? slot.textContent + "; " + text : text;
      const input = form.querySelector('[name="' + field + '"]');
      if (input) { input.setAttribute("aria-invalid", "true"); placed.push(input); }
      return true;
    }
    const details = err && err.body && Array.isArray(err.body.details) ? err.body.details : [];
    let unplaced = [];
    if (err && err.status === 409 && conflict) {
      const found = conflict(err.message);
      if (!place(found.field, found.text + " (" + err.message + ")")) unplaced.push(found.text);
    } else if (details.length) {
      details.forEach(function (d) {
        const field = String(d.field || "").replace(/^body\./, "").split(".")[0];
        const text = hints && hints[field] ? hints[field] + " (" + d.message + ")" : d.message;
        if (!place(field, text)) unplaced.push((field ? field + ": " : "") + d.message);
      });
    } else {
      unplaced.push(err ? err.message : "");
    }
    if (unplaced.length && general) general.textContent = hub.t.ui.error + ": " + unplaced.join("; ");
    if (placed.length) placed[0].focus();
  }

  function label(dict, key) {
    return dict && Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : key;
  }

  window.admin = {clearErrors: clearErrors, showErrors: showErrors, label: label};
})();
