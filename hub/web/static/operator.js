// The operator's console: live screen-pops over one WebSocket (with a note on the call in
// progress and quick-create for an unknown number), client search, my recent calls, and
// keyboard shortcuts for the frequent actions.
(function () {
  "use strict";
  const hub = window.hub;
  const el = hub.el;
  const t = hub.t.op;
  const list = document.getElementById("pops");
  const waiting = document.getElementById("waiting");
  const state = document.getElementById("state");
  const extension = document.getElementById("console").dataset.extension;
  const NOTE_AUTOSAVE_MS = 1500;
  const ENDED_POP_STAYS_MS = 4000;

  const cardUrl = function (id) { return "/clients/" + encodeURIComponent(id); };
  const byId = function (callId) { return list.querySelector('[data-call-id="' + CSS.escape(callId) + '"]'); };

  // -- the pop -------------------------------------------------------------------------------

  function when(iso) { return hub.when(iso); }

  function clientBlock(c) {
    const box = el("div", {class: "client"});
    const left = el("div", {}, [
      el("a", {class: "client-name", href: cardUrl(c.id), target: "_blank", rel: "noopener", text: c.name}),
      c.company && c.company !== c.name ? el("p", {class: "company", text: c.company}) : null,
      c.contact ? el("p", {class: "contact", text: t.contact + ": " + c.contact}) : null,
      c.phone ? el("p", {class: "phone", text: t.phone + ": " + c.phone}) : null,
      c.inn ? el("p", {class: "inn", text: t.inn + ": " + c.inn}) : null,
      c.tags && c.tags.length ? el("p", {class: "tags"}, c.tags.map(function (tag) {
        return el("span", {class: "badge", text: tag});
      })) : null,
      c.owner ? el("p", {class: "owner", text: t.owner + ": " + c.owner}) : null,
      el("p", {class: "onec"}),
    ]);
    const right = el("div", {}, [
      c.last_calls && c.last_calls.length ? el("div", {}, [
        el("strong", {text: t.last_calls}),
        el("ul", {class: "last-calls"}, c.last_calls.map(function (call) {
          return el("li", {class: call.status, text: when(call.started_at) + " " + t[call.direction] + " " + t[call.status] +
            (call.final_operator ? " (" + call.final_operator + ")" : "")});
        })),
      ]) : null,
      c.last_emails && c.last_emails.length ? el("div", {}, [
        el("strong", {text: t.last_emails}),
        el("ul", {class: "last-emails"}, c.last_emails.map(function (m) {
          return el("li", {class: m.direction, text: when(m.at) + " " + (m.direction === "out" ? "→ " : "← ") + (m.subject || "")});
        })),
      ]) : null,
    ]);
    box.append(left, right);
    loadOnec(c.id, left.querySelector(".onec"));
    return box;
  }

  // 1C figures are read from 1C itself (cached by the hub), so they come after the pop, never delay it.
  function loadOnec(clientId, node) {
    hub.api("GET", "/api/clients/" + clientId + "/onec").then(function (answer) {
      const docs = answer.documents || {};
      const latest = Object.values(docs).flat().filter(function (d) { return d.date; })
        .sort(function (a, b) { return a.date < b.date ? 1 : -1; }).slice(0, 2);
      if (!latest.length) return;
      node.textContent = t.onec_docs + ": " + latest.map(function (d) {
        return d.number + " " + d.date.slice(0, 10) + (d.amount !== null && d.amount !== undefined ? " — " + d.amount.toLocaleString() : "");
      }).join("; ");
    }).catch(function (err) {
      if (err.status === 503 && err.body.error === "no_onec") return;  // no 1C here: nothing to show
      node.textContent = t.onec + ": " + err.message;
      node.className = "onec error";
    });
  }

  function openButton(c) {
    return el("a", {class: "open-card", href: cardUrl(c.id), target: "_blank", rel: "noopener", "aria-keyshortcuts": "Enter o"},
      [t.open_card + " ", el("kbd", {text: "Enter"})]);
  }

  function card(pop) {
    const box = el("article", {class: "pop", dataset: {callId: pop.call_id}});
    box.pop = pop;
    box.append(el("div", {class: "pop-head"}, [
      el("h2", {class: "caller", text: pop.caller || t.anonymous}),
      pop.caller_name ? el("span", {class: "caller-name", text: pop.caller_name}) : null,
      pop.queue ? el("span", {class: "queue muted", text: t.queue + ": " + pop.queue}) : null,
      pop.client ? openButton(pop.client) : null,
    ]));
    if (pop.client) {
      box.append(clientBlock(pop.client));
    } else if (pop.candidates) {
      box.append(el("p", {class: "ambiguous", text: t.several}), el("ul", {class: "candidates"}, pop.candidates.map(function (c) {
        return el("li", {}, el("a", {href: cardUrl(c.client_id), target: "_blank", rel: "noopener",
          text: c.client_name + (c.contact_name ? " — " + c.contact_name : "")}));
      })));
    } else if (pop.unknown) {
      box.append(el("div", {class: "unknown-block"}, [
        el("p", {class: "unknown", text: t.unknown}),
        el("button", {type: "button", class: "quick-create", "aria-keyshortcuts": "c", onclick: function () { showCreate(box); }},
          [t.create + " ", el("kbd", {text: "c"})]),
      ]));
    } else {
      box.append(el("p", {class: "unavailable error", text: t.unavailable}));
    }
    box.append(noteBox(box));
    return box;
  }

  // -- quick-create --------------------------------------------------------------------------

  function showCreate(box) {
    const block = box.querySelector(".unknown-block");
    if (!block) return;
    const opener = block.querySelector(".quick-create");
    let form = block.querySelector("form.create");
    opener.hidden = true;
    if (!form) {
      const pop = box.pop;
      const phones = (pop.quick_create && pop.quick_create.phones) || [];
      form = el("form", {class: "create"}, [
        el("div", {}, [el("label", {text: t.new_name}), el("input", {name: "name", required: true, maxlength: 300, value: pop.caller_name || ""})]),
        el("div", {}, [el("label", {text: t.phone}), el("input", {name: "phone", value: phones.length ? phones[0].number : (pop.caller || "")})]),
        el("button", {type: "submit", class: "primary", text: hub.t.ui.create}),
        el("button", {type: "button", text: hub.t.ui.cancel, onclick: function () { form.remove(); opener.hidden = false; }}),
      ]);
      form.addEventListener("submit", function (event) { event.preventDefault(); createClient(box, form); });
      block.append(form);
    }
    form.elements.name.focus();
  }

  async function createClient(box, form) {
    const name = form.elements.name.value.trim();
    const phone = form.elements.phone.value.trim();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const client = await hub.api("POST", "/api/clients", {name: name, phones: phone ? [{number: phone}] : []});
      box.pop.client = {id: client.id, name: client.name, company: client.full_name, inn: client.inn, tags: client.tags,
        phone: client.phones.length ? client.phones[0].number : null, last_calls: [], last_emails: []};
      const block = box.querySelector(".unknown-block");
      block.replaceWith(el("div", {class: "created-block"}, [el("p", {class: "created ok", text: t.created}), clientBlock(box.pop.client)]));
      box.querySelector(".pop-head").append(openButton(box.pop.client));
      hub.toast(t.created + ": " + client.name);
    } catch (err) {
      submit.disabled = false;
      hub.failed(err);
    }
  }

  // -- the note on the call in progress -------------------------------------------------------

  function noteUrl(callId) {
    const cut = callId.lastIndexOf("/");
    return "/api/calls/live/" + encodeURIComponent(callId.slice(0, cut)) + "/" + encodeURIComponent(callId.slice(cut + 1)) + "/notes";
  }

  function noteBox(box) {
    const text = el("textarea", {class: "note-text", placeholder: t.note_hint, maxlength: 20000, "aria-keyshortcuts": "n"});
    const status = el("span", {class: "note-state muted"});
    const note = el("div", {class: "note"}, [
      el("label", {text: t.note}), text,
      el("div", {class: "toolbar"}, [
        el("button", {type: "button", class: "save-note", onclick: function () { saveNote(owner()); }}, [t.note_save + " ", el("kbd", {text: "Ctrl+Enter"})]),
        status,
      ]),
    ]);
    box.noteSaved = "";
    // The pop this note is in now: a call that pops again (on answer) moves the note to its new card.
    const owner = function () { return note.closest(".pop") || box; };
    const autosave = hub.debounce(function () { saveNote(owner()); }, NOTE_AUTOSAVE_MS);
    text.addEventListener("input", function () {
      status.textContent = t.note_unsaved;
      autosave();
    });
    text.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); saveNote(owner()); }
    });
    return note;
  }

  async function saveNote(box) {
    const text = box.querySelector(".note-text");
    const status = box.querySelector(".note-state");
    const notes = text.value;
    if (notes === box.noteSaved) return;
    try {
      const answer = await hub.api("PUT", noteUrl(box.dataset.callId), {notes: notes});
      box.noteSaved = notes;
      if (text.value === notes) status.textContent = answer.call_id ? t.note_saved : t.note_kept;
      status.className = "note-state ok";
    } catch (err) {
      status.textContent = hub.t.ui.error + ": " + err.message;
      status.className = "note-state error";
      hub.failed(err);
    }
  }

  // -- pops arriving and leaving --------------------------------------------------------------

  function markCurrent() {
    const pops = list.querySelectorAll(".pop");
    pops.forEach(function (p) { p.classList.remove("current"); });
    const live = list.querySelector(".pop:not(.withdrawn)") || list.querySelector(".pop");
    if (live) live.classList.add("current");
    waiting.hidden = pops.length > 0;
  }

  function current() { return list.querySelector(".pop.current"); }

  function show(pop) {
    const old = byId(pop.call_id);
    if (old) {  // the same call popped again (on answer, or a reconnect): keep what was typed
      const note = old.querySelector(".note");
      const fresh = card(pop);
      fresh.querySelector(".note").replaceWith(note);
      fresh.noteSaved = old.noteSaved;
      list.replaceChild(fresh, old);
    } else {
      list.prepend(card(pop));
      notify(pop);
    }
    markCurrent();
  }

  function withdraw(msg) {
    const node = byId(msg.call_id);
    if (!node) return;
    node.classList.add("withdrawn");
    node.append(el("p", {class: "withdraw-reason", text: t[msg.reason] || msg.reason}));
    const text = node.querySelector(".note-text");
    const ended = msg.reason === "ended";
    if (ended) setTimeout(loadRecent, 1500);  // the call's row is written as it ends
    if (ended && text.value) {  // the operator was writing: keep the box until they close it
      saveNote(node);
      node.querySelector(".pop-head").append(el("button", {type: "button", class: "close-pop", text: t.close,
        onclick: function () { saveNote(node).then(function () { node.remove(); markCurrent(); }); }}));
    } else {
      setTimeout(function () {
        if (text.value && ended) return;
        node.remove();
        markCurrent();
      }, ENDED_POP_STAYS_MS);
    }
    markCurrent();
  }

  // -- browser notifications (permission asked from a click: Chromium ignores other requests) --

  const notifyButton = document.getElementById("notify");
  function showNotifyState() {
    if (!("Notification" in window)) { notifyButton.hidden = true; return; }
    notifyButton.hidden = Notification.permission === "granted";
    if (Notification.permission === "denied") notifyButton.title = t.notify_denied;
  }
  notifyButton.addEventListener("click", function () {
    Notification.requestPermission().then(function (answer) {
      hub.toast(answer === "granted" ? t.notify_granted : t.notify_denied, answer !== "granted");
      showNotifyState();
    });
  });

  function notify(pop) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const title = pop.client ? pop.client.name : (pop.caller || t.anonymous);
    const body = t.ringing + (pop.caller ? " " + pop.caller : "") + (pop.queue ? " · " + t.queue + ": " + pop.queue : "");
    const shown = new Notification(title, {body: body, tag: pop.call_id});
    shown.onclick = function () {
      window.focus();
      const node = byId(pop.call_id);
      if (node && node.pop.client) window.open(cardUrl(node.pop.client.id), "_blank", "noopener");
      shown.close();
    };
  }

  // -- the pop socket -------------------------------------------------------------------------

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

  // -- search ---------------------------------------------------------------------------------

  const search = document.getElementById("search");
  const results = document.getElementById("search-results");
  let asked = "";
  const find = hub.debounce(async function () {
    const q = search.value.trim();
    asked = q;
    if (!q) { hub.clear(results); return; }
    try {
      const page = await hub.api("GET", "/api/clients?per_page=10&q=" + encodeURIComponent(q));
      if (asked !== q) return;  // a later search is on its way
      hub.clear(results);
      if (!page.items.length) results.append(el("li", {class: "muted", text: t.no_results}));
      page.items.forEach(function (c) {
        const phone = c.phones.length ? c.phones[0].number : "";
        results.append(el("li", {}, [
          el("a", {href: cardUrl(c.id), target: "_blank", rel: "noopener", text: c.name}),
          el("span", {class: "muted", text: [c.inn ? t.inn + " " + c.inn : "", phone].filter(Boolean).join(" · ")}),
        ]));
      });
    } catch (err) {
      hub.failed(err);
    }
  }, 250);
  search.addEventListener("input", find);
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      const first = results.querySelector("a");
      if (first) { event.preventDefault(); window.open(first.href, "_blank", "noopener"); }
    }
  });

  // -- my recent calls ------------------------------------------------------------------------

  const recent = document.querySelector("#recent-calls tbody");
  async function loadRecent() {
    if (!extension) { hub.clear(recent).append(el("tr", {}, el("td", {colspan: 6, class: "muted", text: t.no_calls}))); return; }
    try {
      const page = await hub.api("GET", "/api/calls?per_page=10&operator=" + encodeURIComponent(extension));
      hub.clear(recent);
      if (!page.items.length) recent.append(el("tr", {}, el("td", {colspan: 6, class: "muted", text: t.no_calls})));
      page.items.forEach(function (call) {
        const number = call.number || call.callee || call.caller || t.anonymous;
        recent.append(el("tr", {dataset: {callId: call.id}}, [
          el("td", {text: when(call.started_at)}),
          el("td", {text: t[call.direction] || call.direction}),
          el("td", {}, [number, call.client_id ? " " : null,
            call.client_id ? el("a", {href: cardUrl(call.client_id), target: "_blank", rel: "noopener", text: t.card}) : null]),
          el("td", {}, el("span", {class: "badge " + (call.status === "answered" ? "good" : "bad"), text: t[call.status] || call.status})),
          el("td", {text: call.talk_seconds + " " + t.seconds}),
          el("td", {class: "notes", text: call.notes}),
        ]));
      });
    } catch (err) {
      hub.failed(err);
    }
  }

  // -- keyboard shortcuts ---------------------------------------------------------------------

  const help = document.getElementById("shortcuts-help");
  function showHelp() { if (!help.open) help.showModal(); }
  document.getElementById("show-shortcuts").addEventListener("click", showHelp);

  function typing(target) {
    return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target) || help.open) return;
    const pop = current();
    const actions = {
      "/": function () { search.focus(); search.select(); },
      "?": showHelp,
      "m": function () { location.href = "/calls/missed"; },
      "n": function () { if (pop) pop.querySelector(".note-text").focus(); },
      "c": function () { if (pop) showCreate(pop); },
      "o": function () { if (pop && pop.pop.client) window.open(cardUrl(pop.pop.client.id), "_blank", "noopener"); },
    };
    actions.Enter = actions.o;
    const action = actions[event.key];
    if (!action || (event.key === "Enter" && event.target.closest("a, button"))) return;
    event.preventDefault();
    action();
  });

  showNotifyState();
  loadRecent();
  markCurrent();
  if (extension) connect();
})();
