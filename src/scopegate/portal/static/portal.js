// scopegate portal: copy-to-clipboard and dependent-scope ticking. Plain JS, no build step.
// Everything here is a convenience: forms work without it (the server adds dependent scopes).
"use strict";

function copySecret(button) {
  const input = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copy-status");
  const done = (ok) => {
    button.textContent = ok ? "Copied" : "Copy";
    if (status) {
      status.textContent = ok ? "Copied to the clipboard." : "Select the secret and copy it by hand.";
    }
  };
  const fallback = () => {
    input.focus();
    input.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    done(ok);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(() => done(true), fallback);
  } else {
    fallback();
  }
}

function setUpScopePicker(fieldset) {
  const deps = JSON.parse(fieldset.dataset.scopeDeps || "{}");
  const boxes = new Map();
  fieldset.querySelectorAll("input[data-scope]").forEach((box) => boxes.set(box.dataset.scope, box));
  const allBox = fieldset.querySelector("#scope-All");
  const summary = fieldset.querySelector("#scope-summary");
  // What the user ticked themselves; the rest of the ticks are what those need.
  const explicit = new Set([...boxes].filter(([, box]) => box.checked).map(([name]) => name));

  function neededBy() {
    const needed = new Map();  // scope -> the explicit scope that needs it
    for (const root of explicit) {
      const pending = [...(deps[root] || [])];
      while (pending.length) {
        const name = pending.pop();
        if (explicit.has(name) || needed.has(name)) continue;
        needed.set(name, root);
        pending.push(...(deps[name] || []));
      }
    }
    return needed;
  }

  function refresh() {
    const needed = neededBy();
    const everything = allBox && allBox.checked;
    for (const [name, box] of boxes) {
      box.checked = explicit.has(name) || needed.has(name);
      box.disabled = everything;
      const note = fieldset.querySelector(`[data-needed-for="${CSS.escape(name)}"]`);
      if (note) {
        note.hidden = !needed.has(name) || everything;
        note.textContent = needed.has(name) ? `needed by ${needed.get(name)}` : "";
      }
      box.closest(".scope").classList.toggle("is-needed", needed.has(name) && !everything);
    }
    fieldset.querySelectorAll("[data-group-toggle]").forEach((toggle) => {
      const group = fieldset.querySelectorAll(`[data-group="${CSS.escape(toggle.dataset.groupToggle)}"] input[data-scope]`);
      toggle.checked = [...group].every((box) => box.checked);
      toggle.disabled = everything;
    });
    if (summary) {
      const shown = [...needed.keys()].filter((name) => boxes.has(name)).sort();
      summary.textContent = everything
        ? "All is ticked: the key holds every scope."
        : shown.length ? `Also ticked because other scopes need them: ${shown.join(", ")}.` : "";
    }
  }

  for (const [name, box] of boxes) {
    box.addEventListener("change", () => {
      if (box.checked) explicit.add(name); else explicit.delete(name);
      refresh();
    });
  }
  fieldset.querySelectorAll("[data-group-toggle]").forEach((toggle) => {
    toggle.closest(".group-toggle").hidden = false;
    toggle.addEventListener("change", () => {
      const group = fieldset.querySelectorAll(`[data-group="${CSS.escape(toggle.dataset.groupToggle)}"] input[data-scope]`);
      group.forEach((box) => { if (toggle.checked) explicit.add(box.dataset.scope); else explicit.delete(box.dataset.scope); });
      refresh();
    });
  });
  if (allBox) allBox.addEventListener("change", refresh);
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", () => copySecret(button));
  });
  document.querySelectorAll("fieldset[data-scope-deps]").forEach(setUpScopePicker);
});
