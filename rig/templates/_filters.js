// The index's filters. Plain script, no modules and no fetches: the page is opened from disk
// (file://) and its Content-Security-Policy admits this script only by its hash. Every fact it
// filters on is a data attribute that rig.report wrote, so the table and this code stay in step.
// The filters and the selected view live in the URL query (?peer=aiortc&outcome=failed,xfailed
// &view=versions): read on load, written back with history.replaceState, so a link shares a view.
(function () {
  "use strict";
  const form = document.getElementById("filters");
  const matrix = document.getElementById("matrix");
  if (!form || !matrix) return;
  form.hidden = false; // without this script the controls would do nothing, so they start hidden

  const field = (name) => form.elements.namedItem(name);
  const kindOk = (want, kind) => want === "" || want === kind;

  const SELECTS = ["peer", "polite", "impolite", "scenario", "view"];
  const boxes = () => Array.from(form.querySelectorAll("input[name=outcome]"));

  function fromQuery() {
    const q = new URLSearchParams(window.location.search);
    SELECTS.forEach((name) => {
      const el = field(name);
      if (el && q.has(name) && Array.from(el.options).some((o) => o.value === q.get(name))) el.value = q.get(name);
    });
    if (q.has("outcome")) {
      const shown = new Set(q.get("outcome").split(","));
      boxes().forEach((box) => { box.checked = shown.has(box.value); });
    }
    field("intermittent").checked = q.get("intermittent") === "1";
  }

  function toQuery() {
    const q = new URLSearchParams(window.location.search);
    SELECTS.forEach((name) => {
      const el = field(name);
      if (el && el.value !== "" && el.selectedIndex > 0) q.set(name, el.value); else q.delete(name);
    });
    const shown = boxes().filter((box) => box.checked).map((box) => box.value);
    if (shown.length === boxes().length) q.delete("outcome"); else q.set("outcome", shown.join(","));
    if (field("intermittent").checked) q.set("intermittent", "1"); else q.delete("intermittent");
    const search = q.toString();
    try {
      history.replaceState(null, "", window.location.pathname + (search ? "?" + search : "") + window.location.hash);
    } catch (e) { /* a browser that refuses to rewrite a file: URL keeps the filters, not the link */ }
  }

  function showView() {
    const view = field("view") ? field("view").value : "pairs";
    document.querySelectorAll(".view[data-view]").forEach((el) => { el.hidden = el.dataset.view !== view; });
  }

  function wanted() {
    const outcomes = new Set();
    form.querySelectorAll("input[name=outcome]").forEach((box) => { if (box.checked) outcomes.add(box.value); });
    return {
      peer: field("peer").value,
      polite: field("polite").value,
      impolite: field("impolite").value,
      scenario: field("scenario").value,
      intermittent: field("intermittent").checked,
      outcomes,
    };
  }

  function pairOk(w, el) {
    const p = el.dataset.polite, i = el.dataset.impolite;
    return kindOk(w.polite, p) && kindOk(w.impolite, i) && (w.peer === "" || p === w.peer || i === w.peer);
  }

  function outcomesOk(w, list) {
    return list.split(" ").some((o) => w.outcomes.has(o));
  }

  function apply() {
    const w = wanted();
    const heads = Array.from(matrix.querySelectorAll("thead th[data-col]"));
    const colOk = heads.map((th) => pairOk(w, th));
    const colUsed = heads.map(() => false);
    let shown = 0, total = 0;
    matrix.querySelectorAll("tbody tr[data-scenario]").forEach((tr) => {
      const rowOk = w.scenario === "" || tr.dataset.scenario === w.scenario;
      let rowUsed = false;
      tr.querySelectorAll("td[data-col]").forEach((td) => {
        const col = Number(td.dataset.col);
        const filled = td.dataset.outcomes !== undefined;
        if (filled) total += 1;
        const match = filled && rowOk && colOk[col] && outcomesOk(w, td.dataset.outcomes)
          && (!w.intermittent || td.dataset.intermittent === "1");
        td.classList.toggle("filtered", !match);
        if (match) {
          shown += 1;
          rowUsed = true;
          colUsed[col] = true;
        }
      });
      tr.hidden = !rowUsed;
    });
    heads.forEach((th, col) => {
      const hide = !colUsed[col];
      th.hidden = hide;
      matrix.querySelectorAll(`td[data-col="${col}"]`).forEach((td) => { td.hidden = hide; });
    });
    document.querySelectorAll("table.cases tbody tr[data-scenario]").forEach((tr) => {
      tr.hidden = !((w.scenario === "" || tr.dataset.scenario === w.scenario) && pairOk(w, tr)
        && w.outcomes.has(tr.dataset.outcome) && (!w.intermittent || tr.dataset.intermittent === "1"));
    });
    document.getElementById("filter-count").textContent = `${shown} of ${total} cells shown`;
  }

  function update() {
    apply();
    showView();
    toQuery();
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  // the browser resets the fields only after the reset event: do it here, then update at once
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    form.querySelectorAll("input").forEach((el) => { el.checked = el.defaultChecked; el.value = el.defaultValue; });
    form.querySelectorAll("select").forEach((el) => {
      [...el.options].forEach((o) => { o.selected = o.defaultSelected; });
    });
    update();
  });
  fromQuery();
  apply();
  showView();
})();
