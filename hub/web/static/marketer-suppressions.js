// The suppression list: who no campaign writes to and why; search, add by hand, take one off.
(function () {
  "use strict";
  const el = hub.el, t = mk.t;
  const $ = function (id) { return document.getElementById(id); };
  const PER_PAGE = 50;
  let page = 1;

  function source(s) {
    if (s.campaign_id) {
      return el("span", {}, [el("a", {href: "/campaigns/" + s.campaign_id + "/stats", text: mk.format(t.campaign_no, {id: s.campaign_id})}),
        s.detail ? " · " + s.detail : ""]);
    }
    return s.detail || "";
  }

  function row(s) {
    return el("tr", {dataset: {id: s.id}}, [
      el("td", {class: "address", text: s.address}),
      el("td", {}, mk.reasonBadge(s.reason)),
      el("td", {text: hub.when(s.created_at)}),
      el("td", {}, source(s)),
      el("td", {}, el("button", {type: "button", class: "danger remove", text: t.remove, onclick: function () { remove(s); }})),
    ]);
  }

  async function load() {
    const q = $("search").value.trim();
    try {
      const data = await hub.api("GET", "/api/suppressions?per_page=" + PER_PAGE + "&page=" + page + (q ? "&q=" + encodeURIComponent(q) : ""));
      const body = hub.clear(document.querySelector("#suppressions tbody"));
      data.items.forEach(function (s) { body.appendChild(row(s)); });
      const pages = Math.max(1, Math.ceil(data.total / PER_PAGE));
      $("total").textContent = hub.t.ui.total + ": " + mk.number(data.total);
      $("page-no").textContent = mk.format(t.page_of, {page: page, pages: pages});
      $("prev-page").disabled = page <= 1;
      $("next-page").disabled = page >= pages;
      $("no-suppressions").hidden = data.items.length > 0;
    } catch (err) {
      hub.failed(err);
    }
  }

  async function add(event) {
    event.preventDefault();
    mk.clearErrors($("add-form"));
    try {
      const added = await hub.api("POST", "/api/suppressions", {address: $("address").value.trim(), detail: $("detail").value.trim()});
      hub.toast(mk.format(t.suppressed, {address: added.address}));
      $("address").value = $("detail").value = "";
      page = 1;
      await load();
    } catch (err) {
      if (err.status === 409 || err.status === 422) {
        const box = hub.clear($("error-address"));
        box.classList.add("shown");
        box.appendChild(el("span", {text: err.status === 409 ? t.already_suppressed : t.not_an_address}));
        $("address").classList.add("invalid");
      } else {
        hub.failed(err);
      }
    }
  }

  async function remove(s) {
    if (!(await mk.confirmed(mk.format(t.confirm_unsuppress, {address: s.address}), t.remove, true))) return;
    try {
      await hub.api("DELETE", "/api/suppressions/" + s.id);
      hub.toast(mk.format(t.unsuppressed, {address: s.address}));
      await load();
    } catch (err) {
      hub.failed(err);
    }
  }

  $("search").addEventListener("input", hub.debounce(function () { page = 1; load(); }, 300));
  $("add-form").addEventListener("submit", add);
  $("prev-page").addEventListener("click", function () { page -= 1; load(); });
  $("next-page").addEventListener("click", function () { page += 1; load(); });
  load();
})();
