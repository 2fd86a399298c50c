// Missed calls to call back, one line per number, newest first; "Call back" asks the PBX to
// ring my phone and then the caller, and shows the PBX's answer (or error) on the line.
(function () {
  "use strict";
  const hub = window.hub;
  const el = hub.el;
  const t = hub.t.missed;
  const op = hub.t.op;
  const PER_PAGE = 25;
  const body = document.querySelector("#missed tbody");
  const openOnly = document.getElementById("open-only");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  let page = 1;

  async function callBack(call, button, result) {
    button.disabled = true;
    result.className = "call-result muted";
    result.textContent = t.calling;
    const target = call.client_id ? {client_id: call.client_id, number: call.number} : {number: call.number};
    try {
      const placed = await hub.api("POST", "/api/calls/originate", target);
      result.className = "call-result ok";
      result.textContent = t.placed + " (" + placed.number + ")";
    } catch (err) {
      result.className = "call-result error";
      result.textContent = (err.status === 409 ? t.refused + ": " + (err.body.reason || err.message) : err.message);
    } finally {
      button.disabled = false;
    }
  }

  function row(item) {
    const call = item.call;
    const who = call.client_id
      ? el("a", {href: "/clients/" + call.client_id, text: item.client_name || call.number}) : (call.number || op.anonymous);
    const result = el("span", {class: "call-result", role: "status"});
    const action = call.number
      ? el("button", {type: "button", class: "call-back primary", text: t.call_back})
      : el("span", {class: "muted", text: t.no_number});
    if (call.number) action.addEventListener("click", function () { callBack(call, action, result); });
    return el("tr", {dataset: {callId: call.id}}, [
      el("td", {}, [hub.when(call.started_at), item.tries > 1 ? el("div", {class: "muted", text: t.first + ": " + hub.when(item.first_at)}) : null]),
      el("td", {class: "who"}, [who, call.client_id && call.number ? el("div", {class: "muted", text: call.number}) : null,
        call.caller_name ? el("div", {class: "muted", text: call.caller_name}) : null]),
      el("td", {text: call.queue || "—"}),
      el("td", {class: "tries", text: String(item.tries)}),
      el("td", {}, el("span", {class: call.called_back_at ? "badge good" : "badge warn",
        text: call.called_back_at ? t.called_back + " " + hub.when(call.called_back_at) : t.open})),
      el("td", {class: "action"}, [action, result]),
    ]);
  }

  async function load() {
    try {
      const answer = await hub.api("GET", "/api/calls/missed?per_page=" + PER_PAGE + "&page=" + page + "&open_only=" + openOnly.checked);
      const pages = Math.max(1, Math.ceil(answer.total / PER_PAGE));
      hub.clear(body);
      if (!answer.items.length) body.append(el("tr", {}, el("td", {colspan: 6, class: "muted", text: t.none})));
      answer.items.forEach(function (item) { body.append(row(item)); });
      document.getElementById("missed-total").textContent = hub.t.ui.total + ": " + answer.total;
      document.getElementById("page-of").textContent = t.page.replace("{page}", page).replace("{pages}", pages);
      prev.disabled = page <= 1;
      next.disabled = page >= pages;
    } catch (err) {
      hub.failed(err);
    }
  }

  openOnly.addEventListener("change", function () { page = 1; load(); });
  document.getElementById("refresh").addEventListener("click", load);
  prev.addEventListener("click", function () { page -= 1; load(); });
  next.addEventListener("click", function () { page += 1; load(); });
  load();
})();
