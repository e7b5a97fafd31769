/* Keyboard review (see llmops/web/review_pages.py): j/k or arrows move, number keys pick values
   (each press fills the next config group still unset), Enter submits, s skips. */
(function () {
  "use strict";
  function typing(el) {
    var tag = (el && el.tagName) || "";
    return tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && el.type !== "radio" && el.type !== "checkbox");
  }
  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }
  document.addEventListener("keydown", function (ev) {
    var root = document.getElementById("review");
    if (!root || ev.altKey || ev.metaKey) return;
    var form = document.getElementById("label-form");
    if (typing(ev.target)) {
      if (ev.key === "Enter" && ev.ctrlKey) { ev.preventDefault(); submit(form); }
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    if (ev.ctrlKey) return;
    var go = function (attr) { var url = root.getAttribute(attr); if (url) window.location.assign(url); };
    if (ev.key === "j" || ev.key === "ArrowDown" || ev.key === "ArrowRight") { ev.preventDefault(); go("data-next"); return; }
    if (ev.key === "k" || ev.key === "ArrowUp" || ev.key === "ArrowLeft") { ev.preventDefault(); go("data-prev"); return; }
    if (ev.key === "s") { ev.preventDefault(); submit(document.getElementById("skip-form")); return; }
    if (ev.key === "Enter") { ev.preventDefault(); submit(form); return; }
    if (/^[0-9]$/.test(ev.key)) {
      var groups = Array.prototype.slice.call(document.querySelectorAll(".label-group"));
      var open = groups.filter(function (g) { return !g.querySelector("input[type=radio]:checked"); });
      var target = open.length ? open[0] : groups[groups.length - 1];
      var radio = target && target.querySelector('input[type=radio][data-key="' + ev.key + '"]');
      if (radio) { ev.preventDefault(); radio.checked = true; target.classList.add("picked"); }
    }
  });
})();
