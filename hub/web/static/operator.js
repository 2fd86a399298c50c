// Screen-pops for the operator page: one WebSocket, cards appear and are withdrawn live.
(function () {
  "use strict";
  const list = document.getElementById("pops");
  const state = document.getElementById("state");
  const t = window.hub.t.op;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function card(pop) {
    const box = el("article", "pop");
    box.dataset.callId = pop.call_id;
    box.appendChild(el("h2", "caller", pop.caller || t.anonymous));
    if (pop.caller_name) box.appendChild(el("p", "caller-name", pop.caller_name));
    if (pop.queue) box.appendChild(el("p", "queue", t.queue + ": " + pop.queue));
    if (pop.client) {
      const c = pop.client;
      const name = el("a", "client-name", c.name);
      name.href = c.url;
      box.appendChild(name);
      if (c.company && c.company !== c.name) box.appendChild(el("p", "company", c.company));
      if (c.contact) box.appendChild(el("p", "contact", t.contact + ": " + c.contact));
      if (c.inn) box.appendChild(el("p", "inn", t.inn + ": " + c.inn));
      if (c.tags.length) box.appendChild(el("p", "tags", c.tags.join(", ")));
      if (c.owner) box.appendChild(el("p", "owner", t.owner + ": " + c.owner));
      if (c.last_calls.length) {
        const calls = el("ul", "last-calls");
        c.last_calls.forEach(function (call) {
          calls.appendChild(el("li", call.status, (call.started_at || "").slice(0, 16).replace("T", " ") + " " +
            t[call.direction] + " " + t[call.status] + (call.final_operator ? " (" + call.final_operator + ")" : "")));
        });
        box.appendChild(calls);
      }
      if (c.last_emails && c.last_emails.length) {
        const mail = el("ul", "last-emails");
        c.last_emails.forEach(function (m) {
          mail.appendChild(el("li", m.direction, (m.at || "").slice(0, 16).replace("T", " ") + " " +
            (m.direction === "out" ? "→ " : "← ") + (m.subject || "")));
        });
        box.appendChild(mail);
      }
    } else if (pop.candidates) {
      box.appendChild(el("p", "ambiguous", t.several));
      const ul = el("ul", "candidates");
      pop.candidates.forEach(function (c) {
        const a = el("a", null, c.client_name + (c.contact_name ? " — " + c.contact_name : ""));
        a.href = "/api/clients/" + c.client_id;
        const li = el("li");
        li.appendChild(a);
        ul.appendChild(li);
      });
      box.appendChild(ul);
    } else {
      box.appendChild(el("p", "unknown", t.unknown));
      const create = el("button", "quick-create", t.create);
      create.type = "button";
      create.addEventListener("click", function () { quickCreate(pop, box); });
      box.appendChild(create);
    }
    return box;
  }

  function quickCreate(pop, box) {
    const name = window.prompt(t.new_name, pop.caller_name || pop.caller || "");
    if (!name) return;
    fetch("/api/clients", {
      method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({name: name, phones: pop.quick_create.phones})
    }).then(function (r) { return r.json(); }).then(function (client) {
      if (client.id) box.querySelector(".unknown").textContent = t.created + ": " + client.name;
    });
  }

  function show(pop) {
    const old = list.querySelector('[data-call-id="' + CSS.escape(pop.call_id) + '"]');
    const node = card(pop);
    if (old) list.replaceChild(node, old); else list.prepend(node);
    if (window.Notification && Notification.permission === "granted") {
      new Notification(pop.client ? pop.client.name : (pop.caller || t.anonymous), {body: t.ringing, tag: pop.call_id});
    }
  }

  function withdraw(msg) {
    const node = list.querySelector('[data-call-id="' + CSS.escape(msg.call_id) + '"]');
    if (!node) return;
    node.classList.add("withdrawn");
    node.appendChild(el("p", "withdraw-reason", t[msg.reason] || msg.reason));
    setTimeout(function () { node.remove(); }, 4000);
  }

  let delay = 500;
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = function () { state.textContent = t.connected; state.className = "ok"; delay = 500; };
    ws.onmessage = function (event) {
      const msg = JSON.parse(event.data);
      if (msg.type === "pop") show(msg);
      else if (msg.type === "withdraw") withdraw(msg);
    };
    ws.onclose = function () {
      state.textContent = t.disconnected; state.className = "bad";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  if (window.Notification && Notification.permission === "default") Notification.requestPermission();
  connect();
})();
