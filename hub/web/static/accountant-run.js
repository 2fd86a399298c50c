// One run: its figures and error, then what it did to each counterparty and why, filterable by action.
(function () {
  "use strict";
  const el = hub.el, a = acc.a;
  const head = document.getElementById("run");
  const runId = head.dataset.runId;
  const logBox = document.getElementById("log");
  const filter = document.getElementById("action");
  const PER_PAGE = 100;
  let page = 1, timer = null;

  async function loadRun() {
    clearTimeout(timer);
    try {
      const run = await hub.api("GET", "/api/onec/runs/" + runId);
      hub.clear(head).appendChild(el("dl", {class: "fields panel"}, [
        el("dt", {text: a.run.connection}), el("dd", {text: run.connection}),
        el("dt", {text: a.run.trigger}), el("dd", {text: acc.trigger(run.trigger)}),
        el("dt", {text: a.run.started}), el("dd", {text: hub.when(String(run.started_at).replace(" ", "T"))}),
        el("dt", {text: a.run.duration}), el("dd", {text: acc.duration(run)}),
        el("dt", {text: hub.t.ui.status}), el("dd", {id: "run-status"}, [acc.statusBadge(run.status),
          run.status === "running" ? " " + acc.phase(run) : null]),
        el("dt", {text: a.run.figures}), el("dd", {id: "run-figures"}, acc.figures(run.counts, run.status)),
      ]));
      if (run.status === "failed") head.appendChild(acc.failure(run.error_kind, run.error));
      if (run.status === "running") timer = setTimeout(function () { loadRun(); loadLog(); }, 1500);
    } catch (error) {
      hub.failed(error);
    }
  }

  async function loadLog() {
    const action = filter.value ? "&action=" + encodeURIComponent(filter.value) : "";
    try {
      const data = await hub.api("GET", "/api/onec/runs/" + runId + "/log?per_page=" + PER_PAGE + "&page=" + page + action);
      hub.clear(logBox);
      if (!data.items.length) logBox.appendChild(el("p", {class: "muted", id: "log-empty", text: a.log.empty}));
      else logBox.appendChild(el("div", {class: "scroll"}, acc.logTable(data.items)));
      acc.pager(document.getElementById("pager"), data, function (p) { page = p; loadLog(); });
    } catch (error) {
      hub.failed(error);
    }
  }

  filter.addEventListener("change", function () { page = 1; loadLog(); });
  loadRun();
  loadLog();
})();
