// Conflicts side by side (the hub's value, 1C's, the last agreed one) with a choice per field, and
// the uncertain matches (the hub's card beside 1C's counterparty) to accept or reject.
(function () {
  "use strict";
  const el = hub.el, a = acc.a, c = a.conflict, p = a.proposal;
  const conflictsBox = document.getElementById("conflicts");
  const proposalsBox = document.getElementById("proposals");
  const APPLIED_POLL = 1500, APPLIED_TRIES = 60;

  // -- conflicts --------------------------------------------------------------------------------

  function groups(items) {
    const byCard = new Map();
    items.forEach(function (item) {
      const key = item.connection + "/" + item.client_id;
      if (!byCard.has(key)) byCard.set(key, []);
      byCard.get(key).push(item);
    });
    return Array.from(byCard.values());
  }

  function choiceCell(item, side, label, row) {
    const id = "c" + item.id + "-" + side;
    const radio = el("input", {type: "radio", name: "choice-" + item.id, value: side, id: id, onchange: function () {
      row.querySelectorAll("td.hub, td.onec").forEach(function (td) { td.classList.toggle("chosen", td.classList.contains(side)); });
    }});
    return el("label", {for: id}, [radio, label]);
  }

  function conflictRow(item) {
    const row = el("tr", {class: "conflict-field", dataset: {field: item.field, conflict: item.id}});
    [
      el("th", {scope: "row", text: acc.fieldName(item.field)}),
      el("td", {class: "base muted", text: acc.value(item.field, item.base_value)}),
      el("td", {class: "hub", text: acc.value(item.field, item.hub_value)}),
      el("td", {class: "onec", text: acc.value(item.field, item.onec_value)}),
      el("td", {class: "choice"}, [choiceCell(item, "hub", c.keep_hub, row), choiceCell(item, "onec", c.take_onec, row)]),
    ].forEach(function (cell) { row.appendChild(cell); });
    return row;
  }

  function header() {
    return el("thead", {}, el("tr", {}, [
      el("th", {text: c.field}), el("th", {text: c.base}), el("th", {class: "hub", text: c.hub}),
      el("th", {class: "onec", text: c.onec}), el("th", {class: "choice", text: c.choice}),
    ]));
  }

  function conflictPanel(items) {
    const first = items[0];
    const panel = el("section", {class: "panel conflict", dataset: {client: first.client_id}});
    const apply = el("button", {type: "button", class: "primary apply", text: c.apply, onclick: function () { resolve(panel, items, apply); }});
    panel.appendChild(el("h3", {}, [acc.clientLink(first.client_id, first.client_name), " ",
      el("span", {class: "muted", text: acc.fmt(c.connection, {name: first.connection})})]));
    panel.appendChild(el("table", {}, [header(), el("tbody", {}, items.map(conflictRow))]));
    panel.appendChild(el("div", {class: "actions"}, [apply]));
    return panel;
  }

  async function resolve(panel, items, button) {
    const chosen = items.map(function (item) {
      const radio = panel.querySelector("input[name='choice-" + item.id + "']:checked");
      return radio ? {item: item, choice: radio.value} : null;
    }).filter(Boolean);
    if (!chosen.length) { hub.toast(c.choose_first, true); return; }
    button.disabled = true;
    const done = [];
    try {
      for (const pick of chosen) {
        done.push(await hub.api("POST", "/api/onec/conflicts/" + pick.item.id + "/resolve", {choice: pick.choice}));
      }
    } catch (error) {
      hub.failed(error);
    }
    button.disabled = false;
    if (!done.length) return;
    hub.toast(c.saved);
    const left = items.filter(function (item) { return !done.some(function (d) { return d.id === item.id; }); });
    const decided = decidedPanel(done);
    if (left.length) { const rest = conflictPanel(left); panel.replaceWith(rest); rest.before(decided); }
    else panel.replaceWith(decided);
    watchApplied(decided, done);
  }

  function decidedPanel(resolved) {
    const first = resolved[0];
    return el("section", {class: "panel conflict decided", dataset: {client: first.client_id}}, [
      el("h3", {}, [acc.clientLink(first.client_id, first.client_name)]),
      el("table", {}, el("tbody", {}, resolved.map(function (r) {
        return el("tr", {class: "decided-field", dataset: {field: r.field, conflict: r.id}}, [
          el("th", {scope: "row", text: acc.fieldName(r.field)}),
          el("td", {class: "chosen-value", text: acc.fmt(c.chosen, {value: acc.value(r.field, r.chosen_value)})}),
          el("td", {}, el("span", {class: "badge warn state", text: c.waiting})),
        ]);
      }))),
    ]);
  }

  // The decision is carried out by the card's sync, asked for at once: shown when it is done.
  async function watchApplied(panel, resolved) {
    const waiting = new Set(resolved.map(function (r) { return r.id; }));
    for (let i = 0; i < APPLIED_TRIES && waiting.size; i++) {
      await new Promise(function (ok) { setTimeout(ok, APPLIED_POLL); });
      let applied;
      try {
        applied = await hub.api("GET", "/api/onec/conflicts?status=applied&per_page=200&client_id=" + resolved[0].client_id);
      } catch (error) { hub.failed(error); return; }
      applied.items.forEach(function (item) {
        if (!waiting.delete(item.id)) return;
        const badge = panel.querySelector("tr[data-conflict='" + item.id + "'] .state");
        badge.className = "badge good state applied";
        badge.textContent = c.applied;
      });
    }
  }

  async function loadConflicts(page) {
    try {
      const data = await hub.api("GET", "/api/onec/conflicts?status=open&per_page=200&page=" + (page || 1));
      hub.clear(conflictsBox);
      if (!data.items.length) conflictsBox.appendChild(el("p", {class: "muted", id: "no-conflicts", text: c.none}));
      groups(data.items).forEach(function (items) { conflictsBox.appendChild(conflictPanel(items)); });
      const pager = el("div", {class: "pager"});
      conflictsBox.appendChild(pager);
      acc.pager(pager, data, loadConflicts);
    } catch (error) {
      hub.clear(conflictsBox);
      hub.failed(error);
    }
  }

  // -- proposals --------------------------------------------------------------------------------

  function side(cls, title, rows) {
    return el("div", {class: cls}, [el("h3", {text: title}), el("dl", {class: "fields"}, rows)]);
  }

  function proposalPanel(item) {
    const panel = el("section", {class: "panel proposal", dataset: {proposal: item.id, client: item.client_id}});
    const decide = function (verb, message) {
      return async function () {
        panel.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        try {
          await hub.api("POST", "/api/onec/proposals/" + item.id + "/" + verb);
          hub.toast(message);
          panel.querySelector(".actions").replaceWith(el("p", {class: "ok decision", text: message}));
        } catch (error) {
          panel.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
          hub.failed(error);
        }
      };
    };
    const requisites = function (inn, kpp) { return [inn, kpp].filter(Boolean).join(" / ") || a.values.blank; };
    panel.appendChild(el("div", {class: "grid2"}, [
      side("hub", p.hub, [
        el("dt", {text: a.fields.name}), el("dd", {}, acc.clientLink(item.client_id, item.client_name)),
        el("dt", {text: a.fields.inn + " / " + a.fields.kpp}), el("dd", {class: "hub-inn", text: requisites(item.client_inn, item.client_kpp)}),
      ]),
      side("onec", p.onec, [
        el("dt", {text: a.fields.name}), el("dd", {class: "onec-name", text: item.onec_name}),
        el("dt", {text: a.fields.inn}), el("dd", {class: "onec-inn", text: item.onec_inn || a.values.blank}),
        el("dt", {text: p.ref}), el("dd", {class: "muted", text: item.ref_key}),
      ]),
    ]));
    panel.appendChild(el("p", {}, [el("strong", {text: p.why + ": "}), acc.reason(item.reason)]));
    panel.appendChild(el("div", {class: "actions"}, [
      el("button", {type: "button", class: "primary accept", text: p.accept, onclick: decide("accept", p.accepted)}),
      el("button", {type: "button", class: "reject", text: p.reject, onclick: decide("reject", p.rejected)}),
    ]));
    return panel;
  }

  async function loadProposals(page) {
    try {
      const data = await hub.api("GET", "/api/onec/proposals?status=open&per_page=50&page=" + (page || 1));
      hub.clear(proposalsBox);
      if (!data.items.length) proposalsBox.appendChild(el("p", {class: "muted", id: "no-proposals", text: p.none}));
      data.items.forEach(function (item) { proposalsBox.appendChild(proposalPanel(item)); });
      const pager = el("div", {class: "pager"});
      proposalsBox.appendChild(pager);
      acc.pager(pager, data, loadProposals);
    } catch (error) {
      hub.clear(proposalsBox);
      hub.failed(error);
    }
  }

  loadConflicts(1);
  loadProposals(1);
})();
