// The 1C connections: each one's sync state, refreshed every second while a sync runs, and "sync now".
(function () {
  "use strict";
  const el = hub.el, a = acc.a;
  const box = document.getElementById("connections");
  const RUNNING_EVERY = 1000, IDLE_EVERY = 20000;
  let timer = null;

  function lastSuccess(c) {
    if (!c.last_success_at) return el("span", {class: "muted", text: a.never});
    return el("span", {}, [hub.when(String(c.last_success_at).replace(" ", "T")) + " ",
      el("span", {class: "muted age", text: "(" + acc.age(c.last_success_at) + ")"})]);
  }

  function lastRun(run) {
    if (!run) return el("span", {class: "muted", text: a.never});
    return el("span", {class: "last-run"}, [
      el("a", {href: "/onec/runs/" + run.id, text: a.run.number + run.id}), " ",
      acc.statusBadge(run.status), " ",
      el("span", {class: "muted", text: hub.when(String(run.started_at).replace(" ", "T")) + ", " + acc.trigger(run.trigger)}), " ",
      run.status === "running" ? null : acc.figures(run.counts, run.status),
    ]);
  }

  function progress(run) {
    return el("div", {class: "progress"}, [
      el("span", {class: "phase", text: acc.phase(run)}), " ",
      run.total ? el("progress", {max: run.total, value: run.done}) : el("progress", {}),
    ]);
  }

  function number(key, count, href) {
    const figure = el("strong", {text: String(count)});
    return el("div", {class: "number-" + key}, [
      href && count ? el("a", {href: href}, figure) : figure,
      el("span", {class: "muted", text: a[key]}),
    ]);
  }

  function panel(c) {
    const run = c.last_run;
    const button = el("button", {type: "button", class: "primary sync-now", disabled: c.running, text: a.sync_now,
      onclick: function () { start(c.name, button); }});
    return el("section", {class: "panel connection", dataset: {connection: c.name}}, [
      el("h2", {}, [c.name, el("span", {class: "badge state " + (c.running ? "warn running" : "idle"), text: c.running ? a.running : a.idle})]),
      c.running ? progress(run) : null,
      el("dl", {class: "fields"}, [
        el("dt", {text: a.url}), el("dd", {class: "url", text: c.url}),
        el("dt", {text: a.kind}), el("dd", {text: c.kind}),
        el("dt", {text: a.interval}), el("dd", {text: c.interval_minutes > 0 ? acc.fmt(a.every, {n: c.interval_minutes}) : a.manual_only}),
        el("dt", {text: a.last_success}), el("dd", {class: "last-success"}, lastSuccess(c)),
        el("dt", {text: a.last_run}), el("dd", {}, lastRun(run)),
      ]),
      run && run.status === "failed" ? el("div", {class: "last-error"}, [el("h3", {text: a.last_error}), acc.failure(run.error_kind, run.error)]) : null,
      el("div", {class: "numbers"}, [
        number("links", c.links, null),
        number("open_conflicts", c.open_conflicts, "/onec/conflicts"),
        number("open_proposals", c.open_proposals, "/onec/conflicts"),
      ]),
      el("div", {class: "toolbar"}, [button, run ? el("a", {href: "/onec/runs/" + run.id, text: a.open_log}) : null]),
    ]);
  }

  async function load() {
    clearTimeout(timer);
    let running = false;
    try {
      const data = await hub.api("GET", "/api/onec/connections");
      hub.clear(box);
      data.items.forEach(function (c) { box.appendChild(panel(c)); running = running || c.running; });
      if (!data.items.length) box.appendChild(el("p", {class: "failure", id: "no-onec", text: a.no_onec}));
    } catch (error) {
      if (acc.noOnec(box, error)) return;
      hub.failed(error);
    }
    timer = setTimeout(load, running ? RUNNING_EVERY : IDLE_EVERY);
  }

  async function start(name, button) {
    button.disabled = true;
    try {
      await hub.api("POST", "/api/onec/sync", {connection: name});
      hub.toast(a.started);
    } catch (error) {
      if (error instanceof hub.ApiError && error.status === 409) hub.toast(a.busy, true);
      else hub.failed(error);
    }
    load();
  }

  load();
})();
