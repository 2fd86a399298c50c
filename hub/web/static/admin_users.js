// /admin/users: the list of users, and one form that creates a user or changes the chosen one.
(function () {
  "use strict";
  const hub = window.hub, admin = window.admin, t = hub.t, a = hub.t.adm;
  const form = document.getElementById("user-form");
  const body = document.querySelector("#users tbody");
  const field = function (name) { return document.getElementById("u-" + name); };
  const me = Number(document.getElementById("users").dataset.me);
  let editing = null;  // the user being changed, or null when the form creates one

  function conflict(message) {
    return /extension/i.test(message) ? {field: "extension", text: a.extension_taken} : {field: "username", text: a.username_taken};
  }

  function row(user) {
    const toggle = hub.el("button", {
      type: "button", class: user.is_active ? "danger" : "",
      text: user.is_active ? a.deactivate : a.activate,
      onclick: function () { setActive(user, !user.is_active); },
    });
    return hub.el("tr", {class: user.is_active ? "" : "off", dataset: {username: user.username}}, [
      hub.el("td", {text: user.full_name}),
      hub.el("td", {text: user.username}),
      hub.el("td", {class: "role", text: admin.label(t.roles, user.role)}),
      hub.el("td", {class: "extension", text: user.extension || ""}),
      hub.el("td", {text: admin.label(a.languages, user.locale)}),
      hub.el("td", {}, hub.el("span", {class: "badge " + (user.is_active ? "good" : "bad"), text: user.is_active ? a.active : a.inactive})),
      hub.el("td", {class: "actions"}, [
        hub.el("button", {type: "button", class: "edit", text: t.ui.edit, onclick: function () { edit(user); }}),
        user.id === me ? null : toggle,  // deactivating oneself would lock the admin out
      ]),
    ]);
  }

  async function load() {
    try {
      const data = await hub.api("GET", "/api/users");
      hub.clear(body);
      if (!data.items.length) body.appendChild(hub.el("tr", {}, hub.el("td", {colspan: 7, class: "muted", text: a.no_users})));
      data.items.forEach(function (user) { body.appendChild(row(user)); });
    } catch (err) { hub.failed(err); }
  }

  // The parts of the form that differ between changing a user and creating one.
  function formMode(editingUser) {
    document.getElementById("u-active-row").hidden = !editingUser;
    document.getElementById("u-password-hint").hidden = !editingUser;
    const passwordLabel = document.getElementById("u-password-label");
    passwordLabel.textContent = editingUser ? passwordLabel.dataset.edit : passwordLabel.dataset.create;
    document.getElementById("user-save").textContent = editingUser ? t.ui.save : t.ui.create;
    document.getElementById("user-cancel").hidden = !editingUser;
  }

  function edit(user) {
    editing = user;
    admin.clearErrors(form);
    document.getElementById("user-form-title").textContent = a.edit_user + ": " + user.username;
    field("username").value = user.username;
    field("username").disabled = true;
    field("full_name").value = user.full_name;
    field("role").value = user.role;
    field("extension").value = user.extension || "";
    field("locale").value = user.locale;
    field("password").value = "";
    field("active").checked = user.is_active;
    formMode(true);
    form.scrollIntoView({block: "start"});
    field("full_name").focus();
  }

  function reset() {
    editing = null;
    form.reset();
    admin.clearErrors(form);
    field("username").disabled = false;
    document.getElementById("user-form-title").textContent = a.new_user;
    formMode(false);
  }

  async function setActive(user, active) {
    if (active || confirm(t.ui.confirm)) {
      try {
        await hub.api("PATCH", "/api/users/" + user.id, {is_active: active});
        hub.toast(t.ui.saved);
        await load();
      } catch (err) { hub.failed(err); }
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const values = {
      full_name: field("full_name").value.trim(),
      role: field("role").value,
      extension: field("extension").value.trim() || null,
      locale: field("locale").value,
    };
    const password = field("password").value;
    if (password) values.password = password;
    const save = document.getElementById("user-save");
    save.disabled = true;
    try {
      if (editing) {
        values.is_active = field("active").checked;
        await hub.api("PATCH", "/api/users/" + editing.id, values);
        hub.toast(t.ui.saved);
      } else {
        values.username = field("username").value.trim();
        await hub.api("POST", "/api/users", values);
        hub.toast(a.created);
      }
      reset();
      await load();
    } catch (err) {
      admin.showErrors(form, err, a.field_errors, conflict);
    } finally {
      save.disabled = false;
    }
  });
  document.getElementById("user-cancel").addEventListener("click", reset);
  load();
})();
