(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("fleet-data").textContent);
  const $ = (id) => document.getElementById(id);
  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, (c) => ESC[c]);
  const STATUS = { p: "passed", f: "failed", e: "error", s: "skipped" };
  const STATE_LABEL = { ok: "ok", failed: "failed", unreachable: "unreachable", suite_error: "suite not run" };
  const ncols = D.columns.length;
  const hosts = D.hosts;
  // Each host's OS release ("Debian GNU/Linux 13 (trixie)"): a fleet in migration runs several.
  const hostOs = hosts.map((h) => String((h.versions || {}).os || ""));
  const rows = D.rows;

  const pill = (cls, text) => `<span class="pill ${esc(cls)}">${esc(text)}</span>`;
  const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : esc(JSON.stringify(v)));
  const rowLabel = (r) => hosts[r.h].host + (r.g === null ? "" : ".gpu" + r.g);

  // ---- header -------------------------------------------------------------------------------
  function renderHeader() {
    const t = D.totals;
    const flagged = (D.comparison.flagged || []).length;
    $("run-id").textContent = D.run_id;
    $("run-id").insertAdjacentHTML(
      "afterend",
      t.ok ? '<span class="verdict ok">FLEET OK</span>' : '<span class="verdict bad">FLEET FAILED</span>'
    );
    const versions = [...new Set(hosts.map((h) => h.labrig_version).filter(Boolean))].join(", ");
    const rendered = D.rendered && D.rendered !== D.generated ? ` (rendered ${D.rendered})` : "";
    $("meta").textContent =
      `generated ${D.generated}${rendered} · labrig ${versions || "?"} · ` +
      `${t.checks.passed + t.checks.failed + t.checks.error + t.checks.skipped} check results`;
    const card = (id, n, label, cls) =>
      `<div class="card ${cls}" id="count-${id}" data-count="${n}"><b>${n}</b><span>${esc(label)}</span></div>`;
    $("cards").innerHTML = [
      card("hosts", t.hosts, "hosts", ""),
      card("ok", t.states.ok, "hosts ok", t.states.ok ? "good" : ""),
      card("failed", t.states.failed, "hosts failed", t.states.failed ? "bad" : ""),
      card("unreachable", t.states.unreachable, "unreachable", t.states.unreachable ? "bad" : ""),
      card("suite-error", t.states.suite_error, "suite not run", t.states.suite_error ? "bad" : ""),
      card("gpus", t.gpus, "GPUs", ""),
      card("failing-gpus", t.failing_gpus, "GPUs failing", t.failing_gpus ? "bad" : ""),
      card("slow-gpus", flagged, "GPUs slow vs model", flagged ? "warn" : ""),
      card("checks-failed", t.checks.failed + t.checks.error, "checks failed", t.checks.failed + t.checks.error ? "bad" : ""),
      card("checks-passed", t.checks.passed, "checks passed", ""),
      card("checks-skipped", t.checks.skipped, "checks skipped", ""),
    ].join("");
  }

  // ---- grid ---------------------------------------------------------------------------------
  function renderGrid() {
    const groupCells = D.groups
      .map((g) => `<th colspan="${g.count}" title="${esc(g.name)}">${g.count > 1 ? esc(g.name) : ""}</th>`)
      .join("");
    const idCells = D.columns
      .map((id, j) => `<th class="id" title="${esc(id)}"><div>${esc(shortId(id, j))}</div></th>`)
      .join("");
    $("grid-head").innerHTML =
      `<tr class="groups"><th class="first subj"></th><th class="st"></th><th class="model"></th>` +
      `<th class="drv"></th><th class="os"></th>${groupCells}</tr>` +
      `<tr class="ids"><th class="first subj">host / GPU</th><th class="st">state</th>` +
      `<th class="model">GPU model</th><th class="drv">driver</th><th class="os">OS</th>${idCells}</tr>`;

    const groupStarts = new Set(D.groups.map((g) => g.start));
    const parts = [];
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const host = hosts[r.h];
      const isHost = r.g === null;
      const subject = isHost ? `<a data-host="${r.h}" title="${esc(host.host)}">${esc(host.host)}</a>` : `gpu${esc(r.g)}`;
      const state = isHost ? host.state : r.ok ? "ok" : "failed";
      const slow = r.slow ? pill("slow", "slow " + r.slow.toFixed(2) + "×") : "";
      let html =
        `<tr class="${isHost ? "hostrow" : "gpurow"}" data-r="${i}"><td class="first subj">${subject}</td>` +
        `<td class="st">${pill(state, STATE_LABEL[state])}${slow}</td>` +
        `<td class="model" title="${esc(r.model)}">${esc(r.model.replace("NVIDIA ", ""))}</td>` +
        `<td class="drv">${isHost ? esc((host.versions || {}).driver || "") : ""}</td>` +
        `<td class="os" title="${isHost ? esc(hostOs[r.h]) : ""}">` +
        `${isHost ? esc(hostOs[r.h].replace(" GNU/Linux", "")) : ""}</td>`;
      if (isHost && (host.state === "unreachable" || host.state === "suite_error")) {
        html += `<td class="wide" colspan="${ncols}" title="${esc(host.reason)}">${esc(host.reason)}</td>`;
      } else {
        const byCol = new Array(ncols);
        for (const cell of r.cells) byCol[cell[0]] = cell;
        for (let j = 0; j < ncols; j++) {
          const cell = byCol[j];
          const gs = groupStarts.has(j) ? " gs" : "";
          if (!cell) {
            html += `<td class="x${gs}"></td>`;
          } else {
            const adv = cell[4] ? " adv" : "";
            html += `<td class="c${gs}" data-c="${j}"><i class="${cell[1]}${adv}"></i></td>`;
          }
        }
      }
      parts.push(html + "</tr>");
    }
    $("grid-body").innerHTML = parts.join("");
  }

  function shortId(id, j) {
    // The group name is in the row above: repeating it in every column header wastes space.
    const group = D.groups.find((g) => j >= g.start && j < g.start + g.count);
    return group && group.count > 1 && id.startsWith(group.name + ".") ? id.slice(group.name.length + 1) : id;
  }

  // ---- filters ------------------------------------------------------------------------------
  const hostHasModel = hosts.map((h) => new Set((h.gpus || []).map((g) => g.name)));

  function applyFilters() {
    const failedOnly = $("filter-failed").checked;
    const model = $("filter-model").value;
    const os = $("filter-os").value;
    const query = $("filter-host").value.trim().toLowerCase();
    const rowEls = $("grid-body").rows;
    let shown = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const host = hosts[r.h];
      let visible = true;
      if (failedOnly) visible = r.g === null ? host.state !== "ok" : !r.ok;
      if (visible && model) visible = r.g === null ? hostHasModel[r.h].has(model) : r.model === model;
      if (visible && os) visible = hostOs[r.h] === os;
      if (visible && query) visible = host.host.toLowerCase().includes(query);
      rowEls[i].hidden = !visible;
      if (visible) shown++;
    }
    $("shown").textContent = `showing ${shown} of ${rows.length} rows`;
    $("shown").dataset.shown = String(shown);
  }

  function setupFilters() {
    const models = [...new Set(rows.filter((r) => r.g !== null).map((r) => r.model))].sort();
    $("filter-model").insertAdjacentHTML(
      "beforeend",
      models.map((m) => `<option value="${esc(m)}">${esc(m)}</option>`).join("")
    );
    const releases = [...new Set(hostOs.filter(Boolean))].sort();
    $("filter-os").insertAdjacentHTML(
      "beforeend",
      releases.map((o) => `<option value="${esc(o)}">${esc(o)}</option>`).join("")
    );
    $("filter-failed").addEventListener("change", applyFilters);
    $("filter-model").addEventListener("change", applyFilters);
    $("filter-os").addEventListener("change", applyFilters);
    let timer = 0;
    $("filter-host").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(applyFilters, 120);
    });
  }

  // ---- detail panel -------------------------------------------------------------------------
  let selected = null;

  function kv(pairs) {
    const body = pairs
      .filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`)
      .join("");
    return body ? `<table>${body}</table>` : "";
  }

  function showCell(i, j) {
    const r = rows[i];
    const cell = r.cells.find((c) => c[0] === j);
    if (!cell) return;
    const status = STATUS[cell[1]];
    const measurements = cell[3] || {};
    const mrows = Object.keys(measurements).map((k) => [k, fmt(measurements[k])]);
    $("detail").innerHTML =
      `<h3 id="detail-check">${esc(D.columns[j])}</h3>` +
      `<div>${esc(rowLabel(r))} ${pill(status, status)} ${cell[4] ? "(advisory)" : ""}</div>` +
      `<div class="reason ${status}" id="detail-reason">${esc(D.reasons[cell[2]])}</div>` +
      (mrows.length ? `<h4>measurements</h4>${kv(mrows)}` : "") +
      kv([
        ["GPU model", r.g === null ? null : esc(r.model)],
        ["duration", cell[5] ? cell[5].toFixed(2) + " s" : null],
        ["framework", cell[6] ? esc(cell[6]) : null],
      ]) +
      `<p><a href="#" data-host="${r.h}">all of ${esc(hosts[r.h].host)} →</a></p>`;
    if (selected) selected.classList.remove("sel");
    selected = $("grid-body").rows[i].querySelector(`td[data-c="${j}"]`);
    if (selected) selected.classList.add("sel");
  }

  // A host's burn-in beside its verify results: the run, each device's figures, and its plots
  // (inline SVG drawn by verify/burn_in/plots.py when the page was made).
  function burnInHtml(b) {
    if (!b) return "";
    const verdict = b.ok ? pill("ok", "passed") : pill("failed", "failed");
    const ran = typeof b.duration_s === "number" ? (b.duration_s / 60).toFixed(2) + " min" : "?";
    const devices = (b.devices || [])
      .map((d) => {
        const notRun = Object.keys(d.dtypes_not_run || {})
          .map((k) => `${esc(k)} not run: ${esc(d.dtypes_not_run[k])}`)
          .join("; ");
        const figures = [
          `${esc(d.iterations)} GEMM iterations (${esc((d.dtypes || []).join(", "))})`,
          d.tflops_median === null ? null : `median ${fmt(d.tflops_median)} TFLOPS`,
          `${esc(d.memory_passes)} memory passes`,
          d.temperature_max_c === null ? null : `max ${esc(d.temperature_max_c)} °C`,
        ].filter(Boolean);
        const who = [d.label, d.name, d.uuid].filter(Boolean).map(esc).join(" · ");
        return (
          `<div class="burnin-device" data-device="${esc(d.label)}"><h5>${who}</h5>` +
          `<p>${figures.join(" · ")}${notRun ? `<br><small>${notRun}</small>` : ""}</p>` +
          `<div class="burnin-plots">${d.svg || ""}</div></div>`
        );
      })
      .join("");
    return (
      `<h4 id="detail-burn-in">burn-in ${verdict}</h4>` +
      kv([
        ["started", esc(b.started)],
        ["ran", `${ran} of ${esc(b.minutes)} min` + (b.interrupted ? `, stopped by ${esc(b.interrupted)}` : "")],
        [
          "checks",
          `${b.counts.passed} passed, ${b.counts.failed} failed, ${b.counts.error} errors, ${b.counts.skipped} skipped`,
        ],
        ["first failure", b.first_failure ? esc(`${b.first_failure.check_id}: ${b.first_failure.reason}`) : null],
        ["DCGM", b.dcgm ? "dcgmi diag ran" : esc(b.dcgm_why_not || "not run")],
      ]) +
      devices
    );
  }

  function showHost(h) {
    const host = hosts[h];
    const v = host.versions || {};
    const fw = host.framework ? `${host.framework.name || "?"} ${host.framework.version || ""}` : null;
    const failing = [];
    rows.forEach((r, i) => {
      if (r.h !== h) return;
      for (const c of r.cells) {
        if (c[1] === "f" || c[1] === "e") failing.push([i, c]);
      }
    });
    const link = (g) => (g.link && g.link.max ? ` · link ${esc(g.link.current)} of ${esc(g.link.max)}` : "");
    const gpus = (host.gpus || [])
      .map(
        (g) =>
          `<li>gpu${esc(g.index)}: ${esc(g.name)} · cc ${esc(g.compute_capability)} · ` +
          `${esc(g.memory_total_mib)} MiB · ${esc(g.pci_bus_id)} · UUID ${esc(g.uuid)}` +
          `${g.serial ? " · serial " + esc(g.serial) : ""}${g.vbios ? " · VBIOS " + esc(g.vbios) : ""}` +
          `${link(g)}</li>`
      )
      .join("");
    $("detail").innerHTML =
      `<h3 id="detail-host">${esc(host.host)}</h3><div>${pill(host.state, STATE_LABEL[host.state])}</div>` +
      `<div class="reason ${host.state === "ok" ? "passed" : "failed"}">${esc(host.reason)}</div>` +
      kv([
        ["mode", esc(host.mode)],
        ["framework", esc(fw)],
        ["driver", esc(v.driver)],
        ["CUDA (driver)", esc(v.cuda_driver)],
        ["NVML", esc(v.nvml)],
        ["Python", esc(v.python)],
        ["kernel", esc(v.kernel)],
        ["OS", esc(v.os)],
        ["labrig", esc(host.labrig_version)],
        ["started", esc(host.started)],
        ["duration", typeof host.duration_s === "number" ? host.duration_s.toFixed(1) + " s" : null],
        [
          "checks",
          `${host.counts.passed} passed, ${host.counts.failed} failed, ${host.counts.error} errors, ` +
            `${host.counts.skipped} skipped`,
        ],
      ]) +
      (gpus ? `<h4>GPUs</h4><ul>${gpus}</ul>` : host.state === "ok" || host.state === "failed" ? "<p>no GPU</p>" : "") +
      burnInHtml(host.burn_in) +
      (failing.length
        ? `<h4>failing checks</h4><ul>${failing
            .map(
              ([i, c]) =>
                `<li><a href="#" data-row="${i}" data-col="${c[0]}">${esc(rowLabel(rows[i]))} ` +
                `${esc(D.columns[c[0]])}</a>: ${esc(D.reasons[c[2]])}</li>`
            )
            .join("")}</ul>`
        : "") +
      historyHtml(host.host);
  }

  // A host's trend over the stored runs (fleet.json "trends"): a square per run, oldest left;
  // only the checks that changed, or failed, in them.
  function historyHtml(name) {
    const t = (D.trends || {})[name];
    if (!t || t.runs.length < 2) return "";
    const hostClass = { ok: "p", failed: "f", unreachable: "n", suite_error: "e" };
    const squares = (classes, titles) =>
      classes.map((c, k) => `<td><i class="${c}" title="${esc(titles[k])}"></i></td>`).join("");
    const shown = t.checks.filter(
      (c) => new Set(c.states.replace(/-/g, "")).size > 1 || /[fe]/.test(c.states)
    );
    const rowsHtml = shown
      .map((c) => {
        const titles = [...c.states].map((s, k) => `${t.runs[k]}: ${STATUS[s] || "not run"}`);
        return (
          `<tr><th>${esc(c.subject === "host" ? "" : c.subject + " ")}${esc(c.check_id)}</th>` +
          `${squares([...c.states].map((s) => (s === "-" ? "n" : s)), titles)}</tr>`
        );
      })
      .join("");
    const hostTitles = t.states.map((s, k) => `${t.runs[k]}: ${STATE_LABEL[s] || s}`);
    return (
      `<h4 id="detail-history">history: ${t.runs.length} runs, ${esc(t.runs[0])} … ${esc(t.runs[t.runs.length - 1])}</h4>` +
      `<table class="trend"><tr><th>host</th>${squares(t.states.map((s) => hostClass[s] || "n"), hostTitles)}</tr>` +
      `${rowsHtml}</table>` +
      `<p>${t.checks.length - shown.length} checks passed, or were skipped, in every run that had them</p>`
    );
  }

  function setupClicks() {
    $("grid-body").addEventListener("click", (event) => {
      const link = event.target.closest("a[data-host]");
      if (link) {
        showHost(Number(link.dataset.host));
        return;
      }
      const td = event.target.closest("td[data-c]");
      if (td) showCell(Number(td.parentElement.dataset.r), Number(td.dataset.c));
    });
    $("detail").addEventListener("click", (event) => {
      const link = event.target.closest("a");
      if (!link) return;
      event.preventDefault();
      if (link.dataset.host !== undefined) showHost(Number(link.dataset.host));
      else if (link.dataset.row !== undefined) showCell(Number(link.dataset.row), Number(link.dataset.col));
    });
  }

  // ---- GPUs to return -----------------------------------------------------------------------
  function renderRma() {
    const list = D.rma || [];
    let html = `<h2>Failing GPUs: what to quote to the vendor (${list.length})</h2>`;
    if (!list.length) {
      $("rma").innerHTML = html + `<p class="note">No GPU has a failing check.</p>`;
      return;
    }
    html +=
      `<table id="rma-table"><thead><tr><th class="l">host</th><th class="l">GPU</th><th class="l">model</th>` +
      `<th class="l">serial</th><th class="l">UUID</th><th class="l">bus id</th><th class="l">VBIOS</th>` +
      `<th class="l">driver</th><th class="l">failing check</th><th class="l">reason</th></tr></thead><tbody>` +
      list
        .map(
          (g) =>
            `<tr><td class="l">${esc(g.host)}</td><td class="l">gpu${esc(g.gpu)}</td><td class="l">${esc(g.name)}</td>` +
            `<td class="l">${esc(g.serial || "not reported")}</td><td class="l">${esc(g.uuid)}</td>` +
            `<td class="l">${esc(g.pci_bus_id)}</td><td class="l">${esc(g.vbios)}</td><td class="l">${esc(g.driver)}</td>` +
            `<td class="l">${esc(g.check_id)}</td><td class="l">${esc(g.reason)}</td></tr>`
        )
        .join("") +
      "</tbody></table>";
    $("rma").innerHTML = html;
  }

  // ---- fleet comparison ---------------------------------------------------------------------
  function renderComparison() {
    const cmp = D.comparison;
    const metrics = cmp.metrics;
    const head = metrics.map((m) => `<th>${esc(m.label)}<br><small>${esc(m.unit)}</small></th>`).join("");
    let html = `<h2>Fleet comparison: median per GPU model</h2>`;
    if (!cmp.models.length) {
      $("compare").innerHTML = html + `<p class="note">No GPU measurements in this run.</p>`;
      return;
    }
    html +=
      `<table id="compare-models"><thead><tr><th>GPU model</th><th>GPUs</th>${head}</tr></thead><tbody>` +
      cmp.models
        .map(
          (m) =>
            `<tr><td>${esc(m.model)}</td><td>${m.gpus}</td>` +
            metrics.map((k) => `<td>${k.key in m.medians ? fmt(m.medians[k.key]) : "–"}</td>`).join("") +
            "</tr>"
        )
        .join("") +
      `</tbody></table>`;
    html +=
      `<p class="note">Ratio = this GPU against its model's median (for times: median ÷ time), ` +
      `so under 1 is slower; under ${cmp.flag_below}× is flagged.</p>`;
    const flagged = new Set(cmp.flagged.map((f) => f.host + "\u0000" + f.gpu));
    const table = (list, id) =>
      `<table id="${id}"><thead><tr><th class="l">host</th><th class="l">GPU</th><th class="l">model</th>${head}</tr></thead><tbody>` +
      list
        .map(
          (g) =>
            `<tr><td class="l">${esc(g.host)}</td><td class="l">gpu${esc(g.gpu)}</td><td class="l">${esc(g.model)}</td>` +
            metrics
              .map((k) => {
                if (!(k.key in g.ratios)) return "<td>–</td>";
                const slow = g.ratios[k.key] < cmp.flag_below ? ' class="slow"' : "";
                return `<td${slow} title="${fmt(g.values[k.key])} ${esc(k.unit)}">${g.ratios[k.key].toFixed(2)}×</td>`;
              })
              .join("") +
            "</tr>"
        )
        .join("") +
      "</tbody></table>";
    const slowGpus = cmp.gpus.filter((g) => flagged.has(g.host + "\u0000" + g.gpu));
    html += `<h2>GPUs under ${cmp.flag_below}× their model's median (${slowGpus.length})</h2>`;
    html += slowGpus.length ? table(slowGpus, "compare-flagged") : `<p class="note">None.</p>`;
    html += `<p><button id="show-all-ratios">show all ${cmp.gpus.length} GPUs</button></p><div id="all-ratios"></div>`;
    $("compare").innerHTML = html;
    $("show-all-ratios").addEventListener("click", () => {
      $("all-ratios").innerHTML = table(cmp.gpus, "compare-all");
      $("show-all-ratios").remove();
    });
  }

  renderHeader();
  renderGrid();
  setupFilters();
  setupClicks();
  renderRma();
  renderComparison();
  applyFilters();
  document.body.dataset.ready = "1";
})();
