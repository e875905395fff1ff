// The bot form shows only the fields of the chosen kind, with that kind's labels and help texts.
(function () {
  "use strict";
  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function row(name) {
    return document.querySelector(".form-row.field-" + name) || document.querySelector(".fieldBox.field-" + name);
  }
  function setHelp(name, text) {
    var r = row(name);
    var help = r && r.querySelector(".help");
    if (help && text) { help.textContent = text; }
  }
  function apply(hints, all, kind) {
    var hint = hints[kind];
    if (!hint) { return; }
    all.forEach(function (name) {
      var r = row(name === "chat_ids" ? "chat_ids_text" : name);
      if (r) { r.hidden = hint.fields.indexOf(name === "chat_ids_text" ? "chat_ids" : name) < 0; }
    });
    var secret = row("secret");
    var label = secret && secret.querySelector("label");
    if (label && hint.secret_label) { label.textContent = hint.secret_label + ":"; }
    setHelp("url", hint.url_help);
    setHelp("secret", hint.secret_help);
    setHelp("mentions", hint.mention_help);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var hints = data("bot-kind-hints");
    var all = data("bot-kind-fields");
    var select = document.querySelector("select[data-bot-kind]");
    if (!hints || !all || !select) { return; }
    select.addEventListener("change", function () { apply(hints, all, select.value); });
    apply(hints, all, select.value);
  });
})();
