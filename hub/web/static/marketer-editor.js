// The campaign editor: the fields, a live preview for a chosen recipient (refreshed as you type),
// template errors shown at their field and line, a test copy, and the campaign's life (send now,
// schedule, pause, resume, cancel, the review of copies in flight at a crash).
(function () {
  "use strict";
  const el = hub.el, t = mk.t;
  const $ = function (id) { return document.getElementById(id); };
  const root = $("editor");
  const form = $("campaign-form");
  const frame = $("preview-frame");
  const EDITABLE = ["draft", "scheduled"];
  const TEMPLATE_FIELDS = ["subject", "html", "text"];
  let campaignId = root.dataset.id ? Number(root.dataset.id) : null;
  let campaign = null;
  let segments = [];
  let choices = [];  // preview recipients: {client_id, address, label}
  let recipient = null;
  let counted = null;
  let dirty = false;
  let previewSeq = 0;
  let countSeq = 0;
  let polling = null;

  function url(suffix) { return "/api/campaigns/" + campaignId + (suffix || ""); }
  function value(id) { return $(id) ? $(id).value.trim() : ""; }

  function values() {
    return {
      name: value("name"),
      mailbox: value("mailbox") || null,
      from_name: value("from_name"),
      from_address: value("from_address"),
      reply_to: value("reply_to") || null,
      subject: $("subject").value,
      html: $("html").value,
      text: $("text").value,
      segment_id: $("segment_id").value ? Number($("segment_id").value) : null,
      tracking: $("tracking").checked,
    };
  }

  function fill(c) {
    ["name", "from_name", "from_address", "subject", "html", "text"].forEach(function (id) { $(id).value = c[id] || ""; });
    $("reply_to").value = c.reply_to || "";
    if ($("mailbox")) $("mailbox").value = c.mailbox || "";
    $("segment_id").value = c.segment_id ? String(c.segment_id) : "";
    $("tracking").checked = c.tracking;
  }

  function markDirty(isDirty) {
    dirty = isDirty;
    $("unsaved").hidden = !isDirty;
  }

  function gotoLine(field, line) {
    const area = $(field);
    const lines = area.value.split("\n");
    const start = lines.slice(0, line - 1).reduce(function (n, text) { return n + text.length + 1; }, 0);
    area.focus();
    area.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const height = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 3) * height);
  }

  // -- the campaign's state and what can be done with it ---------------------------------------

  function show(c) {
    campaign = c;
    const editable = !c || EDITABLE.indexOf(c.status) >= 0;
    form.querySelectorAll("input, textarea, select").forEach(function (input) { input.disabled = !editable; });
    $("readonly").hidden = editable;
    $("save").hidden = !editable;
    hub.clear($("status")).appendChild(c ? mk.statusBadge(c.status) : mk.statusBadge("draft"));
    $("action-body").hidden = !c;
    $("save-first").hidden = !!c;
    $("delete").hidden = !c || c.status !== "draft";
    if (!c) return;
    document.title = c.name + " · hub";
    $("heading").textContent = c.name;
    const status = c.status;
    $("start").hidden = $("schedule-box").hidden = EDITABLE.indexOf(status) < 0;
    $("pause").hidden = status !== "sending";
    $("resume").hidden = status !== "paused";
    $("cancel").hidden = ["scheduled", "sending", "paused"].indexOf(status) < 0;
    $("stats-link").hidden = EDITABLE.indexOf(status) >= 0;
    $("stats-link").href = "/campaigns/" + c.id + "/stats";
    const r = c.recipients;
    $("scheduled-note").hidden = status !== "scheduled";
    $("scheduled-note").textContent = c.scheduled_at ? t.scheduled_for + " " + hub.when(c.scheduled_at) : "";
    $("progress").hidden = EDITABLE.indexOf(status) >= 0;
    $("progress").textContent = mk.format(t.progress, {sent: mk.number(r.sent), queued: mk.number(r.queued + r.sending),
      failed: mk.number(r.failed), opened: mk.number(c.opened), clicked: mk.number(c.clicked)});
    $("review").hidden = !r.review;
    $("review-count").textContent = mk.format(t.review_count, {count: mk.number(r.review)});
    clearTimeout(polling);
    if (status === "sending" || r.sending) polling = setTimeout(reload, 2000);  // the figures move while it sends
  }

  async function reload() {
    try {
      show(await hub.api("GET", url()));
    } catch (err) {
      hub.failed(err);
    }
  }

  async function save() {
    mk.clearErrors(form);
    try {
      const data = campaignId ? await hub.api("PATCH", url(), values()) : await hub.api("POST", "/api/campaigns", values());
      if (!campaignId) {
        campaignId = data.id;
        root.dataset.id = String(data.id);
        history.replaceState(null, "", "/campaigns/" + data.id);
        hub.toast(t.saved_new);
      } else {
        hub.toast(hub.t.ui.saved);
      }
      markDirty(false);
      show(data);
      return true;
    } catch (err) {
      mk.showErrors(err, gotoLine);
      return false;
    }
  }

  async function act(action, question, yes, danger) {
    if (question && !(await mk.confirmed(question, yes, danger))) return;
    try {
      show(await hub.api("POST", url("/" + action)));
      hub.toast(t.done[action]);
    } catch (err) {
      mk.showErrors(err, gotoLine);
    }
  }

  async function start() {
    if (dirty && !(await save())) return;
    const count = counted ? mk.number(counted.addresses) : "?";
    await act("start", mk.format(t.confirm_start, {count: count}), t.start, false);
  }

  async function schedule() {
    const at = $("schedule-at").value;
    if (!at) { $("schedule-at").classList.add("invalid"); hub.toast(t.schedule_when, true); return; }
    if (dirty && !(await save())) return;
    const when = new Date(at);
    if (!(await mk.confirmed(mk.format(t.confirm_schedule, {when: hub.when(when.toISOString())}), t.schedule, false))) return;
    try {
      show(await hub.api("POST", url("/schedule"), {at: when.toISOString()}));
      hub.toast(t.done.schedule);
    } catch (err) {
      mk.showErrors(err, gotoLine);
    }
  }

  async function review(action) {
    const question = action === "send_again" ? t.confirm_send_again : t.confirm_count_as_sent;
    if (!(await mk.confirmed(question, t[action], action === "send_again"))) return;
    try {
      const answer = await hub.api("POST", url("/review"), {action: action});
      hub.toast(mk.format(t.reviewed, {count: answer.changed}));
      await reload();
    } catch (err) {
      hub.failed(err);
    }
  }

  async function remove() {
    if (!(await mk.confirmed(t.confirm_delete, hub.t.ui.delete, true))) return;
    try {
      await hub.api("DELETE", url());
      location.href = "/campaigns";
    } catch (err) {
      hub.failed(err);
    }
  }

  async function testSend() {
    const address = value("test-address");
    if (!recipient) { hub.toast(t.choose_client, true); return; }
    if (!address) { $("test-address").classList.add("invalid"); hub.toast(t.test_where, true); return; }
    $("test-address").classList.remove("invalid");
    if ((dirty || !campaignId) && !(await save())) return;
    try {
      await hub.api("POST", url("/test"), {address: address, client_id: recipient.client_id});
      hub.toast(mk.format(t.test_sent, {address: address}));
    } catch (err) {
      mk.showErrors(err, gotoLine);
    }
  }

  // -- the segment and who the preview is for --------------------------------------------------

  function segment() {
    const id = Number($("segment_id").value);
    return segments.find(function (s) { return s.id === id; }) || null;
  }

  async function segmentChanged() {
    const chosen = segment();
    const seq = ++countSeq;
    $("segment-count").textContent = chosen ? hub.t.ui.loading : "";
    counted = null;
    if (!chosen) { setChoices([], "sample"); return; }
    try {
      const count = await hub.api("POST", "/api/segments/count", {rules: chosen.rules});
      const sample = await hub.api("POST", "/api/segments/sample", {rules: chosen.rules, limit: 20});
      if (seq !== countSeq) return;
      counted = count;
      $("segment-count").textContent = mk.format(t.segment_count, {addresses: mk.number(count.addresses),
        clients: mk.number(count.clients), suppressed: mk.number(count.suppressed)});
      $("segment-count").dataset.addresses = String(count.addresses);
      setChoices(sample.items.map(function (s) {
        return {client_id: s.client_id, address: s.address, label: label(s.client_name, s.contact_name, s.address)};
      }), "sample");
    } catch (err) {
      $("segment-count").textContent = "";
      hub.failed(err);
    }
  }

  function label(client, contact, address) {
    return client + (contact ? " — " + contact : "") + " <" + address + ">";
  }

  // The picker holds the segment's first addresses and, above them, what a search found.
  const groups = {found: [], sample: []};
  function setChoices(items, group) {
    groups[group] = items;
    choices = groups.found.concat(groups.sample);
    const select = hub.clear($("preview-recipient"));
    [["found", t.found], ["sample", t.from_segment]].forEach(function ([key, title]) {
      if (!groups[key].length) return;
      const optgroup = el("optgroup", {label: title});
      groups[key].forEach(function (choice) {
        optgroup.appendChild(el("option", {value: String(choices.indexOf(choice)), text: choice.label}));
      });
      select.appendChild(optgroup);
    });
    select.disabled = choices.length === 0;
    let index = -1;
    if (group === "found" && items.length) index = choices.indexOf(items[0]);
    else if (recipient) index = choices.findIndex(function (c) { return c.client_id === recipient.client_id && c.address === recipient.address; });
    if (index < 0 && choices.length) index = 0;
    if (index >= 0) select.value = String(index);
    pick(index >= 0 ? choices[index] : null);
  }

  function pick(choice) {
    const changed = !recipient || !choice || recipient.client_id !== choice.client_id || recipient.address !== choice.address;
    recipient = choice;
    if (changed) refreshPreview();
  }

  async function search() {
    const q = value("preview-search");
    if (q.length < 2) { setChoices([], "found"); return; }
    try {
      const page = await hub.api("GET", "/api/clients?per_page=10&q=" + encodeURIComponent(q));
      const found = [];
      page.items.forEach(function (c) {
        c.emails.forEach(function (e) { found.push({client_id: c.id, address: e.address, label: label(c.name, "", e.address)}); });
        c.contacts.forEach(function (p) {
          const name = [p.first_name, p.last_name].filter(Boolean).join(" ");
          p.emails.forEach(function (e) { found.push({client_id: c.id, address: e.address, label: label(c.name, name, e.address)}); });
        });
      });
      $("search-none").hidden = found.length > 0;
      setChoices(found, "found");
    } catch (err) {
      hub.failed(err);
    }
  }

  // -- the live preview ------------------------------------------------------------------------

  async function refreshPreview() {
    const seq = ++previewSeq;
    $("preview-hint").hidden = !!recipient;
    $("preview-body").hidden = !recipient;
    if (!recipient) return;
    const v = values();
    try {
      const copy = await hub.api("POST", "/api/campaigns/preview", {client_id: recipient.client_id, address: recipient.address,
        name: v.name, subject: v.subject, html: v.html, text: v.text});
      if (seq !== previewSeq) return;
      mk.clearErrors($("templates"));
      hub.clear($("preview-error"));
      $("preview").classList.remove("stale");
      $("preview-subject").textContent = copy.subject;
      $("preview-to").textContent = recipient.address;
      frame.hidden = !copy.html;
      frame.srcdoc = copy.html;
      $("preview-text").textContent = copy.text;
      $("preview-text").hidden = !!copy.html && !$("show-text").checked;
    } catch (err) {
      if (seq !== previewSeq) return;
      mk.clearErrors($("templates"));
      $("preview").classList.add("stale");
      const inPlace = err.status === 422 && (err.body.details || []).some(function (d) { return TEMPLATE_FIELDS.indexOf(d.field) >= 0; });
      hub.clear($("preview-error"));
      if (inPlace) {
        mk.showErrors(err, gotoLine);
        $("preview-error").appendChild(el("span", {text: t.preview_stale}));
      } else {
        $("preview-error").appendChild(el("span", {class: "error", text: hub.t.ui.error + ": " + err.message}));
      }
    }
  }

  const previewSoon = hub.debounce(refreshPreview, 350);

  // -- wiring ----------------------------------------------------------------------------------

  form.addEventListener("input", function (event) {
    markDirty(true);
    if (event.target.classList) event.target.classList.remove("invalid");
    if (["name", "subject", "html", "text"].indexOf(event.target.id) >= 0) previewSoon();
  });
  $("segment_id").addEventListener("change", segmentChanged);
  $("save").addEventListener("click", save);
  $("start").addEventListener("click", start);
  $("schedule").addEventListener("click", schedule);
  $("pause").addEventListener("click", function () { act("pause", t.confirm_pause, t.pause, false); });
  $("resume").addEventListener("click", function () { act("resume", null); });
  $("cancel").addEventListener("click", function () { act("cancel", t.confirm_cancel, t.cancel_campaign, true); });
  $("delete").addEventListener("click", remove);
  $("test-send").addEventListener("click", testSend);
  $("review-again").addEventListener("click", function () { review("send_again"); });
  $("review-sent").addEventListener("click", function () { review("count_as_sent"); });
  $("preview-recipient").addEventListener("change", function () { pick(choices[Number(this.value)] || null); });
  $("preview-search").addEventListener("input", hub.debounce(search, 300));
  $("show-text").addEventListener("change", function () { $("preview-text").hidden = !this.checked && !frame.hidden; });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }  // the browser asks before unsaved text is lost
  });
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") { event.preventDefault(); if (!$("save").hidden) save(); }
  });

  async function init() {
    try {
      const listed = await hub.api("GET", "/api/segments");
      segments = listed.items;
      const select = $("segment_id");
      segments.forEach(function (s) { select.appendChild(el("option", {value: String(s.id), text: s.name})); });
      if (campaignId) {
        const c = await hub.api("GET", url());
        fill(c);
        show(c);
      } else {
        show(null);
      }
      markDirty(false);
      await segmentChanged();
    } catch (err) {
      hub.failed(err);
    }
  }

  init();
})();
