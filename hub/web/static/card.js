// The client card: its fields, contacts and 1C links on the left; one timeline of calls,
// e-mails, mailings, notes and 1C documents on the right; edit, note, call, write, sync.
(function () {
  "use strict";
  const {t, el, api, clear, toast, failed, when} = window.hub;
  const c = t.card;
  const root = document.getElementById("card-page");
  const data = JSON.parse(document.getElementById("card-data").textContent);
  const can = data.abilities;
  const owners = new Map(data.owners.map(function (o) { return [o.id, o.name]; }));
  const $ = function (id) { return document.getElementById(id); };
  let clientId = Number(root.dataset.clientId);
  let client = null;
  let items = [];
  let nextBefore = null;
  let kind = "all";

  // -- the card ------------------------------------------------------------------------------

  async function load() {
    client = await api("GET", "/api/clients/" + clientId);
    document.title = client.name + " · hub";
    showCard();
    if (can.edit) fillForm();
  }

  function personName(p) { return [p.last_name, p.first_name, p.middle_name].filter(Boolean).join(" "); }

  function phoneList(phones, contact) {
    return el("ul", {class: "phones"}, phones.map(function (p) {
      return el("li", {}, [
        el("span", {class: "phone", text: p.e164 || p.number}),
        p.label ? el("span", {class: "muted", text: " " + p.label}) : null,
        can.call ? el("button", {type: "button", class: "call", text: c.call, onclick: function () { call(p.e164 || p.number, contact); }}) : null,
      ]);
    }));
  }

  function emailList(emails, contact) {
    return el("ul", {class: "emails"}, emails.map(function (e) {
      return el("li", {}, [
        el("span", {text: e.address}),
        can.mail ? el("button", {type: "button", class: "write", text: "✉", title: c.write, onclick: function () { compose(e.address, null, contact); }}) : null,
      ]);
    }));
  }

  function showCard() {
    $("client-name").textContent = client.name;
    clear($("client-badges")).append(
      el("span", {class: "badge", text: c.kind[client.kind] || client.kind}),
      el("span", {class: "badge " + (client.status === "active" ? "good" : ""), id: "client-status", text: c.status[client.status] || client.status}),
      ...client.tags.map(function (tag) { return el("span", {class: "badge tag", text: tag}); })
    );
    const f = c.fields;
    const rows = [
      [f.full_name, client.full_name],
      [f.inn, client.inn, "client-inn"],
      [f.kpp, client.kpp],
      [f.ogrn, client.ogrn],
      [f.owner, client.owner_id ? owners.get(client.owner_id) || "#" + client.owner_id : ""],
      [f.website, client.website],
      [f.address, client.addresses.map(function (a) { return a.text; }).join("; ")],
    ];
    Object.entries(client.custom_fields).forEach(function ([key, value]) { rows.push([key, String(value)]); });
    const dl = clear($("client-fields"));
    rows.forEach(function ([label, value, id]) {
      if (!value) return;
      dl.append(el("dt", {text: label}), el("dd", {id: id, text: value}));
    });
    if (client.phones.length) dl.append(el("dt", {text: c.columns.phones}), el("dd", {}, phoneList(client.phones, null)));
    if (client.emails.length) dl.append(el("dt", {text: c.columns.emails}), el("dd", {}, emailList(client.emails, null)));
    const contacts = clear($("client-contacts"));
    client.contacts.forEach(function (p) {
      contacts.append(el("div", {class: "contact"}, [
        el("strong", {class: "contact-name", text: personName(p)}),
        p.position ? el("span", {class: "muted", text: " — " + p.position}) : null,
        phoneList(p.phones, p),
        emailList(p.emails, p),
        p.note ? el("p", {class: "muted", text: p.note}) : null,
      ]));
    });
    if (!client.contacts.length) contacts.append(el("p", {class: "muted", text: t.ui.empty}));
  }

  // -- editing -------------------------------------------------------------------------------

  const lines = function (text) { return text.split("\n").map(function (s) { return s.trim(); }).filter(Boolean); };

  function phonesFrom(text, old) {
    return lines(text).map(function (number) {
      const kept = (old || []).find(function (p) { return p.number === number || p.e164 === number; });
      return {number: number, label: kept ? kept.label : ""};
    });
  }

  function emailsFrom(text, old) {
    return lines(text).map(function (address) {
      const kept = (old || []).find(function (e) { return e.address === address; });
      return {address: address, label: kept ? kept.label : ""};
    });
  }

  function contactForm(p) {
    const box = el("fieldset", {class: "contact-form panel", dataset: {id: p.id || ""}});
    const input = function (name, value) {
      return el("div", {}, [el("label", {text: c.fields[name]}), el("input", {name: name, value: value || "", style: "width:100%"})]);
    };
    box.append(el("div", {class: "edit-grid"}, [
      input("last_name", p.last_name), input("first_name", p.first_name), input("middle_name", p.middle_name),
      input("position", p.position),
      el("div", {}, [el("label", {text: c.fields.phones}), el("textarea", {name: "phones"}, (p.phones || []).map(function (x) { return x.number; }).join("\n"))]),
      el("div", {}, [el("label", {text: c.fields.emails}), el("textarea", {name: "emails"}, (p.emails || []).map(function (x) { return x.address; }).join("\n"))]),
    ]));
    box.append(el("button", {type: "button", class: "danger", text: c.remove_contact, onclick: function () { box.remove(); }}));
    box.contact = p;
    return box;
  }

  function fillForm() {
    const src = client || {name: data.preset.name || "", kind: "legal_entity", status: "active", tags: [], phones: data.preset.phone ? [{number: data.preset.phone}] : [], emails: [], addresses: [], custom_fields: {}, contacts: []};
    $("f-name").value = src.name || "";
    $("f-full_name").value = src.full_name || "";
    $("f-kind").value = src.kind;
    $("f-status").value = src.status;
    ["inn", "kpp", "ogrn", "website"].forEach(function (k) { $("f-" + k).value = src[k] || ""; });
    $("f-owner_id").value = src.owner_id || "";
    $("f-tags").value = src.tags.join(", ");
    $("f-phones").value = src.phones.map(function (p) { return p.number; }).join("\n");
    $("f-emails").value = src.emails.map(function (e) { return e.address; }).join("\n");
    const legal = src.addresses.find(function (a) { return a.kind === "legal"; });
    $("f-address").value = legal ? legal.text : "";
    $("f-custom_fields").value = Object.entries(src.custom_fields).map(function ([k, v]) { return k + ": " + v; }).join("\n");
    const contacts = clear($("contact-forms"));
    src.contacts.forEach(function (p) { contacts.append(contactForm(p)); });
    clearErrors();
  }

  function readForm() {
    const v = function (name) { return $("f-" + name).value.trim(); };
    const old = client || {phones: [], emails: [], addresses: []};
    const custom = {};
    lines($("f-custom_fields").value).forEach(function (line) {
      const at = line.indexOf(":");
      if (at > 0) custom[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    });
    const addresses = old.addresses.filter(function (a) { return a.kind !== "legal"; }).map(function (a) { return {kind: a.kind, text: a.text}; });
    if (v("address")) addresses.unshift({kind: "legal", text: v("address")});
    const contacts = Array.from(document.querySelectorAll("#contact-forms .contact-form")).map(function (box) {
      const get = function (name) { return box.querySelector("[name=" + name + "]").value.trim(); };
      const was = box.contact || {};
      const out = {first_name: get("first_name"), middle_name: get("middle_name"), last_name: get("last_name"), position: get("position"),
        note: was.note || "", phones: phonesFrom(get("phones"), was.phones), emails: emailsFrom(get("emails"), was.emails)};
      if (was.id) out.id = was.id;
      return out;
    });
    return {
      name: v("name"), full_name: v("full_name"), kind: v("kind"), status: v("status"),
      inn: v("inn") || null, kpp: v("kpp") || null, ogrn: v("ogrn") || null, website: v("website") || null,
      owner_id: v("owner_id") ? Number(v("owner_id")) : null,
      tags: v("tags").split(",").map(function (s) { return s.trim(); }).filter(Boolean),
      phones: phonesFrom($("f-phones").value, old.phones),
      emails: emailsFrom($("f-emails").value, old.emails),
      addresses: addresses, custom_fields: custom, contacts: contacts,
    };
  }

  function clearErrors() {
    document.querySelectorAll("#card-form .field-error").forEach(function (node) { node.textContent = ""; });
  }

  // The API names a field ("inn", "body.inn", "contacts.0.first_name") or says "inn: ..." in a
  // whole-card rule; the message goes under that field, else above the form.
  function showErrors(error) {
    clearErrors();
    const details = (error.body && error.body.details) || [];
    let placed = false;
    details.forEach(function (d) {
      let field = String(d.field || "").replace(/^body\./, "").split(".")[0];
      let message = d.message;
      const named = /^(?:Value error, )?(\w+): (.*)$/.exec(message);
      if ((!field || field === "(body)") && named) { field = named[1]; message = named[2]; }
      const slot = document.querySelector('#card-form .field-error[data-for="' + field + '"]');
      if (slot) { slot.textContent = message; placed = true; }
    });
    if (!placed) $("form-error").textContent = error.message + (details.length ? ": " + details.map(function (d) { return d.message; }).join("; ") : "");
  }

  async function save(event) {
    event.preventDefault();
    const body = readForm();
    try {
      if (!clientId) {
        const made = await api("POST", "/api/clients", body);
        toast(c.created);
        location.href = "/clients/" + made.id;
        return;
      }
      body.version = client.version;
      client = await api("PATCH", "/api/clients/" + clientId, body);
      toast(t.ui.saved);
      showCard();
      fillForm();
      editing(false);
      loadTimeline(false);
    } catch (error) {
      if (error.status === 409 && clientId) {
        await load();
        $("form-error").textContent = c.conflict;
        return;
      }
      if (error.status === 422) showErrors(error); else failed(error);
    }
  }

  function editing(on) {
    $("card-form").hidden = !on;
    $("card-view").hidden = on;
    if (on) $("f-name").focus();
  }

  // -- actions -------------------------------------------------------------------------------

  async function call(number, contact) {
    toast(c.calling);
    try {
      const placed = await api("POST", "/api/calls/originate", {number: number, client_id: clientId, contact_id: contact ? contact.id : null});
      toast(c.call_placed + (placed.reason ? ": " + placed.reason : ""));
    } catch (error) { failed(error); }
  }

  function compose(address, replyTo, subject) {
    const form = $("compose");
    if (!form) return;
    form.hidden = false;
    $("compose-to").value = address || (client.emails[0] || {}).address || "";
    $("compose-reply").value = replyTo || "";
    $("compose-subject").value = typeof subject === "string" ? subject : "";
    $("compose-error").textContent = "";
    (address ? $("compose-subject") : $("compose-to")).focus();
  }

  async function send(event) {
    event.preventDefault();
    const reply = $("compose-reply").value;
    const body = {
      client_id: clientId,
      to: $("compose-to").value.split(/[,;]/).map(function (s) { return s.trim(); }).filter(Boolean).map(function (a) { return {address: a}; }),
      subject: $("compose-subject").value || null,
      text: $("compose-text").value,
      reply_to: reply ? Number(reply) : null,
    };
    $("compose-send").disabled = true;
    try {
      const sent = await api("POST", "/api/messages", body);
      const refused = Object.entries(sent.refused || {});
      toast(c.compose.sent + (refused.length ? " " + c.compose.refused + " " + refused.map(function (r) { return r.join(" — "); }).join(", ") : ""), refused.length > 0);
      $("compose").hidden = true;
      $("compose-text").value = "";
      loadTimeline(false);
    } catch (error) {
      $("compose-error").textContent = error.message + (error.body.details ? ": " + error.body.details.map(function (d) { return d.field + " " + d.message; }).join("; ") : "");
    } finally { $("compose-send").disabled = false; }
  }

  async function addNote(event) {
    event.preventDefault();
    const text = $("note-text").value.trim();
    if (!text) return;
    try {
      await api("POST", "/api/clients/" + clientId + "/notes", {text: text});
      $("note-text").value = "";
      toast(c.note_saved);
      loadTimeline(false);
    } catch (error) { failed(error); }
  }

  async function loadOnec() {
    try {
      const found = await api("GET", "/api/clients/" + clientId + "/onec");
      const body = clear($("onec-body"));
      $("onec-panel").hidden = false;
      if (!found.links.length) body.append(el("p", {class: "muted", text: c.onec.not_linked}));
      found.links.forEach(function (link) {
        body.append(el("p", {}, [el("span", {class: "badge " + (link.state === "linked" ? "good" : "warn"), text: link.connection + ": " + link.state}),
          " ", el("span", {class: "muted", text: (link.detail || "") + " " + when(link.synced_at)})]));
      });
      const docs = Object.entries(found.documents || {}).flatMap(function ([conn, list]) { return list.map(function (d) { return Object.assign({connection: conn}, d); }); });
      if (docs.length) {
        body.append(el("h4", {text: c.onec.documents}), el("table", {id: "onec-documents"}, docs.slice(0, 10).map(function (d) {
          return el("tr", {}, [el("td", {text: (d.date || "").slice(0, 10)}), el("td", {text: documentTitle(d)})]);
        })));
      }
    } catch (error) {
      if (error.status !== 503) failed(error);  // 503: no 1C connection is configured
    }
  }

  async function syncOnec() {
    const button = $("sync-onec");
    button.disabled = true;
    try {
      const queued = await api("POST", "/api/clients/" + clientId + "/onec/sync");
      for (let i = 0; i < 60; i++) {
        const state = await api("GET", "/api/onec/requests/" + queued.request_id);
        if (state.done_at) {
          toast(state.detail && state.error_kind ? state.detail : c.synced, Boolean(state.error_kind));
          break;
        }
        await new Promise(function (resolve) { setTimeout(resolve, 1000); });
      }
      await load();
      loadOnec();
      loadTimeline(false);
    } catch (error) { failed(error); } finally { button.disabled = false; }
  }

  // -- the timeline --------------------------------------------------------------------------

  function seconds(n) { return n >= 60 ? Math.floor(n / 60) + ":" + String(n % 60).padStart(2, "0") : n + " " + c.seconds; }

  function callItem(call, li) {
    if (call.status === "missed") li.classList.add("missed");
    const who = call.direction === "inbound" ? call.caller : call.callee;
    li.append(el("div", {class: "meta", text: [c.direction[call.direction], c.call_status[call.status] || call.status, who,
      call.final_operator ? c.operator + " " + call.final_operator : "", call.talk_seconds ? c.talk + " " + seconds(call.talk_seconds) : ""].filter(Boolean).join(" · ")}));
    if (call.notes) li.append(el("p", {class: "call-notes", text: c.call_notes + ": " + call.notes}));
    if (call.recording_file && can.listen) {
      li.append(el("audio", {controls: true, preload: "none", src: "/api/calls/" + call.id + "/recording", title: c.recording}));
    }
  }

  async function openMessage(id, li, button) {
    const shown = li.querySelector(".message-body");
    if (shown) { shown.remove(); button.textContent = c.show_message; return; }
    try {
      const message = await api("GET", "/api/messages/" + id);
      const box = el("div", {class: "message-body"});
      if (message.html) {
        // Sanitised by the hub, and still shown in a frame that may run no script.
        box.append(el("iframe", {sandbox: "allow-same-origin allow-popups allow-popups-to-escape-sandbox", title: message.subject,
          srcdoc: '<base target="_blank">' + message.html}));
      } else {
        box.append(el("div", {class: "text-body", text: message.text}));
      }
      if (message.attachments && message.attachments.length) {
        box.append(el("p", {}, [c.attachments + ": "].concat(message.attachments.map(function (a) {
          return a.url ? el("a", {href: a.url, text: a.filename + " ", download: a.filename}) : el("span", {class: "muted", text: a.filename + " "});
        }))));
      }
      if (can.mail) {
        box.append(el("button", {type: "button", text: c.reply, onclick: function () { compose(message.from.address, message.id, null); }}));
      }
      li.append(box);
      button.textContent = c.hide_message;
    } catch (error) { failed(error); }
  }

  function documentTitle(d) {
    const amount = d.amount === null || d.amount === undefined ? "" : ": " + Number(d.amount).toFixed(2);
    return (c.onec.types[d.type] || String(d.type).replace(/^Document_/, "")) + " " + d.number + amount;
  }

  function itemNode(item) {
    const d = item.data;
    const title = item.kind === "onec" ? documentTitle(d) : (c.titles[item.title] || item.title);
    const li = el("li", {class: item.kind, dataset: {id: item.id, kind: item.kind}}, [
      el("span", {class: "meta", text: when(item.at) + " "}),
      el("span", {class: "title", text: title}),
    ]);
    if (item.kind === "call") callItem(d, li);
    else if (item.kind === "note") li.append(el("p", {class: "note-text", text: d.text}), el("div", {class: "meta", text: d.author}));
    else if (item.kind === "email") {
      li.append(el("div", {}, [el("strong", {class: "subject", text: d.subject || "—"}), el("span", {class: "muted", text: " " + c.from + " " + (d.from || "")})]),
        el("div", {class: "muted snippet", text: d.snippet}));
      const button = el("button", {type: "button", class: "open-message", text: c.show_message});
      button.addEventListener("click", function () { openMessage(d.id, li, button); });
      li.append(button);
    } else if (item.kind === "mailing") {
      li.append(el("div", {class: "meta", text: [d.campaign, d.address, d.url, d.machine ? c.machine : ""].filter(Boolean).join(" · ")}));
    } else if (item.kind === "card") {
      li.append(el("div", {class: "meta", text: d.by || ""}));
    } else if (item.kind === "onec") {
      li.append(el("div", {class: "meta", text: d.connection || ""}));
    }
    return li;
  }

  function showTimeline() {
    const list = clear($("timeline"));
    const shown = items.filter(function (item) { return kind === "all" || item.kind === kind; });
    shown.forEach(function (item) { list.append(itemNode(item)); });
    if (!shown.length) list.append(el("li", {class: "muted", text: t.ui.empty}));
    $("more").hidden = !nextBefore;
  }

  async function loadTimeline(more) {
    const params = new URLSearchParams({limit: 50});
    if (more && nextBefore) params.set("before", nextBefore);
    try {
      const page = await api("GET", "/api/clients/" + clientId + "/timeline?" + params);
      items = more ? items.concat(page.items) : page.items;
      nextBefore = page.next_before;
      showTimeline();
    } catch (error) { failed(error); }
  }

  // -- wiring --------------------------------------------------------------------------------

  function typing(target) { return target.closest("input, textarea, select, [contenteditable]"); }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target) || !clientId) return;
    if (event.key === "e" && can.edit) { event.preventDefault(); editing(true); }
    else if (event.key === "n" && can.note) { event.preventDefault(); $("note-text").focus(); }
    else if (event.key === "w" && can.mail) { event.preventDefault(); compose(null, null, null); }
    else if (event.key === "/") { event.preventDefault(); location.href = "/clients"; }
  });

  $("filters").addEventListener("click", function (event) {
    const button = event.target.closest("button[data-kind]");
    if (!button) return;
    kind = button.dataset.kind;
    document.querySelectorAll("#filters button").forEach(function (b) { b.classList.toggle("on", b === button); });
    showTimeline();
  });
  $("more").addEventListener("click", function () { loadTimeline(true); });
  if (can.edit) {
    $("card-form").addEventListener("submit", save);
    $("add-contact").addEventListener("click", function () { $("contact-forms").append(contactForm({})); });
    if ($("edit-card")) $("edit-card").addEventListener("click", function () { editing(true); });
    if ($("cancel-edit")) $("cancel-edit").addEventListener("click", function () { fillForm(); editing(false); });
  }
  if (can.note) $("note-form").addEventListener("submit", addNote);
  if (can.mail) {
    $("compose").addEventListener("submit", send);
    $("compose-cancel").addEventListener("click", function () { $("compose").hidden = true; });
    $("write-mail").addEventListener("click", function () { compose(null, null, null); });
  }
  if (can.sync && $("sync-onec")) $("sync-onec").addEventListener("click", syncOnec);

  if (clientId) {
    load().then(function () { loadTimeline(false); loadOnec(); }).catch(failed);
  } else if (can.edit) {
    fillForm();
    $("f-name").focus();
  }
})();
