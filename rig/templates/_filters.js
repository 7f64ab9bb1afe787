// The index's filters. Plain script, no modules and no fetches: the page is opened from disk
// (file://) and its Content-Security-Policy admits this script only by its hash. Every fact it
// filters on is a data attribute that report.py wrote, so the table and this code stay in step.
(function () {
  "use strict";
  const form = document.getElementById("filters");
  const matrix = document.getElementById("matrix");
  if (!form || !matrix) return;
  form.hidden = false; // without this script the controls would do nothing, so they start hidden

  const field = (name) => form.elements.namedItem(name);
  const kindOk = (want, kind) => want === "" || want === kind;

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

  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("reset", () => setTimeout(apply, 0)); // the reset lands after the event
  apply();
})();
