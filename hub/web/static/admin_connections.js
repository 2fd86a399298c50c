// /admin/connections: the configured items (read-only) with a test button each, the outgoing
// webhook subscriptions (create, change, delete, test, deliveries and replay) and the
// incoming hook tokens (make one, shown once; revoke).
(function () {
  "use strict";
  const hub = window.hub, admin = window.admin, t = hub.t, a = hub.t.adm;
  const el = hub.el;
  const GROUPS = [
    ["pbx", ["pbx"]],
    ["mail", ["mailbox", "mailbox_smtp"]],
    ["campaigns", ["campaign_smtp", "bounce_mailbox", "bounce_smtp"]],
    ["onec", ["onec"]],
  ];

  // -- the test button, for a configured item and for a webhook alike ----------------------

  function showVerdict(node, verdict) {
    hub.clear(node);
    node.className = "verdict " + (verdict.ok ? "ok" : "error");
    node.appendChild(el("span", {class: "why", text: verdict.ok ? "✓ " + a.test_ok : "✗ " + admin.label(a.reasons, verdict.reason || "error")}));
    node.appendChild(el("span", {class: "detail", text: verdict.detail}));
  }

  function testButton(kind, name, verdictNode) {
    const button = el("button", {type: "button", class: "test", text: a.test});
    button.addEventListener("click", async function () {
      button.disabled = true;
      hub.clear(verdictNode);
      verdictNode.className = "verdict muted";
      verdictNode.textContent = a.testing;
      try {
        showVerdict(verdictNode, await hub.api("POST", "/api/connections/test", {kind: kind, name: name}));
      } catch (err) {
        showVerdict(verdictNode, {ok: false, reason: "error", detail: err.message});
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  // -- configured items --------------------------------------------------------------------

  function shownValue(value) {
    if (Array.isArray(value)) return value.join(", ");
    if (value === null || value === undefined || value === "") return "—";
    return String(value);
  }

  function card(item) {
    const fields = el("dl", {class: "fields"});
    Object.entries(item.settings).forEach(function ([key, value]) {
      fields.appendChild(el("dt", {text: admin.label(a.fields, key)}));
      fields.appendChild(el("dd", {text: shownValue(value)}));
    });
    const verdict = el("p", {class: "verdict", "aria-live": "polite"});
    return el("div", {class: "panel item", dataset: {kind: item.kind, name: item.name}}, [
      el("h3", {}, [admin.label(a.kinds, item.kind) + " ", el("code", {text: item.name})]),
      fields,
      el("p", {class: "muted"}, [a.configured_in + ": ", el("code", {text: item.section}), " " + a.env_vars + " ", el("code", {text: item.env + "*"})]),
      testButton(item.kind, item.name, verdict),
      verdict,
    ]);
  }

  async function loadConfigured() {
    const box = document.getElementById("configured");
    try {
      const data = await hub.api("GET", "/api/connections");
      hub.clear(box);
      GROUPS.forEach(function ([group, kinds]) {
        const items = data.items.filter(function (item) { return kinds.includes(item.kind); });
        box.appendChild(el("h2", {text: a.groups[group]}));
        box.appendChild(items.length ? el("div", {class: "cards", id: "group-" + group}, items.map(card))
                                     : el("p", {class: "muted", text: a.none_configured}));
      });
    } catch (err) {
      hub.clear(box).appendChild(el("p", {class: "error", text: t.ui.error + ": " + err.message}));
    }
  }

  // -- outgoing webhooks -------------------------------------------------------------------

  const wForm = document.getElementById("webhook-form");
  const wBody = document.querySelector("#webhooks-table tbody");
  const wSecret = document.getElementById("webhook-secret");
  let eventTypes = [];
  let editing = null;

  function eventBoxes(chosen) {
    const box = hub.clear(document.getElementById("w-events"));
    eventTypes.forEach(function (type) {
      box.appendChild(el("label", {class: "check"}, [el("input", {type: "checkbox", name: "event_types", value: type, checked: chosen.includes(type)}), " " + type]));
    });
  }

  function webhookRow(subscription) {
    const verdict = el("p", {class: "verdict", "aria-live": "polite"});
    return el("tr", {class: subscription.active ? "" : "off", dataset: {id: subscription.id}}, [
      el("td", {class: "break"}, [subscription.url, subscription.description ? el("div", {class: "muted", text: subscription.description}) : null]),
      el("td", {text: subscription.event_types.length ? subscription.event_types.join(", ") : a.all_events}),
      el("td", {}, el("span", {class: "badge " + (subscription.active ? "good" : "bad"), text: subscription.active ? a.active : a.inactive})),
      el("td", {class: "verdict-cell"}, [testButton("webhook", String(subscription.id), verdict), verdict]),
      el("td", {class: "actions"}, [
        el("button", {type: "button", class: "edit", text: t.ui.edit, onclick: function () { editWebhook(subscription); }}),
        el("button", {type: "button", class: "deliveries", text: a.deliveries, onclick: function () { showDeliveries(subscription); }}),
        el("button", {type: "button", class: "danger", text: t.ui.delete, onclick: function () { deleteWebhook(subscription); }}),
      ]),
    ]);
  }

  async function loadWebhooks() {
    try {
      const data = await hub.api("GET", "/api/webhooks");
      eventTypes = data.event_types;
      if (!editing) eventBoxes([]);
      hub.clear(wBody);
      if (!data.items.length) wBody.appendChild(el("tr", {}, el("td", {colspan: 5, class: "muted", text: a.no_webhooks})));
      data.items.forEach(function (s) { wBody.appendChild(webhookRow(s)); });
    } catch (err) { hub.failed(err); }
  }

  function editWebhook(subscription) {
    editing = subscription;
    admin.clearErrors(wForm);
    wSecret.hidden = true;
    document.getElementById("webhook-form-title").textContent = a.edit_webhook;
    document.getElementById("w-url").value = subscription.url;
    document.getElementById("w-description").value = subscription.description;
    document.getElementById("w-active").checked = subscription.active;
    document.getElementById("w-active-row").hidden = false;
    eventBoxes(subscription.event_types);
    document.getElementById("webhook-save").textContent = t.ui.save;
    document.getElementById("webhook-cancel").hidden = false;
    wForm.scrollIntoView({block: "start"});
  }

  function resetWebhookForm() {
    editing = null;
    wForm.reset();
    admin.clearErrors(wForm);
    document.getElementById("webhook-form-title").textContent = a.new_webhook;
    document.getElementById("w-active-row").hidden = true;
    eventBoxes([]);
    document.getElementById("webhook-save").textContent = t.ui.create;
    document.getElementById("webhook-cancel").hidden = true;
  }

  wForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const values = {
      url: document.getElementById("w-url").value.trim(),
      description: document.getElementById("w-description").value.trim(),
      event_types: Array.from(wForm.querySelectorAll('input[name="event_types"]:checked')).map(function (box) { return box.value; }),
    };
    try {
      if (editing) {
        values.active = document.getElementById("w-active").checked;
        await hub.api("PATCH", "/api/webhooks/" + editing.id, values);
        hub.toast(t.ui.saved);
      } else {
        const created = await hub.api("POST", "/api/webhooks", values);
        hub.clear(wSecret).append(a.secret_once + " ", el("code", {id: "webhook-secret-value", text: created.secret}));
        wSecret.hidden = false;
      }
      resetWebhookForm();
      await loadWebhooks();
    } catch (err) {
      admin.showErrors(wForm, err, null, null);
    }
  });
  document.getElementById("webhook-cancel").addEventListener("click", resetWebhookForm);

  async function deleteWebhook(subscription) {
    if (!confirm(t.ui.confirm + " " + subscription.url)) return;
    try {
      await hub.api("DELETE", "/api/webhooks/" + subscription.id);
      hub.toast(a.deleted);
      if (editing && editing.id === subscription.id) resetWebhookForm();
      document.getElementById("deliveries").hidden = true;
      await loadWebhooks();
    } catch (err) { hub.failed(err); }
  }

  async function showDeliveries(subscription) {
    const panel = document.getElementById("deliveries");
    const body = hub.clear(document.getElementById("deliveries-body"));
    document.getElementById("deliveries-url").textContent = subscription.url;
    panel.hidden = false;
    try {
      const data = await hub.api("GET", "/api/webhooks/" + subscription.id + "/deliveries");
      if (!data.items.length) body.appendChild(el("tr", {}, el("td", {colspan: 6, class: "muted", text: a.no_deliveries})));
      data.items.forEach(function (d) {
        const answer = [d.last_status ? "HTTP " + d.last_status : "", d.last_error || d.last_response || ""].filter(Boolean).join(": ");
        const good = d.status === "delivered";
        body.appendChild(el("tr", {}, [
          el("td", {text: hub.when(d.delivered_at || d.next_attempt_at)}),
          el("td", {text: d.type}),
          el("td", {}, el("span", {class: "badge " + (good ? "good" : d.status === "dead" ? "bad" : "warn"), text: admin.label(a.delivery_status, d.status)})),
          el("td", {text: d.attempts}),
          el("td", {class: "break", text: answer}),
          el("td", {}, good ? null : el("button", {type: "button", text: a.replay, onclick: function () { replay(d, subscription); }})),
        ]));
      });
      panel.scrollIntoView({block: "nearest"});
    } catch (err) { hub.failed(err); }
  }

  async function replay(delivery, subscription) {
    try {
      await hub.api("POST", "/api/webhooks/deliveries/" + delivery.id + "/replay");
      hub.toast(a.replayed);
      await showDeliveries(subscription);
    } catch (err) { hub.failed(err); }
  }
  document.getElementById("deliveries-close").addEventListener("click", function () { document.getElementById("deliveries").hidden = true; });

  // -- incoming hook tokens ----------------------------------------------------------------

  const hForm = document.getElementById("hook-form");
  const hBody = document.querySelector("#hooks-table tbody");
  const hToken = document.getElementById("hook-token");

  async function loadHooks() {
    try {
      const data = await hub.api("GET", "/api/hooks");
      hub.clear(hBody);
      if (!data.items.length) hBody.appendChild(el("tr", {}, el("td", {colspan: 6, class: "muted", text: a.no_hooks})));
      data.items.forEach(function (hook) {
        const revoked = Boolean(hook.revoked_at);
        hBody.appendChild(el("tr", {class: revoked ? "off" : "", dataset: {name: hook.name}}, [
          el("td", {text: hook.name}),
          el("td", {text: hook.kinds.map(function (k) { return admin.label(a.hook_kind, k); }).join(", ")}),
          el("td", {text: hub.when(hook.created_at)}),
          el("td", {text: hook.last_used_at ? hub.when(hook.last_used_at) : a.never}),
          el("td", {}, el("span", {class: "badge " + (revoked ? "bad" : "good"), text: revoked ? a.revoked + " " + hub.when(hook.revoked_at) : a.active})),
          el("td", {}, revoked ? null : el("button", {type: "button", class: "danger", text: a.revoke, onclick: function () { revoke(hook); }})),
        ]));
      });
    } catch (err) { hub.failed(err); }
  }

  async function revoke(hook) {
    if (!confirm(t.ui.confirm + " " + hook.name)) return;
    try {
      await hub.api("DELETE", "/api/hooks/" + hook.id);
      await loadHooks();
    } catch (err) { hub.failed(err); }
  }

  hForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const values = {
      name: document.getElementById("h-name").value.trim(),
      kinds: Array.from(hForm.querySelectorAll('input[name="kinds"]:checked')).map(function (box) { return box.value; }),
    };
    try {
      const made = await hub.api("POST", "/api/hooks", values);
      hub.clear(hToken).append(a.token_once + " ", el("code", {id: "hook-token-value", text: made.token}));
      hToken.hidden = false;
      hForm.reset();
      admin.clearErrors(hForm);
      await loadHooks();
    } catch (err) {
      admin.showErrors(hForm, err, null, null);
    }
  });

  loadConfigured();
  loadWebhooks();
  loadHooks();
})();
