// The review console's keyboard: j/k move, a accept, r reject, e edit, 1-5 score, ? help.
// Everything here also works with the mouse; the keys only press the same buttons.
(function () {
  "use strict";

  const typing = (el) =>
    el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  const rows = () => Array.from(document.querySelectorAll("#queue li[data-url]"));
  const form = () => document.getElementById("review-form");

  function markCurrent() {
    const article = document.querySelector("#item article.call");
    rows().forEach((row) => row.classList.toggle("current", !!article && row.dataset.call === article.dataset.call));
    const current = document.querySelector("#queue li.current");
    if (current) current.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const list = rows();
    if (!list.length) return;
    let index = list.findIndex((row) => row.classList.contains("current"));
    index = index < 0 ? 0 : Math.min(list.length - 1, Math.max(0, index + step));
    htmx.ajax("GET", list[index].dataset.url, { target: "#item", swap: "innerHTML" });
  }

  function submit(action, score) {
    const f = form();
    if (!f) return;
    f.elements.action.value = action;
    f.elements.quality_score.value = score === undefined ? "" : String(score);
    f.requestSubmit();
  }

  function addRow() {
    const template = document.getElementById("editor-row");
    const body = document.querySelector("#editor tbody");
    if (!template || !body) return;
    body.appendChild(template.content.cloneNode(true));
    body.lastElementChild.querySelector("input").focus();
  }

  // Buttons set the action (and score) the form posts; clicks and keys share this path.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("#review-form button[data-action]");
    if (button) {
      const score = button.dataset.score ? (Number(button.dataset.score) - 1) / 4 : undefined;
      form().elements.action.value = button.dataset.action;
      form().elements.quality_score.value = score === undefined ? "" : String(score);
      return;
    }
    if (event.target.closest("#add-row")) addRow();
    const remove = event.target.closest(".remove-row");
    if (remove) {
      const row = remove.closest("tr");
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      if (next) next.querySelector("input").focus();
    }
  });

  document.addEventListener("keydown", (event) => {
    const help = document.getElementById("help");
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submit("correct");
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (key === "?") help.hidden = !help.hidden;
    else if (key === "Escape") help.hidden = true;
    else if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "a") submit("accept");
    else if (key === "r") submit("reject");
    else if (key >= "1" && key <= "5") submit("score", (Number(key) - 1) / 4);
    else if (key === "e") {
      const field = document.querySelector("#review-form #editor input, #review-form textarea");
      if (field) field.focus();
    } else return;
    event.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", markCurrent);
  document.addEventListener("DOMContentLoaded", markCurrent);
})();
