// What every page's script shares: the page's texts, the JSON API with the session cookie,
// building elements without innerHTML, dates, and short messages in the corner.
(function () {
  "use strict";
  const t = JSON.parse(document.getElementById("texts").textContent);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) {
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    [].concat(children === undefined ? [] : children).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    });
    return node;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || ("HTTP " + status));
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, url, body) {
    const init = {method: method, credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = {message: text}; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function toast(message, isError) {
    const box = document.getElementById("toast");
    const item = el("div", {class: isError ? "error" : "", text: message});
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, isError ? 8000 : 3000);
  }

  function failed(error) {
    toast((t.ui ? t.ui.error + ": " : "") + error.message, true);
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      const args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  window.hub = {t: t, el: el, api: api, ApiError: ApiError, toast: toast, failed: failed, when: when, clear: clear, debounce: debounce};
})();
