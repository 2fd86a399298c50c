// One counterparty's sync: find the card by name or INN, ask for its sync, and show what the sync
// did to it (or 1C's error in plain words) and the card as it is now.
(function () {
  "use strict";
  const el = hub.el, a = acc.a, k = a.card;
  const form = document.getElementById("search");
  const query = document.getElementById("q");
  const found = document.getElementById("found");
  const chosenBox = document.getElementById("chosen");
  const outcome = document.getElementById("outcome");
  const POLL = 1000, SLOW_AFTER = 8, GIVE_UP_AFTER = 300;
  let watching = 0;  // the request being watched: an older one's answer is dropped

  function requisites(card) { return [card.inn, card.kpp].filter(Boolean).join(" / "); }

  async function search(event) {
    event.preventDefault();
    const q = query.value.trim();
    if (!q) return;
    try {
      const data = await hub.api("GET", "/api/clients?per_page=20&q=" + encodeURIComponent(q));
      hub.clear(found);
      if (!data.items.length) { found.appendChild(el("p", {class: "muted", id: "nothing-found", text: k.not_found})); return; }
      found.appendChild(el("p", {class: "muted", text: acc.fmt(k.found, {n: data.total})}));
      found.appendChild(el("table", {id: "found-table"}, [
        el("thead", {}, el("tr", {}, [el("th", {text: a.fields.name}), el("th", {text: a.fields.inn + " / " + a.fields.kpp}), el("th", {})])),
        el("tbody", {}, data.items.map(function (card) {
          return el("tr", {class: "found-card", dataset: {client: card.id}}, [
            el("td", {}, acc.clientLink(card.id, card.name)),
            el("td", {text: requisites(card)}),
            el("td", {}, el("button", {type: "button", class: "choose", text: k.choose, onclick: function () { choose(card); }})),
          ]);
        })),
      ]));
    } catch (error) {
      hub.failed(error);
    }
  }

  function cardFields(card) {
    return el("dl", {class: "fields"}, [
      el("dt", {text: a.fields.name}), el("dd", {class: "card-name"}, acc.clientLink(card.id, card.name)),
      el("dt", {text: a.fields.full_name}), el("dd", {class: "card-full-name", text: card.full_name || a.values.blank}),
      el("dt", {text: a.fields.inn + " / " + a.fields.kpp}), el("dd", {class: "card-inn", text: requisites(card) || a.values.blank}),
    ]);
  }

  function choose(card) {
    chosenBox.hidden = false;
    outcome.hidden = true;
    const button = el("button", {type: "button", class: "primary", id: "sync-card", text: k.sync, onclick: function () { sync(card, button); }});
    hub.clear(chosenBox).append(cardFields(card), el("div", {class: "toolbar"}, [button]));
    history.replaceState(null, "", "/onec/card?client=" + card.id);
  }

  async function sync(card, button) {
    button.disabled = true;
    outcome.hidden = false;
    hub.clear(outcome).appendChild(el("p", {class: "muted", id: "sync-state", text: k.queued}));
    try {
      const asked = await hub.api("POST", "/api/clients/" + card.id + "/onec/sync");
      watching = asked.request_id;
      await watch(card, asked.request_id);
    } catch (error) {
      if (!acc.noOnec(outcome, error)) {
        hub.clear(outcome).appendChild(el("p", {class: "error", text: k.failed}));
        hub.failed(error);
      }
    }
    button.disabled = false;
  }

  async function watch(card, requestId) {
    for (let tick = 0; tick < GIVE_UP_AFTER; tick++) {
      await new Promise(function (ok) { setTimeout(ok, POLL); });
      if (watching !== requestId) return;
      const request = await hub.api("GET", "/api/onec/requests/" + requestId);
      if (request.status === "pending") {
        if (tick === SLOW_AFTER) document.getElementById("sync-state").textContent = k.waiting;
        continue;
      }
      await show(card, request);
      return;
    }
  }

  async function show(card, request) {
    const ok = request.status === "done";
    hub.clear(outcome).appendChild(el("h2", {id: "outcome-title", class: ok ? "ok" : "error", text: ok ? k.done : k.failed}));
    if (!ok) outcome.appendChild(acc.failure(request.error_kind, request.detail));
    const failedRun = request.runs.find(function (run) { return run.status === "failed"; });
    if (ok && failedRun) outcome.appendChild(acc.failure(failedRun.error_kind, failedRun.error));
    if (request.log.length) {
      outcome.appendChild(el("div", {class: "scroll"}, acc.logTable(request.log)));
    } else if (ok) {
      outcome.appendChild(el("p", {id: "unchanged", text: k.unchanged}));
    }
    const links = [el("a", {href: "/clients/" + card.id, text: k.open_card})];
    if (request.log.some(function (e) { return e.action === "conflict"; })) links.push(el("a", {href: "/onec/conflicts", text: k.resolve}));
    request.runs.forEach(function (run) { links.push(el("a", {href: "/onec/runs/" + run.id, text: a.open_log + " " + a.run.number + run.id})); });
    outcome.appendChild(el("div", {class: "toolbar"}, links));
    try {
      const now = await hub.api("GET", "/api/clients/" + card.id);
      outcome.append(el("h3", {text: k.now}), cardFields(now));
    } catch (error) {
      hub.failed(error);
    }
  }

  form.addEventListener("submit", search);
  const preset = new URLSearchParams(location.search).get("client");
  if (preset && /^\d+$/.test(preset)) hub.api("GET", "/api/clients/" + preset).then(choose, hub.failed);
})();
