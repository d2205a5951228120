// Switchyard's live status page. It polls ./status (the control plane's status document) every second, keeps
// the last minute of samples per target in this tab for the charts, and draws them as inline SVG.
//
// Every string that comes from the status document (route and target names come from the routing YAML) is put
// on the page with textContent or setAttribute, never as markup. The page loads nothing from anywhere else and
// needs no build step: this file is served as it is.
"use strict";

(() => {
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 4000;
  const HISTORY = 60; // samples (one per poll) the charts show
  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART = { width: 120, height: 30 };
  const OUT_OF_SERVICE = new Set(["ejected", "rate_limited"]);

  // ---- DOM helpers: text only -------------------------------------------------------------------------------

  const byId = (id) => document.getElementById(id);

  function element(tag, className, children = []) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.append(...children); // strings become text nodes
    return node;
  }

  function svgElement(tag, attributes = {}) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    return node;
  }

  function setText(node, text) {
    const value = String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function setClass(node, className) {
    if (node.getAttribute("class") !== className) node.setAttribute("class", className);
  }

  // Keeps `parent`'s children one per item, in order, reusing the node of an item seen before (by key) so
  // that a selection or a hover survives the next poll; `build` makes a node, `update` fills it in.
  const keys = new WeakMap();
  function syncChildren(parent, items, keyOf, build, update) {
    const existing = new Map();
    for (const child of Array.from(parent.children)) existing.set(keys.get(child), child);
    items.forEach((item, position) => {
      const key = keyOf(item);
      let node = existing.get(key);
      if (node) {
        existing.delete(key);
      } else {
        node = build(item);
        keys.set(node, key);
      }
      update(node, item);
      if (parent.children[position] !== node) parent.insertBefore(node, parent.children[position] || null);
    });
    for (const stale of existing.values()) stale.remove();
  }

  // ---- formatting -------------------------------------------------------------------------------------------

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  }

  function clock(epochSeconds) {
    const date = new Date(epochSeconds * 1000);
    const time = date.toLocaleTimeString([], { hour12: false });
    return date.toDateString() === new Date().toDateString() ? time : `${date.toLocaleDateString()} ${time}`;
  }

  function milliseconds(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 10) return `${ms.toFixed(2)} ms`;
    if (ms < 1000) return `${ms.toFixed(0)} ms`;
    return `${(ms / 1000).toFixed(2)} s`;
  }

  function rate(perSecond) {
    if (perSecond === 0) return "0/s";
    return perSecond < 10 ? `${perSecond.toFixed(1)}/s` : `${perSecond.toFixed(0)}/s`;
  }

  const plural = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;
  const words = (identifier) => String(identifier).replaceAll("_", " ");

  const bucketBound = (seconds) => (seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds} s`);

  // The upper bound of the histogram bucket holding quantile q: "≤ 25 ms", or null before any sample.
  function quantileBound(histogram, q) {
    const buckets = Object.entries((histogram && histogram.buckets) || {});
    const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
    if (!total) return null;
    for (const [bound, cumulative] of buckets) {
      if (cumulative >= q * total) return bound === "+Inf" ? "> 60 s" : `≤ ${bucketBound(Number(bound))}`;
    }
    return null;
  }

  // ---- history: the last HISTORY samples of each target, kept in this tab -------------------------------------

  const history = new Map(); // route + NUL + target -> [{t, requests, failures, latency}]
  const historyKey = (route, target) => `${route.model}\u0000${target.name}`;

  function remember(document_, t) {
    const seen = new Set();
    for (const route of document_.routes) {
      for (const target of route.targets) {
        const key = historyKey(route, target);
        seen.add(key);
        let samples = history.get(key);
        if (!samples) history.set(key, (samples = []));
        const last = samples[samples.length - 1];
        // Counters that went back mean a new control plane: its counts start again, so do the charts.
        if (last && (target.requests < last.requests || target.failures < last.failures)) samples.length = 0;
        samples.push({ t, requests: target.requests, failures: target.failures, latency: target.latency_ms });
        if (samples.length > HISTORY + 1) samples.splice(0, samples.length - HISTORY - 1);
      }
    }
    for (const key of Array.from(history.keys())) if (!seen.has(key)) history.delete(key);
  }

  // Attempts (and failed ones) per second between consecutive samples.
  function traffic(samples) {
    const intervals = [];
    for (let i = 1; i < samples.length; i++) {
      const seconds = Math.max(samples[i].t - samples[i - 1].t, 0.001);
      intervals.push({
        total: (samples[i].requests - samples[i - 1].requests) / seconds,
        failed: (samples[i].failures - samples[i - 1].failures) / seconds,
      });
    }
    return intervals;
  }

  // ---- charts -----------------------------------------------------------------------------------------------

  function chartFrame(label) {
    const chart = svgElement("svg", {
      width: CHART.width,
      height: CHART.height,
      viewBox: `0 0 ${CHART.width} ${CHART.height}`,
      role: "img",
      class: "chart",
    });
    chart.append(svgElement("title"));
    chart.setAttribute("aria-label", label);
    return chart;
  }

  const peakOf = (intervals) => Math.max(0, ...intervals.map((i) => i.total));

  // Bars right-aligned, newest at the right, one slot per poll: attempts per second, failed ones in red below.
  // `top` is the rate at the chart's top edge: the same for every target of a route, so they compare.
  function drawTraffic(chart, intervals, top) {
    const slot = CHART.width / HISTORY;
    const peak = peakOf(intervals);
    const scale = (CHART.height - 2) / Math.max(0.5, top); // a trickle stays a low bar, not a full one
    const parts = [svgElement("line", { x1: 0, x2: CHART.width, y1: CHART.height - 0.5, y2: CHART.height - 0.5, class: "axis" })];
    intervals.forEach((interval, index) => {
      const x = CHART.width - (intervals.length - index) * slot;
      const ok = Math.max(0, interval.total - interval.failed);
      if (ok > 0) {
        const height = Math.max(1, ok * scale);
        const top = CHART.height - interval.failed * scale - height;
        parts.push(svgElement("rect", { x, y: top, width: slot, height, class: "bar ok" }));
      }
      if (interval.failed > 0) {
        const height = Math.max(1, interval.failed * scale);
        parts.push(
          svgElement("rect", { x, y: CHART.height - height, width: slot, height, class: "bar failed" }),
        );
      }
    });
    const failed = intervals.reduce((sum, i) => sum + i.failed, 0);
    const title = svgElement("title");
    title.textContent = intervals.length
      ? `attempts per second over the last ${intervals.length}s: peak ${rate(peak)}` +
        (failed > 0 ? "; red: failed attempts" : "; none failed") +
        ` (the route's charts share one scale, top ${rate(Math.max(0.5, top))})`
      : "no samples yet";
    chart.replaceChildren(title, ...parts);
  }

  // The latency average over time; a gap where the target had none yet.
  function drawLatency(chart, samples) {
    const slot = CHART.width / HISTORY;
    const values = samples.map((s) => s.latency).filter((v) => v !== null && v !== undefined);
    const title = svgElement("title");
    if (!values.length) {
      title.textContent = "no latency measured yet";
      chart.replaceChildren(title);
      return;
    }
    const low = Math.min(...values);
    const high = Math.max(...values);
    const top = high > 0 ? high * 1.1 : 1;
    const y = (v) => CHART.height - 1 - (v / top) * (CHART.height - 4);
    const x = (index) => CHART.width - (samples.length - 1 - index) * slot - 1;
    const parts = [];
    let run = [];
    const flush = () => {
      if (run.length === 1) parts.push(svgElement("circle", { cx: run[0][0], cy: run[0][1], r: 1.5, class: "dot" }));
      if (run.length > 1) parts.push(svgElement("polyline", { points: run.map((p) => p.join(",")).join(" "), class: "line" }));
      run = [];
    };
    samples.forEach((sample, index) => {
      if (sample.latency === null || sample.latency === undefined) flush();
      else run.push([x(index).toFixed(1), y(sample.latency).toFixed(1)]);
    });
    flush();
    title.textContent = `latency average over the last ${samples.length}s: ${milliseconds(low)} to ${milliseconds(high)}`;
    chart.replaceChildren(title, ...parts);
  }

  // ---- routes and targets -----------------------------------------------------------------------------------

  // [key, heading, what the heading's tooltip explains]
  const TARGET_COLUMNS = [
    ["name", "target", "the target's name, then provider / model"],
    ["state", "state", "healthy, failing, ejected, rate limited or no traffic"],
    ["why", "why", "why it is in that state, and for how long if it is out of service"],
    ["priority", "prio", "priority: lower ranks are tried first"],
    ["weight", "weight", "the live weight Envoy routes by; the bar is its share of the weight at its priority"],
    ["requests", "requests", "attempts sent to this target"],
    ["failures", "failures", "attempts answered with one of the route's fallback codes, or not at all"],
    ["fallbacks", "fallbacks", "attempts this target served as a request's second or later try"],
    ["latency", "latency", "the route's moving average; p50/p95 from the histogram"],
    ["latency-chart", "latency, last minute", "the moving average, one point per second"],
    ["traffic", "traffic, last minute", "attempts per second; red: failed ones"],
  ];
  const parts = new WeakMap(); // node -> the child nodes its update fills in

  function buildRoute(route) {
    const title = element("h3", "route-name");
    const meta = element("p", "route-meta");
    const head = element(
      "tr",
      "",
      TARGET_COLUMNS.map(([key, label, hint]) => {
        const heading = element("th", `c-${key}`, [label]);
        heading.title = hint;
        return heading;
      }),
    );
    const body = element("tbody");
    const table = element("table", "grid targets", [element("thead", "", [head]), body]);
    const section = element("section", "route", [element("header", "route-head", [title, meta]), element("div", "scroll", [table])]);
    section.setAttribute("data-route", route.model);
    parts.set(section, { title, meta, body });
    return section;
  }

  function updateRoute(section, route) {
    const { title, meta, body } = parts.get(section);
    setText(title, route.model);
    const out = route.targets.filter((t) => OUT_OF_SERVICE.has(t.state)).length;
    setText(
      meta,
      [
        words(route.strategy),
        `latency by ${words(route.latency_measure)}`,
        `${plural(route.fallbacks, "fallback")} served`,
        out ? `${out} of ${route.targets.length} targets out of service` : plural(route.targets.length, "target"),
      ].join(" · "),
    );
    const weightOfPriority = new Map();
    for (const t of route.targets) weightOfPriority.set(t.priority, (weightOfPriority.get(t.priority) || 0) + t.weight);
    const samples = new Map(route.targets.map((t) => [t.name, history.get(historyKey(route, t)) || []]));
    const intervals = new Map(route.targets.map((t) => [t.name, traffic(samples.get(t.name))]));
    const top = Math.max(0, ...Array.from(intervals.values(), peakOf));
    syncChildren(body, route.targets, (t) => t.name, buildTarget, (row, target) =>
      updateTarget(row, target, route, {
        priorityWeight: weightOfPriority.get(target.priority),
        samples: samples.get(target.name),
        intervals: intervals.get(target.name),
        top,
      }),
    );
  }

  function buildTarget(target) {
    const cells = {};
    const row = element("tr", "target");
    for (const [key] of TARGET_COLUMNS) row.append((cells[key] = element("td", `c-${key}`)));
    const name = element("span", "target-name");
    const model = element("span", "target-model");
    cells.name.append(name, model);
    const state = element("span", "state");
    cells.state.append(state);
    const weight = element("span", "number");
    const weightBar = element("span", "share-bar");
    const weightFill = element("span", "share-fill");
    weightBar.append(weightFill);
    cells.weight.append(weight, weightBar);
    const latency = element("span", "number");
    const quantiles = element("span", "quantiles");
    cells.latency.append(latency, quantiles);
    const latencyChart = chartFrame("latency over the last minute");
    cells["latency-chart"].append(latencyChart);
    const trafficChart = chartFrame("attempts per second over the last minute");
    const trafficNow = element("span", "rate");
    cells.traffic.append(trafficChart, trafficNow);
    row.setAttribute("data-target", target.name);
    parts.set(row, { cells, name, model, state, weight, weightBar, weightFill, latency, quantiles, latencyChart, trafficChart, trafficNow });
    return row;
  }

  // The last argument is what comes from the route as a whole: its weight per priority, the history, the scale.
  function updateTarget(row, target, route, { priorityWeight, samples, intervals, top }) {
    const p = parts.get(row);
    setText(p.name, target.name);
    setText(p.model, `${target.provider} / ${target.model}`);
    setText(p.state, words(target.state));
    setClass(p.state, `state state-${target.state}`);
    p.state.setAttribute("data-state", target.state);
    setClass(row, OUT_OF_SERVICE.has(target.state) ? "target out" : "target");
    setText(p.cells.why, target.why);
    setText(p.cells.priority, target.priority);
    setText(p.cells.requests, target.requests);
    setText(p.cells.failures, target.failures);
    setClass(p.cells.failures, target.failures ? "c-failures nonzero" : "c-failures");
    setText(p.cells.fallbacks, target.fallbacks);

    const share = priorityWeight ? target.weight / priorityWeight : 0;
    setText(p.weight, target.weight);
    p.weightFill.style.width = `${(share * 100).toFixed(1)}%`;
    p.weightBar.setAttribute("title", `${(share * 100).toFixed(0)}% of the weight at priority ${target.priority}`);

    const perToken = route.latency_measure === "per_output_token";
    setText(p.latency, target.latency_ms === null ? "–" : milliseconds(target.latency_ms) + (perToken ? "/token" : ""));
    const p50 = quantileBound(target.latency_histogram, 0.5);
    const p95 = quantileBound(target.latency_histogram, 0.95);
    setText(p.quantiles, p50 ? `p50 ${p50} · p95 ${p95}` : "");

    drawLatency(p.latencyChart, samples);
    drawTraffic(p.trafficChart, intervals, top);
    setText(p.trafficNow, intervals.length ? rate(intervals[intervals.length - 1].total) : "–");
  }

  // ---- nodes --------------------------------------------------------------------------------------------------

  function buildNode(node) {
    const cells = {};
    const row = element("tr", "node");
    for (const key of ["name", "listen", "state", "version", "attempts", "connected"]) {
      row.append((cells[key] = element("td", `c-${key}`)));
    }
    const state = element("span", "state");
    const rejected = element("span", "rejected");
    cells.state.append(state, rejected);
    row.setAttribute("data-node", node.name);
    parts.set(row, { cells, state, rejected });
    return row;
  }

  function updateNode(row, node) {
    const { cells, state, rejected } = parts.get(row);
    setText(cells.name, node.name);
    setText(cells.listen, node.listen === null ? "–" : `${node.listen}${node.listen_from === "config" ? " (from the YAML)" : ""}`);
    setText(state, words(node.state));
    setClass(state, `state state-${node.state}`);
    state.setAttribute("data-state", node.state);
    setText(rejected, node.rejected ? `rejected: ${node.rejected}` : "");
    const behind = node.state === "behind" && node.current_version ? ` (in force: ${node.current_version})` : "";
    setText(cells.version, `${node.version === null ? "none yet" : node.version}${behind}`);
    setText(cells.attempts, node.attempts === null ? "–" : node.attempts);
    setText(
      cells.connected,
      node.gone_for_s === null ? `for ${duration(node.connected_for_s)}` : `gone ${duration(node.gone_for_s)} ago`,
    );
  }

  // ---- the page -----------------------------------------------------------------------------------------------

  function renderHeader(document_) {
    setText(byId("config-version"), document_.config.version === null ? "none" : document_.config.version);
    const reload = document_.config.last_reload;
    const reloadFact = byId("last-reload");
    if (!reload) {
      setText(reloadFact, "none since start");
      setClass(reloadFact, "");
    } else {
      setText(reloadFact, `${reload.ok ? "applied" : "rejected"} ${clock(reload.at)} (${reload.reason})`);
      setClass(reloadFact, reload.ok ? "" : "bad");
    }
    byId("reload-error").hidden = !reload || reload.ok;
    setText(byId("reload-error-text"), reload && !reload.ok ? reload.error : "");

    const plane = document_.control_plane;
    const planeFact = byId("control-plane");
    if (!plane) {
      setText(planeFact, "–");
    } else {
      const restart = plane.restarted ? " · restarted: health and latency since then" : "";
      setText(planeFact, `up ${duration(plane.uptime_s)} (since ${clock(plane.started_at)})${restart}`);
      setClass(planeFact, plane.restarted ? "warn" : "");
    }
  }

  function render(document_) {
    renderHeader(document_);
    byId("no-routes").hidden = document_.routes.length > 0;
    syncChildren(byId("routes"), document_.routes, (r) => r.model, buildRoute, updateRoute);
    byId("no-nodes").hidden = document_.nodes.length > 0;
    byId("nodes").hidden = document_.nodes.length === 0;
    syncChildren(byId("nodes-body"), document_.nodes, (n) => n.name, buildNode, updateNode);
    const out = document_.routes.flatMap((r) => r.targets).filter((t) => OUT_OF_SERVICE.has(t.state)).length;
    document.title = out ? `${out} out of service · Switchyard status` : "Switchyard status";
  }

  let lastUpdate = null; // Date.now() of the last document shown

  function showConnection(problem) {
    const connection = byId("connection");
    byId("main").classList.toggle("stale", problem !== null);
    if (problem === null) {
      setText(connection, `live · updated ${clock(lastUpdate / 1000)}`);
      setClass(connection, "connection live");
      return;
    }
    const age = lastUpdate === null ? "no data yet" : `showing data from ${duration((Date.now() - lastUpdate) / 1000)} ago`;
    setText(connection, `cannot reach the control plane (${problem}) · ${age}`);
    setClass(connection, "connection down");
  }

  async function fetchStatus() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch("status", { cache: "no-store", signal: abort.signal, headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return await response.json();
    } finally {
      clearTimeout(timer);
    }
  }

  async function poll() {
    let document_;
    try {
      document_ = await fetchStatus();
    } catch (error) {
      showConnection(error.name === "AbortError" ? "no answer" : error.message || String(error));
      setTimeout(poll, POLL_MS);
      return;
    }
    try {
      remember(document_, performance.now() / 1000);
      render(document_);
      lastUpdate = Date.now();
      showConnection(null);
    } catch (error) {
      console.error("status page: cannot show the status document", error);
      showConnection(`unexpected status document: ${error.message}`);
    }
    setTimeout(poll, POLL_MS);
  }

  byId("history-span").textContent = `${HISTORY} seconds`;
  poll();
})();
