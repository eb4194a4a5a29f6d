// modescope: progressive enhancement only; every page works without this file.
// Dataset grid shortcuts: j/k move focus, x select, f flag (the chosen reason, "noisy" by
// default), u unflag. Selection is the tiles' checkboxes, so the plain form does the work.
"use strict";

(function () {
  const form = document.getElementById("curate");
  if (!form) return;
  const tiles = () => Array.from(document.querySelectorAll("li.tile[data-id]"));
  const box = (tile) => tile.querySelector("input[type=checkbox][name=ids]");
  let current = -1;

  function focusTile(i) {
    const all = tiles();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((t) => t.classList.remove("focus"));
    const tile = all[current];
    tile.classList.add("focus");
    const cb = box(tile);
    (cb || tile).focus({ preventScroll: true });
    tile.scrollIntoView({ block: "nearest" });
  }

  function sync(tile) {
    const cb = box(tile);
    tile.classList.toggle("selected", !!(cb && cb.checked));
  }

  function submit(action) {
    const all = tiles();
    const picked = all.filter((t) => box(t) && box(t).checked);
    if (!picked.length && current >= 0 && box(all[current])) box(all[current]).checked = true;
    if (!all.some((t) => box(t) && box(t).checked)) return;
    if (action === "unflag") {
      form.querySelector("button.unflag").click();
    } else {
      form.querySelector("button.flag").click();
    }
  }

  document.addEventListener("change", (ev) => {
    const tile = ev.target.closest && ev.target.closest("li.tile");
    if (tile) sync(tile);
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "select" || (tag === "input" && ev.target.type !== "checkbox")) return;
    const all = tiles();
    if (document.activeElement) {
      const tile = document.activeElement.closest && document.activeElement.closest("li.tile");
      if (tile) current = all.indexOf(tile);
    }
    switch (ev.key) {
      case "j": focusTile(current + 1); break;
      case "k": focusTile(current < 0 ? 0 : current - 1); break;
      case "x": {
        if (current < 0) focusTile(0);
        const cb = box(all[current]);
        if (cb) { cb.checked = !cb.checked; sync(all[current]); }
        break;
      }
      case "f": submit("flag"); break;
      case "u": submit("unflag"); break;
      default: return;
    }
    ev.preventDefault();
  });

  // after a flag/unflag the page reloads: put focus back on the tile the user was on
  const last = sessionStorage.getItem("modescope.focus");
  form.addEventListener("submit", () => {
    if (current >= 0) sessionStorage.setItem("modescope.focus", String(current));
  });
  if (last !== null) {
    sessionStorage.removeItem("modescope.focus");
    focusTile(Number(last));
  }
  tiles().forEach(sync);
})();
