// The client search: one box for name, INN, phone or e-mail; results as you type.
(function () {
  "use strict";
  const {t, el, api, clear, debounce, failed} = window.hub;
  const c = t.card;
  const form = document.getElementById("search-form");
  const box = document.getElementById("q");
  const body = document.querySelector("#results tbody");
  const more = document.getElementById("more");
  const found = document.getElementById("found");
  let page = 1;
  let asked = 0;

  function row(client) {
    const phones = client.phones.concat(...client.contacts.map(function (p) { return p.phones; }));
    const emails = client.emails.concat(...client.contacts.map(function (p) { return p.emails; }));
    const tr = el("tr", {class: "clickable", dataset: {id: client.id}, onclick: function () { location.href = "/clients/" + client.id; }}, [
      el("td", {}, el("a", {href: "/clients/" + client.id, class: "client-link", text: client.name})),
      el("td", {text: client.inn || ""}),
      el("td", {text: phones.map(function (p) { return p.e164 || p.number; }).join(", ")}),
      el("td", {text: emails.map(function (e) { return e.address; }).join(", ")}),
      el("td", {text: client.tags.join(", ")}),
    ]);
    return tr;
  }

  async function search(append) {
    const q = box.value.trim();
    const mine = ++asked;
    page = append ? page + 1 : 1;
    const params = new URLSearchParams({page: page, per_page: 50});
    if (q) params.set("q", q);
    try {
      const result = await api("GET", "/api/clients?" + params);
      if (mine !== asked) return;  // a newer search is under way
      if (!append) clear(body);
      result.items.forEach(function (client) { body.appendChild(row(client)); });
      found.textContent = result.total ? c.found + ": " + result.total : c.nothing_found;
      more.hidden = page * result.per_page >= result.total;
      history.replaceState(null, "", q ? "?q=" + encodeURIComponent(q) : location.pathname);
    } catch (error) { failed(error); }
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); search(false); });
  box.addEventListener("input", debounce(function () { search(false); }, 250));
  more.addEventListener("click", function () { search(true); });
  search(false);
})();
