// The segment builder: filter rows over the card, the count of who they choose refreshed as
// they change, a sample of who that is, and the saved segments (save, rename, delete).
(function () {
  "use strict";
  const el = hub.el, t = mk.t;
  const $ = function (id) { return document.getElementById(id); };
  const DATES = ["called_since", "not_called_since", "emailed_since", "not_emailed_since"];
  const TAGS = ["tags_any", "tags_all", "tags_none"];
  const ORDER = ["statuses", "kinds", "tags_any", "tags_all", "tags_none", "owner_ids", "city", "has_inn", "custom"]
    .concat(DATES, ["opened_campaign_id", "clicked_campaign_id", "addresses"]);
  let choices = {owners: [], tags: [], custom_fields: [], campaigns: []};
  let segments = [];
  let current = null;  // the saved segment being edited, or null for a new one
  let rows = [];  // {kind, node, read: function (rules)}
  let countSeq = 0;

  function checks(kind, options, texts, chosen) {
    const boxes = options.map(function (option) {
      const box = el("input", {type: "checkbox", value: String(option), checked: chosen.indexOf(option) >= 0});
      return {box: box, label: el("label", {}, [box, texts[option] || String(option)]), value: option};
    });
    return {controls: boxes.map(function (b) { return b.label; }), read: function (rules) {
      rules[kind] = boxes.filter(function (b) { return b.box.checked; }).map(function (b) { return b.value; });
    }};
  }

  function localDate(iso) {
    if (!iso) return "";
    const d = new Date(iso), pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  }

  // Each kind of filter: its controls, given the value a saved segment has, and how it reads back.
  function controlsOf(kind, value) {
    if (kind === "statuses") return checks(kind, ["lead", "active", "inactive"], t.client_status, value || []);
    if (kind === "kinds") return checks(kind, ["legal_entity", "sole_trader", "individual"], t.client_kind, value || []);
    if (kind === "owner_ids") {
      return checks(kind, choices.owners.map(function (o) { return o.id; }),
        Object.fromEntries(choices.owners.map(function (o) { return [o.id, o.name]; })), value || []);
    }
    if (TAGS.indexOf(kind) >= 0) {
      const input = el("input", {type: "text", size: 36, list: "known-tags", value: (value || []).join(", "), placeholder: t.tags_placeholder, "aria-label": t.filter[kind]});
      return {controls: [input], read: function (rules) {
        rules[kind] = input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      }};
    }
    if (kind === "city") {
      const input = el("input", {type: "text", size: 30, value: value || "", "aria-label": t.filter.city});
      return {controls: [input], read: function (rules) { if (input.value.trim()) rules.city = input.value.trim(); }};
    }
    if (kind === "has_inn" || kind === "addresses") {
      const options = kind === "has_inn" ? [["true", t.has_inn_yes], ["false", t.has_inn_no]] : [["company", t.addresses_company], ["all", t.addresses_all]];
      const select = el("select", {"aria-label": t.filter[kind]}, options.map(function ([v, text]) { return el("option", {value: v, text: text}); }));
      if (value !== undefined && value !== null) select.value = String(value);
      return {controls: [select], read: function (rules) { rules[kind] = kind === "has_inn" ? select.value === "true" : select.value; }};
    }
    if (kind === "custom") {
      const name = el("input", {type: "text", size: 18, list: "known-fields", value: value ? value[0] : "", placeholder: t.custom_name, "aria-label": t.custom_name});
      const wanted = el("input", {type: "text", size: 18, value: value ? String(value[1]) : "", placeholder: t.custom_value, "aria-label": t.custom_value});
      return {controls: [name, "=", wanted], read: function (rules) {
        if (name.value.trim()) rules.custom[name.value.trim()] = wanted.value.trim();
      }};
    }
    if (DATES.indexOf(kind) >= 0) {
      const input = el("input", {type: "date", value: localDate(value), "aria-label": t.filter[kind]});
      return {controls: [input], read: function (rules) {
        if (input.value) rules[kind] = new Date(input.value + "T00:00:00").toISOString();
      }};
    }
    // opened_campaign_id, clicked_campaign_id
    const select = el("select", {"aria-label": t.filter[kind]}, choices.campaigns.map(function (c) {
      return el("option", {value: String(c.id), text: c.name});
    }));
    if (value) select.value = String(value);
    return {controls: [select], read: function (rules) { if (select.value) rules[kind] = Number(select.value); }};
  }

  function addRow(kind, value) {
    const made = controlsOf(kind, value);
    const row = {kind: kind, read: made.read};
    row.node = el("div", {class: "filter-row", dataset: {kind: kind}}, [
      el("span", {class: "label", text: t.filter[kind]}),
      el("span", {class: "controls"}, made.controls),
      el("button", {type: "button", class: "remove-filter", title: t.remove_filter, "aria-label": t.remove_filter, text: "✕", onclick: function () {
        rows = rows.filter(function (r) { return r !== row; });
        row.node.remove();
        offerKinds();
        countSoon();
      }}),
    ]);
    rows.push(row);
    $("filters").appendChild(row.node);
    offerKinds();
  }

  // A kind is offered once (custom fields as often as wanted), in a fixed order.
  function offerKinds() {
    const used = rows.map(function (r) { return r.kind; });
    const select = hub.clear($("add-filter"));
    select.appendChild(el("option", {value: "", text: t.choose_filter}));
    ORDER.forEach(function (kind) {
      if (kind !== "custom" && used.indexOf(kind) >= 0) return;
      if ((kind === "opened_campaign_id" || kind === "clicked_campaign_id") && !choices.campaigns.length) return;
      select.appendChild(el("option", {value: kind, text: t.filter[kind]}));
    });
  }

  function rules() {
    const built = {custom: {}};
    rows.forEach(function (row) { row.read(built); });
    return built;
  }

  function fromRules(saved) {
    rows.forEach(function (r) { r.node.remove(); });
    rows = [];
    ORDER.forEach(function (kind) {
      const value = saved[kind];
      if (kind === "custom") { Object.entries(value || {}).forEach(function (pair) { addRow("custom", pair); }); return; }
      if (value === null || value === undefined || (Array.isArray(value) && !value.length) || (kind === "addresses" && value === "all")) return;
      addRow(kind, value);
    });
    offerKinds();
  }

  async function count() {
    const seq = ++countSeq;
    const asked = rules();
    mk.clearErrors($("builder"));
    try {
      const [counted, sample] = await Promise.all([
        hub.api("POST", "/api/segments/count", {rules: asked}),
        hub.api("POST", "/api/segments/sample", {rules: asked, limit: 20}),
      ]);
      if (seq !== countSeq) return;
      const box = hub.clear($("count"));
      box.appendChild(el("strong", {id: "count-addresses", dataset: {addresses: counted.addresses}, text: mk.number(counted.addresses)}));
      box.appendChild(document.createTextNode(" " + mk.format(t.count_text, {clients: mk.number(counted.clients), suppressed: mk.number(counted.suppressed)})));
      const body = hub.clear(document.querySelector("#sample tbody"));
      sample.items.forEach(function (s) {
        body.appendChild(el("tr", {}, [el("td", {}, el("a", {href: "/clients/" + s.client_id, text: s.client_name})),
          el("td", {text: s.contact_name}), el("td", {text: s.address})]));
      });
    } catch (err) {
      if (seq !== countSeq) return;
      hub.clear($("count"));
      mk.showErrors(err);
    }
  }

  const countSoon = hub.debounce(count, 300);

  function showList() {
    const list = hub.clear($("segment-list"));
    segments.forEach(function (s) {
      list.appendChild(el("li", {}, el("a", {href: "#" + s.id, class: current && current.id === s.id ? "active" : "", dataset: {id: s.id}, text: s.name,
        onclick: function (event) { event.preventDefault(); open(s); }})));
    });
    $("no-segments").hidden = segments.length > 0;
  }

  function open(segment) {
    current = segment;
    $("segment-name").value = segment ? segment.name : "";
    $("delete-segment").hidden = !segment;
    history.replaceState(null, "", segment ? "#" + segment.id : location.pathname);
    fromRules(segment ? segment.rules : {});
    showList();
    count();
  }

  async function loadList() {
    segments = (await hub.api("GET", "/api/segments")).items;
    showList();
  }

  async function save() {
    mk.clearErrors($("builder"));
    const body = {name: $("segment-name").value.trim(), rules: rules()};
    try {
      const saved = current ? await hub.api("PUT", "/api/segments/" + current.id, body) : await hub.api("POST", "/api/segments", body);
      hub.toast(hub.t.ui.saved);
      current = saved;
      $("delete-segment").hidden = false;
      history.replaceState(null, "", "#" + saved.id);
      await loadList();
    } catch (err) {
      if (err.status === 409) {
        const box = hub.clear($("error-name"));
        box.classList.add("shown");
        box.appendChild(el("span", {text: t.name_taken}));
        $("segment-name").classList.add("invalid");
      } else {
        mk.showErrors(err);
      }
    }
  }

  async function remove() {
    if (!current || !(await mk.confirmed(mk.format(t.confirm_delete_segment, {name: current.name}), hub.t.ui.delete, true))) return;
    try {
      await hub.api("DELETE", "/api/segments/" + current.id);
      hub.toast(t.segment_deleted);
      await loadList();
      open(null);
    } catch (err) {
      hub.failed(err);
    }
  }

  $("add-filter").addEventListener("change", function () {
    if (!this.value) return;
    addRow(this.value);
    count();
  });
  $("filters").addEventListener("input", countSoon);
  $("filters").addEventListener("change", countSoon);
  $("save-segment").addEventListener("click", save);
  $("delete-segment").addEventListener("click", remove);
  $("new-segment").addEventListener("click", function () { open(null); $("segment-name").focus(); });
  $("segment-name").addEventListener("input", function () { this.classList.remove("invalid"); });

  async function init() {
    try {
      choices = await hub.api("GET", "/api/segments/choices");
      document.body.appendChild(el("datalist", {id: "known-tags"}, choices.tags.map(function (tag) { return el("option", {value: tag}); })));
      document.body.appendChild(el("datalist", {id: "known-fields"}, choices.custom_fields.map(function (f) { return el("option", {value: f}); })));
      await loadList();
      const wanted = Number(location.hash.slice(1));
      open(segments.find(function (s) { return s.id === wanted; }) || null);
    } catch (err) {
      hub.failed(err);
    }
  }

  init();
})();
