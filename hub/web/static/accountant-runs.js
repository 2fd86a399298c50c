// The sync history: runs newest first, a page at a time; a run's row opens its log.
(function () {
  "use strict";
  const el = hub.el, a = acc.a;
  const box = document.getElementById("runs");
  const PER_PAGE = 20;
  let timer = null;

  function row(run) {
    return el("tr", {class: "run clickable", dataset: {run: run.id}, onclick: function (event) {
      if (event.target.tagName !== "A") location.href = "/onec/runs/" + run.id;
    }}, [
      el("td", {}, el("a", {href: "/onec/runs/" + run.id, text: String(run.id)})),
      el("td", {text: run.connection}),
      el("td", {text: acc.trigger(run.trigger)}),
      el("td", {class: "when", text: hub.when(String(run.started_at).replace(" ", "T"))}),
      el("td", {text: acc.duration(run)}),
      el("td", {}, [acc.statusBadge(run.status), run.status === "running" ? el("div", {class: "muted", text: acc.phase(run)}) : null]),
      el("td", {}, [acc.figures(run.counts, run.status), run.status === "failed" ? acc.failure(run.error_kind, run.error) : null]),
    ]);
  }

  async function load(page) {
    clearTimeout(timer);
    try {
      const data = await hub.api("GET", "/api/onec/runs?per_page=" + PER_PAGE + "&page=" + page);
      hub.clear(box);
      if (!data.items.length) {
        box.appendChild(el("p", {class: "muted", id: "no-runs", text: a.run.empty}));
      } else {
        box.appendChild(el("table", {id: "runs-table"}, [
          el("thead", {}, el("tr", {}, [a.run.number, a.run.connection, a.run.trigger, a.run.started, a.run.duration,
            hub.t.ui.status, a.run.figures].map(function (text) { return el("th", {text: text}); }))),
          el("tbody", {}, data.items.map(row)),
        ]));
      }
      acc.pager(document.getElementById("pager"), data, load);
      if (data.items.some(function (run) { return run.status === "running"; })) timer = setTimeout(function () { load(page); }, 1500);
    } catch (error) {
      hub.failed(error);
    }
  }

  load(1);
})();
