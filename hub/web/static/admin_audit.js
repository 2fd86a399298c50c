// /admin/audit: the audit log, newest first, filtered by who, action, object and its id; the
// filters and the page are kept in the address, so a view can be reloaded or sent on.
(function () {
  "use strict";
  const hub = window.hub, admin = window.admin, t = hub.t, a = hub.t.adm, el = hub.el;
  const PER_PAGE = 50;
  const FILTERS = ["username", "action", "entity", "entity_id"];
  const form = document.getElementById("audit-filters");
  const body = document.querySelector("#audit tbody");
  let page = 1;

  function details(entry) {
    return Object.entries(entry.details || {}).map(function ([key, value]) {
      return key + "=" + (typeof value === "string" ? value : JSON.stringify(value));
    }).join("  ");
  }

  function query() {
    const params = new URLSearchParams();
    FILTERS.forEach(function (name) {
      const value = document.getElementById("f-" + name).value.trim();
      if (value) params.set(name, value);
    });
    return params;
  }

  async function load() {
    const params = query();
    const shown = new URLSearchParams(params);
    if (page > 1) shown.set("page", String(page));
    history.replaceState(null, "", location.pathname + (shown.toString() ? "?" + shown.toString() : ""));
    params.set("page", String(page));
    params.set("per_page", String(PER_PAGE));
    try {
      const data = await hub.api("GET", "/api/audit?" + params.toString());
      hub.clear(body);
      if (!data.items.length) body.appendChild(el("tr", {}, el("td", {colspan: 7, class: "muted", text: t.ui.empty})));
      data.items.forEach(function (entry) {
        body.appendChild(el("tr", {dataset: {action: entry.action, entity: entry.entity}}, [
          el("td", {text: hub.when(entry.at)}),
          el("td", {text: entry.username}),
          el("td", {class: "action", text: admin.label(a.actions, entry.action)}),
          el("td", {class: "entity", text: admin.label(a.entities, entry.entity)}),
          el("td", {class: "id", text: entry.entity_id || ""}),
          el("td", {text: entry.ip || ""}),
          el("td", {class: "details", text: details(entry)}),
        ]));
      });
      const pages = Math.max(1, Math.ceil(data.total / data.per_page));
      document.getElementById("audit-page").textContent = a.page_of.replace("{page}", data.page).replace("{pages}", pages).replace("{total}", data.total);
      document.getElementById("audit-prev").disabled = page <= 1;
      document.getElementById("audit-next").disabled = page >= pages;
    } catch (err) { hub.failed(err); }
  }

  const initial = new URLSearchParams(location.search);
  FILTERS.forEach(function (name) { if (initial.get(name)) document.getElementById("f-" + name).value = initial.get(name); });
  page = Math.max(1, parseInt(initial.get("page") || "1", 10) || 1);

  form.addEventListener("submit", function (event) { event.preventDefault(); page = 1; load(); });
  form.addEventListener("reset", function () { setTimeout(function () { page = 1; load(); }, 0); });
  document.getElementById("audit-prev").addEventListener("click", function () { page -= 1; load(); });
  document.getElementById("audit-next").addEventListener("click", function () { page += 1; load(); });
  load();
})();
