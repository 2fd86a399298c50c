// The campaigns list: each campaign's state, how many got it, opened and clicked, at a glance.
(function () {
  "use strict";
  const el = hub.el, t = mk.t;

  function total(recipients) {
    return Object.values(recipients).reduce(function (a, b) { return a + b; }, 0) - (recipients.cancelled || 0);
  }

  function share(part, whole) {
    return whole ? mk.number(part) + " (" + mk.percent(part / whole) + ")" : mk.number(part);
  }

  function row(c) {
    const sent = c.recipients.sent || 0;
    const started = c.status !== "draft" && c.status !== "scheduled";
    return el("tr", {dataset: {id: c.id}}, [
      el("td", {}, [el("a", {href: "/campaigns/" + c.id, class: "campaign-name", text: c.name}), el("div", {class: "muted", text: c.subject})]),
      el("td", {}, mk.statusBadge(c.status)),
      el("td", {class: "num sent", text: started ? mk.format(t.sent_of, {sent: mk.number(sent), total: mk.number(total(c.recipients))}) : "—"}),
      el("td", {class: "num opened", text: started ? share(c.opened, sent) : "—"}),
      el("td", {class: "num clicked", text: started ? share(c.clicked, sent) : "—"}),
      el("td", {text: hub.when(c.created_at)}),
      el("td", {text: c.started_at ? hub.when(c.started_at) : c.scheduled_at ? t.scheduled_for + " " + hub.when(c.scheduled_at) : "—"}),
      el("td", {}, started ? el("a", {href: "/campaigns/" + c.id + "/stats", class: "stats-link", text: t.stats}) : ""),
    ]);
  }

  async function load() {
    const body = hub.clear(document.querySelector("#campaigns tbody"));
    try {
      const data = await hub.api("GET", "/api/campaigns");
      data.items.forEach(function (c) { body.appendChild(row(c)); });
      document.getElementById("no-campaigns").hidden = data.items.length > 0;
      document.getElementById("campaigns").hidden = data.items.length === 0;
    } catch (err) {
      hub.failed(err);
    }
  }

  load();
})();
