// What the accountant's 1C pages share: the texts for what the API only codes (phases, actions,
// failure kinds, fields), ages, a run's figures, a failure explained in plain words, paging.
(function () {
  "use strict";
  const a = hub.t.acc;
  const el = hub.el;

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) { return key in values ? String(values[key]) : whole; });
  }

  // The API writes datetimes as "2026-12-03 09:30:02.123+00:00": ISO with a space.
  function date(iso) { return iso ? new Date(String(iso).replace(" ", "T")) : null; }

  function age(iso) {
    const d = date(iso);
    if (!d || isNaN(d)) return "";
    const minutes = Math.floor((Date.now() - d.getTime()) / 60000);
    if (minutes < 1) return a.ago.now;
    if (minutes < 60) return fmt(a.ago.minutes, {n: minutes});
    if (minutes < 48 * 60) return fmt(a.ago.hours, {n: Math.floor(minutes / 60)});
    return fmt(a.ago.days, {n: Math.floor(minutes / 1440)});
  }

  function duration(run) {
    const start = date(run.started_at), end = run.finished_at ? date(run.finished_at) : new Date();
    const seconds = Math.max(0, Math.round((end - start) / 1000));
    if (seconds < 60) return fmt(a.run.seconds, {n: seconds});
    return fmt(a.run.minutes, {m: Math.floor(seconds / 60), s: seconds % 60});
  }

  function statusBadge(status) {
    const tone = {done: "good", failed: "bad", running: "warn", pending: "warn"}[status] || "";
    return el("span", {class: "badge " + tone + " status-" + status, text: a.statuses[status] || status});
  }

  function trigger(value) {
    const [kind, who] = String(value).split(":");
    const said = a.triggers[kind] || value;
    return who ? said + " (" + who + ")" : said;
  }

  function phase(run) {
    const said = a.phases[run.phase] || run.phase;
    return run.total ? said + ": " + fmt(a.progress, {done: run.done, total: run.total}) : said;
  }

  // A run's counts as badges; "nothing changed" only for a run that ended well.
  function figures(counts, status) {
    const keys = Object.keys(counts || {}).filter(function (k) { return counts[k]; });
    if (!keys.length) return status === "failed" ? null : el("span", {class: "muted", text: a.nothing_done});
    return el("span", {class: "figures"}, keys.map(function (key) {
      const tone = key === "failed" ? "bad" : key === "conflicts" || key === "proposed" ? "warn" : "";
      return el("span", {class: "badge " + tone, dataset: {count: key}, text: (a.counts[key] || key) + ": " + counts[key]});
    }));
  }

  // A failure in plain words first, the technical text folded under "Details".
  function failure(kind, text) {
    if (!kind && !text) return null;
    const plain = a.failures[kind] || a.failures.refused;
    return el("div", {class: "failure"}, [
      el("strong", {class: "failure-plain", text: plain}),
      text ? el("details", {}, [el("summary", {text: a.details}), el("div", {class: "detail muted", text: text})]) : null,
    ]);
  }

  function fieldName(field) { return a.fields[field] || field; }

  function value(field, v) {
    if (v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length)) return a.values.blank;
    if (field === "deleted") return v ? a.values.deleted : a.values.not_deleted;
    if (field === "kind") return a.values[v] || v;
    if (Array.isArray(v)) return v.join(", ");
    return String(v);
  }

  function action(entry) {
    const keyed = entry.side ? entry.action + "_" + entry.side : entry.action;
    return a.actions[keyed] || a.actions[entry.action] || entry.action;
  }

  function reason(detail) { return detail ? (a.reasons[detail] || detail) : ""; }

  function clientLink(id, name, ref) {
    if (id) return el("a", {href: "/clients/" + id, class: "client-link", text: name || ("#" + id)});
    return el("span", {class: "muted", text: ref ? fmt(a.log.onec_item, {ref: ref}) : ""});
  }

  function logTable(entries) {
    return el("table", {class: "log"}, [
      el("thead", {}, el("tr", {}, [
        el("th", {text: hub.t.ui.when}), el("th", {text: a.log.counterparty}), el("th", {text: a.log.action}),
        el("th", {text: a.log.fields}), el("th", {text: a.log.why}),
      ])),
      el("tbody", {}, entries.map(function (e) {
        return el("tr", {class: "entry action-" + e.action, dataset: {client: e.client_id || ""}}, [
          el("td", {class: "when", text: hub.when(String(e.at).replace(" ", "T"))}),
          el("td", {}, clientLink(e.client_id, e.client_name, e.ref_key)),
          el("td", {class: "what", text: action(e)}),
          el("td", {class: "fields", text: e.fields.map(fieldName).join(", ")}),
          el("td", {class: "detail", text: reason(e.detail)}),
        ]);
      })),
    ]);
  }

  // "← Newer | page 1 of 3 | Older →" under a list; go(page) loads another page.
  function pager(box, data, go) {
    hub.clear(box);
    const pages = Math.max(1, Math.ceil(data.total / data.per_page));
    if (pages < 2) return;
    box.appendChild(el("button", {type: "button", class: "prev", disabled: data.page <= 1, onclick: function () { go(data.page - 1); }, text: a.run.prev}));
    box.appendChild(el("span", {class: "muted", text: fmt(a.run.page, {page: data.page, pages: pages})}));
    box.appendChild(el("button", {type: "button", class: "next", disabled: data.page >= pages, onclick: function () { go(data.page + 1); }, text: a.run.next}));
  }

  // The API's "no 1C connection configured" (503) is the page's message, not an error toast.
  function noOnec(box, error) {
    if (error instanceof hub.ApiError && error.status === 503 && error.body.error === "no_onec") {
      hub.clear(box).appendChild(el("p", {class: "failure", id: "no-onec", text: a.no_onec}));
      return true;
    }
    return false;
  }

  window.acc = {a: a, fmt: fmt, date: date, age: age, duration: duration, statusBadge: statusBadge, trigger: trigger,
    phase: phase, figures: figures, failure: failure, fieldName: fieldName, value: value, action: action,
    reason: reason, clientLink: clientLink, logTable: logTable, pager: pager, noOnec: noOnec};
})();
