// A campaign's statistics: the figures (people's and machines' apart), three charts drawn here
// as inline SVG (over time, people against machines, clicks per link), and each recipient's row
// with, on a click, everything recorded for them.
(function () {
  "use strict";
  const el = hub.el, t = mk.t;
  const $ = function (id) { return document.getElementById(id); };
  const id = Number($("stats-page").dataset.id);
  const base = "/api/campaigns/" + id;
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = {opens: "#1d5fa8", opens_machine: "#a9c3e3", clicks: "#18794e", clicks_machine: "#a8d5bd"};
  const PAGE = 50;
  let after = 0;
  let nextAfter = null;

  function svg(tag, attrs, children) {
    const node = document.createElementNS(NS, tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) { node.setAttribute(key, value); });
    [].concat(children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function bar(x, y, width, height, series, value, tip) {
    return svg("rect", {x: x, y: y, width: Math.max(0, width), height: Math.max(0, height), fill: COLORS[series],
      "data-series": series, "data-value": value}, svg("title", {}, tip + ": " + value));
  }

  function legend(series) {
    return el("div", {class: "legend"}, series.map(function (key) {
      return el("span", {}, [el("span", {class: "swatch", style: "background:" + COLORS[key]}), t.series[key]]);
    }));
  }

  function place(chartId, drawing, series) {
    const box = hub.clear(document.querySelector("#" + chartId + " .svg"));
    if (!drawing) { box.appendChild(el("p", {class: "muted", text: t.no_data})); return; }
    box.appendChild(drawing);
    if (series) box.appendChild(legend(series));
  }

  // Two stacked bars: opens and clicks, people's then machines'.
  function peopleChart(stats) {
    const rows = [["opens", stats.opens], ["clicks", stats.clicks]];
    const most = Math.max(1, ...rows.map(function ([, e]) { return e.human.total + e.machine.total; }));
    const width = 600, left = 110, room = width - left - 60;
    const drawing = svg("svg", {viewBox: "0 0 " + width + " 90", role: "img", "aria-label": t.people_vs_machines});
    rows.forEach(function ([kind, e], n) {
      const y = 10 + n * 40, human = e.human.total * room / most, machine = e.machine.total * room / most;
      drawing.appendChild(svg("text", {x: 0, y: y + 18, "font-size": 13}, t.series[kind]));
      drawing.appendChild(bar(left, y, human, 26, kind, e.human.total, t.series[kind]));
      drawing.appendChild(bar(left + human, y, machine, 26, kind + "_machine", e.machine.total, t.series[kind + "_machine"]));
      drawing.appendChild(svg("text", {x: left + human + machine + 6, y: y + 18, "font-size": 12},
        mk.number(e.human.total) + " / " + mk.number(e.machine.total)));
    });
    return drawing;
  }

  // Hits per hour or day: every bucket between the first and the last, so gaps show as gaps.
  function filled(timeline, bucket) {
    if (!timeline.length) return [];
    const step = bucket === "hour" ? 3600e3 : 86400e3;
    const first = Date.parse(timeline[0].start), last = Date.parse(timeline[timeline.length - 1].start);
    if ((last - first) / step > 400) return timeline;
    const byStart = {};
    timeline.forEach(function (p) { byStart[Date.parse(p.start)] = p; });
    const points = [];
    for (let at = first; at <= last; at += step) {
      points.push(byStart[at] || {start: new Date(at).toISOString(), opens: 0, machine_opens: 0, clicks: 0, machine_clicks: 0});
    }
    return points;
  }

  function timeLabel(iso, bucket) {
    const d = new Date(iso), pad = function (n) { return String(n).padStart(2, "0"); };
    const day = pad(d.getDate()) + "." + pad(d.getMonth() + 1);
    return bucket === "hour" ? day + " " + pad(d.getHours()) + ":00" : day;
  }

  function timelineChart(stats) {
    const points = filled(stats.timeline, stats.bucket);
    if (!points.length) return null;
    const width = 600, height = 220, left = 36, bottom = 30, top = 10;
    const most = Math.max(1, ...points.map(function (p) { return Math.max(p.opens + p.machine_opens, p.clicks + p.machine_clicks); }));
    const slot = (width - left) / points.length, barWidth = Math.max(1, Math.min(24, slot / 2 - 2));
    const scale = (height - top - bottom) / most;
    const drawing = svg("svg", {viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": t.over_time});
    drawing.appendChild(svg("line", {x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: "#889"}));
    drawing.appendChild(svg("text", {x: 0, y: top + 10, "font-size": 11}, String(most)));
    drawing.appendChild(svg("text", {x: 0, y: height - bottom, "font-size": 11}, "0"));
    const every = Math.ceil(points.length / 8);
    points.forEach(function (p, n) {
      const x = left + n * slot + slot / 2 - barWidth;
      const when = timeLabel(p.start, stats.bucket);
      [["opens", p.opens, p.machine_opens, 0], ["clicks", p.clicks, p.machine_clicks, barWidth]].forEach(function ([kind, human, machine, shift]) {
        let y = height - bottom - human * scale;
        drawing.appendChild(bar(x + shift, y, barWidth, human * scale, kind, human, when + ", " + t.series[kind]));
        y -= machine * scale;
        drawing.appendChild(bar(x + shift, y, barWidth, machine * scale, kind + "_machine", machine, when + ", " + t.series[kind + "_machine"]));
      });
      if (n % every === 0) {
        drawing.appendChild(svg("text", {x: x + barWidth, y: height - bottom + 16, "font-size": 11, "text-anchor": "middle"}, when));
      }
    });
    return drawing;
  }

  function linksChart(stats) {
    if (!stats.links.length) return null;
    const width = 600, rowHeight = 40, left = 8, room = width - 2 * left;
    const most = Math.max(1, ...stats.links.map(function (l) { return l.clicks + l.machine_clicks; }));
    const drawing = svg("svg", {viewBox: "0 0 " + width + " " + (stats.links.length * rowHeight + 6), role: "img", "aria-label": t.per_link});
    stats.links.forEach(function (link, n) {
      const y = n * rowHeight + 4, human = link.clicks * room / most, machine = link.machine_clicks * room / most;
      const url = link.url.length > 50 ? link.url.slice(0, 49) + "…" : link.url;  // the figures share its line
      drawing.appendChild(svg("text", {x: left, y: y + 11, "font-size": 12}, "#" + link.number + " " + url));
      drawing.appendChild(bar(left, y + 16, human, 16, "clicks", link.clicks, "#" + link.number + ", " + t.series.clicks));
      drawing.appendChild(bar(left + human, y + 16, machine, 16, "clicks_machine", link.machine_clicks, "#" + link.number + ", " + t.series.clicks_machine));
      drawing.appendChild(svg("text", {x: width - left, y: y + 11, "font-size": 12, "text-anchor": "end"},
        mk.format(t.link_figures, {clicks: link.clicks, unique: link.unique_clicks, machine: link.machine_clicks})));
    });
    return drawing;
  }

  function figureRow(title, value, key) {
    return el("tr", {}, [el("th", {text: title}), el("td", {class: "num", dataset: {figure: key}, text: value})]);
  }

  function figures(stats) {
    const r = stats.recipients, b = stats.bounced;
    const total = Object.values(r).reduce(function (a, n) { return a + n; }, 0);
    const body = hub.clear($("delivery"));
    [
      [t.fig.recipients, mk.number(total), "recipients"],
      [t.fig.sent, mk.number(stats.sent), "sent"],
      [t.fig.queued, mk.number(r.queued + r.sending), "queued"],
      [t.fig.failed, mk.number(stats.failed), "failed"],
      [t.fig.bounced, mk.number(b.total) + " (" + mk.format(t.fig.bounce_kinds, {hard: b.hard, soft: b.soft, complaint: b.complaint}) + ")", "bounced"],
      [t.fig.review, mk.number(stats.review), "review"],
      [t.fig.unsubscribed, mk.number(stats.unsubscribed), "unsubscribed"],
      [t.fig.open_rate, mk.percent(stats.rates.open), "open_rate"],
      [t.fig.click_rate, mk.percent(stats.rates.click), "click_rate"],
      [t.fig.click_to_open, mk.percent(stats.rates.click_to_open), "click_to_open"],
    ].forEach(function ([title, value, key]) { body.appendChild(figureRow(title, value, key)); });
    const engagement = hub.clear(document.querySelector("#engagement tbody"));
    [["opens", stats.opens], ["clicks", stats.clicks]].forEach(function ([kind, e]) {
      engagement.appendChild(el("tr", {}, [el("th", {text: t.series[kind]})].concat(
        [["human", "unique"], ["human", "total"], ["machine", "unique"], ["machine", "total"]].map(function ([who, what]) {
          return el("td", {class: "num", dataset: {figure: kind + "." + who + "." + what}, text: mk.number(e[who][what])});
        }))));
    });
  }

  async function loadStats() {
    try {
      const [campaign, stats] = await Promise.all([hub.api("GET", base), hub.api("GET", base + "/stats?bucket=" + $("bucket").value)]);
      $("campaign-name").textContent = campaign.name;
      hub.clear($("status")).appendChild(mk.statusBadge(campaign.status));
      figures(stats);
      place("chart-people", stats.opens.human.total + stats.opens.machine.total + stats.clicks.human.total + stats.clicks.machine.total
        ? peopleChart(stats) : null, ["opens", "opens_machine", "clicks", "clicks_machine"]);
      place("chart-timeline", timelineChart(stats), ["opens", "opens_machine", "clicks", "clicks_machine"]);
      place("chart-links", linksChart(stats), ["clicks", "clicks_machine"]);
    } catch (err) {
      hub.failed(err);
    }
  }

  // -- recipients and their events ---------------------------------------------------------------

  function withMachines(people, machines) {
    return mk.number(people) + (machines ? " " + mk.format(t.plus_machines, {count: machines}) : "");
  }

  function recipientRow(r) {
    const row = el("tr", {dataset: {id: r.id}, tabindex: "0"}, [
      el("td", {class: "address", text: r.address}),
      el("td", {text: t.recipient_status[r.status] || r.status, title: r.last_error || ""}),
      el("td", {text: hub.when(r.sent_at)}),
      el("td", {class: "num opens", text: withMachines(r.opens, r.machine_opens)}),
      el("td", {class: "num clicks", text: withMachines(r.clicks, r.machine_clicks)}),
      el("td", {text: r.bounce ? t.bounce_kind[r.bounce] : ""}),
      el("td", {text: r.unsubscribed ? hub.t.ui.yes : ""}),
    ]);
    const open = function () {
      document.querySelectorAll("#recipients tr.chosen").forEach(function (tr) { tr.classList.remove("chosen"); });
      row.classList.add("chosen");
      events(r);
    };
    row.addEventListener("click", open);
    row.addEventListener("keydown", function (event) { if (event.key === "Enter") open(); });
    return row;
  }

  async function loadRecipients() {
    const status = $("recipient-status").value;
    try {
      const page = await hub.api("GET", base + "/recipients?limit=" + PAGE + "&after=" + after + (status ? "&status=" + status : ""));
      const body = hub.clear(document.querySelector("#recipients tbody"));
      page.items.forEach(function (r) { body.appendChild(recipientRow(r)); });
      nextAfter = page.next_after;
      $("next-page").disabled = nextAfter === null;
      $("first-page").disabled = after === 0;
      $("no-recipients").hidden = page.items.length > 0;
    } catch (err) {
      hub.failed(err);
    }
  }

  function who(hit) {
    if (hit.human) return el("span", {class: "badge good", text: t.person + (hit.reason ? " (" + (t.machine_reason[hit.reason] || hit.reason) + ")" : "")});
    return el("span", {class: "badge warn", text: t.machine + ": " + (t.machine_reason[hit.reason] || hit.reason || "")});
  }

  async function events(r) {
    try {
      const data = await hub.api("GET", base + "/recipients/" + r.id + "/events");
      $("events").hidden = false;
      $("events-address").textContent = r.address;
      const body = hub.clear(document.querySelector("#events tbody"));
      data.hits.forEach(function (hit) {
        body.appendChild(el("tr", {dataset: {kind: hit.kind, human: String(hit.human)}}, [
          el("td", {text: hub.when(hit.at)}),
          el("td", {text: t.event_kind[hit.kind] || hit.kind}),
          el("td", {}, hit.kind === "unsubscribe" ? "" : who(hit)),
          el("td", {class: "link-url", text: hit.link_number ? "#" + hit.link_number + " " + (hit.url || "") : ""}),
          el("td", {text: hit.ip || ""}),
          el("td", {class: "agent", text: hit.user_agent || ""}),
        ]));
      });
      data.bounces.forEach(function (b) {
        body.appendChild(el("tr", {dataset: {kind: "bounce"}}, [
          el("td", {text: hub.when(b.at)}),
          el("td", {text: t.bounce_kind[b.kind] || b.kind}),
          el("td", {text: b.status || ""}), el("td", {}), el("td", {}),
          el("td", {class: "agent", text: b.diagnostic}),
        ]));
      });
      $("no-events").hidden = data.hits.length + data.bounces.length > 0;
      $("events").scrollIntoView({block: "nearest"});
    } catch (err) {
      hub.failed(err);
    }
  }

  $("bucket").addEventListener("change", loadStats);
  $("refresh").addEventListener("click", function () { loadStats(); loadRecipients(); });
  $("recipient-status").addEventListener("change", function () { after = 0; loadRecipients(); });
  $("first-page").addEventListener("click", function () { after = 0; loadRecipients(); });
  $("next-page").addEventListener("click", function () { if (nextAfter !== null) { after = nextAfter; loadRecipients(); } });
  loadStats();
  loadRecipients();
})();
