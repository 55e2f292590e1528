// rk view's page: plain JS, no build step. Served, it asks the server for JSON (filtered and
// paged there); exported, the same views read the data inlined in #rk-data.
// Untrusted text (everything from a results file) only ever reaches the DOM as text nodes:
// there is no innerHTML in this file, and markdown goes through markdown.js, which builds nodes.
"use strict";
(function () {
  const EMBEDDED = document.getElementById("rk-data");
  const DATA = EMBEDDED ? JSON.parse(EMBEDDED.textContent) : null;
  const app = document.getElementById("app");
  const PAGE = 50;

  // ---- DOM helpers -------------------------------------------------------------------------
  function h(tag, attrs) {
    const node = document.createElement(tag);
    for (const key in attrs || {}) {
      const value = attrs[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "href") node.setAttribute("href", String(value).charAt(0) === "#" ? value : "#");
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else if (key === "value") node.value = value;
      else if (key === "checked") node.checked = !!value;
      else node.setAttribute(key, value);
    }
    for (let i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  function fmt(x, digits) {
    if (x === null || x === undefined) return "null";
    if (typeof x !== "number") return String(x);
    return Number.isInteger(x) ? String(x) : x.toFixed(digits === undefined ? 3 : digits);
  }
  function json(x) { return JSON.stringify(x, null, 2); }
  const GOOD = { ok: 1, stop: 1 };
  const MILD = { skipped: 1, missing: 1, score_invalid: 1, length: 1 };
  function badge(status, count) {
    const kind = GOOD[status] ? "ok" : MILD[status] ? "warn" : "bad";
    return h("span", { class: "badge " + kind, "data-status": status }, status + (count === undefined ? "" : " " + count));
  }
  function card(title) {
    const rest = Array.prototype.slice.call(arguments, 1);
    return h("section", { class: "card" }, title ? h("h2", null, title) : null, rest);
  }
  function kv(pairs) {
    return h("div", { class: "kv" }, pairs.filter(function (p) { return p[1] !== undefined; }).map(function (p) {
      return [h("span", { class: "k" }, p[0]), h("span", null, typeof p[1] === "object" && p[1] !== null && !(p[1] instanceof Node) ? json(p[1]) : p[1])];
    }));
  }
  function query(params) {
    const parts = [];
    for (const k in params) if (params[k] !== "" && params[k] !== undefined && params[k] !== null) parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(params[k]));
    return parts.length ? "?" + parts.join("&") : "";
  }

  // ---- data: the server's API, or the same answers from the inlined data --------------------
  async function get(path) {
    const response = await fetch(path, { headers: { accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    return body;
  }
  const api = DATA ? embeddedApi(DATA) : {
    runs: function () { return get("api/runs"); },
    overview: function (r) { return get("api/runs/" + r + "/overview"); },
    samples: function (r, p) { return get("api/runs/" + r + "/samples" + query(p)); },
    sample: function (r, id) { return get("api/runs/" + r + "/samples/" + id); },
    prompt: function (r, id) { return get("api/runs/" + r + "/prompt" + query({ id: id })); },
    compare: function (a, b) { return get("api/compare/" + a + "/" + b); },
    comparePrompt: function (a, b, id) { return get("api/compare/" + a + "/" + b + "/prompt" + query({ id: id })); },
  };

  function embeddedApi(data) {
    const haystacks = [];
    function haystack(r) {
      if (!haystacks[r]) haystacks[r] = data.rows[r].map(function (row) {
        const parts = [String(row.prompt_id), row.response || ""];
        (row.messages || []).forEach(function (m) { if (m && typeof m.content === "string") parts.push(m.content); });
        Object.values(row.rewards || {}).forEach(function (e) { if (e && e.reason) parts.push(String(e.reason)); });
        if (row.generation && row.generation.error) parts.push(String(row.generation.error));
        return parts.join("\n").toLowerCase();
      });
      return haystacks[r];
    }
    function samples(r, p) {
      const run = data.runs[r];
      const table = data.table[r];
      const reward = p.reward || null;
      const scored = reward || run.rewards[0];
      const names = reward ? [reward] : run.rewards;
      const lo = p.min === undefined || p.min === "" ? -Infinity : Number(p.min);
      const hi = p.max === undefined || p.max === "" ? Infinity : Number(p.max);
      const text = (p.q || "").toLowerCase();
      const hay = text ? haystack(r) : null;
      let rows = table.filter(function (s, i) {
        if (p.prompt && s.prompt_id.indexOf(p.prompt) < 0) return false;
        if (p.status) {
          const st = names.map(function (n) { return s.rewards[n].status; });
          if (p.status === "failed") { if (s.generation_status === "ok" && st.every(function (x) { return x === "ok"; })) return false; }
          else if (s.generation_status !== p.status && st.indexOf(p.status) < 0) return false;
        }
        if ((p.min || p.max) && scored) {
          const score = s.rewards[scored].score;
          if (score === null || score < lo || score > hi) return false;
        }
        return !hay || hay[i].indexOf(text) >= 0;
      });
      const desc = p.desc === "1";
      const sort = p.sort || "order";
      if (sort === "order") { if (desc) rows = rows.slice().reverse(); }
      else if (sort === "prompt") {
        rows = rows.slice().sort(function (x, y) { return x.prompt_id < y.prompt_id ? -1 : x.prompt_id > y.prompt_id ? 1 : x.sample_index - y.sample_index; });
        if (desc) rows.reverse();
      } else {
        const value = function (s) { return sort === "tokens" ? s.tokens : scored ? s.rewards[scored].score : null; };
        const present = rows.filter(function (s) { return value(s) !== null; });
        present.sort(function (x, y) { return desc ? value(y) - value(x) : value(x) - value(y); });
        rows = present.concat(rows.filter(function (s) { return value(s) === null; }));
      }
      const offset = Number(p.offset || 0);
      return { total: rows.length, offset: offset, limit: PAGE, rows: rows.slice(offset, offset + PAGE) };
    }
    function byPrompt(r, id) {
      const out = [];
      data.rows[r].forEach(function (row, i) { if (String(row.prompt_id) === id) out.push({ id: i, row: row }); });
      return out.sort(function (x, y) { return (x.row.sample_index || 0) - (y.row.sample_index || 0); });
    }
    const ok = function (x) { return Promise.resolve(x); };
    return {
      runs: function () { return ok(data.runs); },
      overview: function (r) { return ok(data.overviews[r]); },
      samples: function (r, p) { return ok(samples(r, p)); },
      sample: function (r, id) { return ok({ id: Number(id), row: data.rows[r][id] }); },
      prompt: function (r, id) { return ok({ prompt_id: id, samples: byPrompt(r, id) }); },
      compare: function (a, b) {
        const c = data.compares[a + "/" + b];
        return c ? ok(c) : Promise.reject(new Error("this export holds no comparison of these runs"));
      },
      comparePrompt: function (a, b, id) { return ok({ prompt_id: id, a: byPrompt(a, id), b: byPrompt(b, id) }); },
    };
  }

  // ---- routing -------------------------------------------------------------------------------
  let RUNS = [];
  function parseHash() {
    const hash = location.hash.replace(/^#\/?/, "");
    const at = hash.indexOf("?");
    const path = (at < 0 ? hash : hash.slice(0, at)).split("/").filter(Boolean);
    const params = {};
    new URLSearchParams(at < 0 ? "" : hash.slice(at + 1)).forEach(function (v, k) { params[k] = v; });
    return { path: path, params: params };
  }
  function go(path, params) { location.hash = "#/" + path + query(params || {}); }

  function nav(active) {
    const links = [h("span", { class: "brand" }, "rk view")];
    RUNS.forEach(function (run) {
      links.push(h("a", { href: "#/run/" + run.id, class: active === "run" + run.id ? "active" : "" }, run.name));
      links.push(h("a", { href: "#/run/" + run.id + "/samples", class: active === "samples" + run.id ? "active" : "" }, "samples"));
    });
    if (RUNS.length > 1) links.push(h("a", { href: "#/compare/0/1", class: active === "compare" ? "active" : "" }, "compare"));
    return h("header", { class: "top" }, links);
  }

  async function route() {
    // data-ready says which route is on screen (tests and screenshots wait for it).
    document.body.removeAttribute("data-ready");
    const r = parseHash();
    const p = r.path;
    const main = h("main");
    let active = "";
    try {
      if (p[0] === "run" && p.length >= 2) {
        const run = Number(p[1]);
        if (p[2] === "samples") { active = "samples" + run; await viewSamples(main, run, r.params); }
        else if (p[2] === "sample") { active = "samples" + run; await viewSample(main, run, p[3]); }
        else if (p[2] === "prompt") { active = "samples" + run; await viewPrompt(main, run, r.params.id || ""); }
        else { active = "run" + run; await viewOverview(main, run); }
      } else if (p[0] === "compare" && p.length >= 3) {
        active = "compare";
        if (p[3] === "prompt") await viewComparePrompt(main, Number(p[1]), Number(p[2]), r.params.id || "");
        else await viewCompare(main, Number(p[1]), Number(p[2]), r.params);
      } else {
        if (RUNS.length === 1) { go("run/0"); return; }
        active = "home";
        viewHome(main);
      }
    } catch (error) {
      main.appendChild(card("Error", h("p", { class: "error", id: "error" }, String(error.message || error))));
    }
    app.replaceChildren(nav(active), main);
    document.body.setAttribute("data-ready", location.hash);
    window.scrollTo(0, 0);
  }

  // ---- views ---------------------------------------------------------------------------------
  function viewHome(main) {
    main.appendChild(h("h1", null, "Runs"));
    main.appendChild(card(null, h("table", null, h("tr", null, h("th", null, "run"), h("th", { class: "num" }, "samples"), h("th", { class: "num" }, "prompts"), h("th", null, "rewards")),
      RUNS.map(function (run) {
        return h("tr", null, h("td", null, h("a", { href: "#/run/" + run.id }, run.name)), h("td", { class: "num" }, run.samples), h("td", { class: "num" }, run.prompts), h("td", null, run.rewards.join(", ")));
      }))));
  }

  function chart(target, opts, data) {
    // uPlot is the vendored charting library (static/vendor/uPlot.LICENSE).
    if (typeof uPlot === "undefined") return;
    new uPlot(Object.assign({ width: 420, height: 200, legend: { show: true } }, opts), data, target);
  }

  function passChart(target, reward) {
    const ks = Object.keys(reward.pass_at_k || {}).map(Number).sort(function (a, b) { return a - b; });
    if (!ks.length) { target.appendChild(h("p", { class: "muted" }, "pass@k: not in this run's summary")); return; }
    const at = ks.map(function (k) { return reward.pass_at_k[String(k)]; });
    const hat = ks.map(function (k) { return (reward.pass_hat_k || {})[String(k)]; });
    const box = h("div", { class: "chart", "data-chart": "pass" });
    target.appendChild(box);
    chart(box, { title: "pass@k and pass^k over k", scales: { x: { time: false }, y: { range: [0, 1] } },
      series: [{ label: "k" }, { label: "pass@k", stroke: "#2457c5", width: 2, points: { size: 7 } }, { label: "pass^k", stroke: "#b54708", width: 2, dash: [5, 4], points: { size: 6 } }],
      axes: [{ label: "k", splits: function () { return ks; } }, {}] }, [ks, at, hat]);
    target.appendChild(h("table", { class: "passk" }, h("tr", null, h("th", null, "k"), ks.map(function (k) { return h("th", { class: "num" }, k); })),
      h("tr", null, h("td", null, "pass@k"), at.map(function (v) { return h("td", { class: "num" }, fmt(v)); })),
      h("tr", null, h("td", null, "pass^k"), hat.map(function (v) { return h("td", { class: "num" }, fmt(v)); }))));
  }

  function histogramChart(target, hist) {
    const centers = hist.counts.map(function (_, i) { return (hist.edges[i] + hist.edges[i + 1]) / 2; });
    const box = h("div", { class: "chart", "data-chart": "histogram" });
    target.appendChild(box);
    const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.9, 100] }) : undefined;
    chart(box, { title: "valid scores", scales: { x: { time: false, range: [hist.edges[0], hist.edges[hist.edges.length - 1]] } },
      series: [{ label: "score" }, { label: "samples", fill: "rgba(36,87,197,0.35)", stroke: "#2457c5", paths: bars, points: { show: false } }] }, [centers, hist.counts]);
  }

  async function viewOverview(main, r) {
    const o = await api.overview(r);
    main.appendChild(h("h1", null, o.name));
    if (o.torn) main.appendChild(h("div", { class: "warnbox" }, "The last line of results.jsonl was cut short (a run that was killed): it is left out."));
    if (!o.has_summary && o.kind === "run") main.appendChild(h("div", { class: "warnbox" }, "No summary.json (an unfinished run?): means are computed here, with a bootstrap interval over prompts; no pass@k."));
    main.appendChild(card(null, h("div", { class: "stats" },
      stat("samples", o.samples), stat("prompts", o.prompts), stat("rewards", Object.keys(o.rewards).length),
      o.wall_s !== null && o.wall_s !== undefined ? stat("wall time", fmt(o.wall_s, 1) + " s") : null,
      o.generation && o.generation.completion_tokens !== undefined ? stat("completion tokens", o.generation.completion_tokens) : null)));
    const grid = h("div", { class: "grid" });
    main.appendChild(grid);
    Object.keys(o.rewards).forEach(function (name) {
      const rw = o.rewards[name];
      const box = card(name);
      box.setAttribute("data-reward", name);
      const ci = rw.ci ? "[" + fmt(rw.ci[0]) + ", " + fmt(rw.ci[1]) + "]" : "no interval";
      box.appendChild(h("div", { class: "stats" }, stat("mean", fmt(rw.mean)), stat("95% CI", ci), stat("valid scores", rw.count), stat("pass threshold", fmt(rw.pass_threshold))));
      box.appendChild(h("p", { class: "muted" }, "interval: " + rw.ci_method));
      box.appendChild(h("h3", null, "statuses"));
      box.appendChild(h("div", null, Object.keys(rw.statuses).map(function (s) {
        return h("a", { href: "#/run/" + r + "/samples" + query({ reward: name, status: s }) }, badge(s, rw.statuses[s]));
      })));
      box.appendChild(h("h3", null, "pass@k"));
      passChart(box, rw);
      box.appendChild(h("h3", null, "score histogram"));
      histogramChart(box, rw.histogram);
      const metrics = rw.metrics || {};
      if (Object.keys(metrics).length) {
        box.appendChild(h("h3", null, "metric means"));
        box.appendChild(h("table", null, Object.keys(metrics).map(function (m) { return h("tr", null, h("td", null, m), h("td", { class: "num" }, fmt(metrics[m]))); })));
      }
      grid.appendChild(box);
    });
    const g = o.generation || {};
    if (Object.keys(g).length) {
      main.appendChild(card("Generation",
        h("div", null, Object.keys(g.statuses || {}).map(function (s) { return h("a", { href: "#/run/" + r + "/samples" + query({ status: s }) }, badge(s, g.statuses[s])); })),
        h("h3", null, "finish reasons"), h("div", null, Object.keys(g.finish_reasons || {}).map(function (s) { return badge(s, g.finish_reasons[s]); })),
        kv([["requests (last invocation)", g.requests], ["cache hits (last invocation)", g.cache_hits], ["cached samples", g.cached_samples], ["errors", g.errors],
          ["prompt tokens", g.prompt_tokens], ["completion tokens", g.completion_tokens], ["identical groups", g.identical_groups]])));
    }
    if (o.manifest) main.appendChild(manifestCard(o.manifest));
  }

  function stat(key, value) { return h("div", { class: "stat" }, h("div", { class: "v" }, value), h("div", { class: "k" }, key)); }

  function manifestCard(m) {
    const config = m.config || {};
    const model = config.model || {};
    const sources = m.rewards || m.reward_sources;
    return card("Manifest",
      kv([["model", model.name], ["endpoint", m.endpoint !== undefined ? m.endpoint : model.base_url], ["dataset sha256", m.dataset_sha256 || (m.dataset || {}).sha256],
        ["seed", config.seed], ["samples", config.samples], ["reward-kit", m.reward_kit || (m.versions || {})["reward-kit"]]]),
      sources ? [h("h3", null, "reward sources"), h("pre", null, json(sources))] : null,
      h("details", null, h("summary", null, "whole manifest.json"), h("pre", null, json(m))));
  }

  function scoreCell(entry) {
    if (!entry) return h("td", { class: "num" }, badge("missing"));
    return h("td", { class: "num" }, entry.status === "ok" ? fmt(entry.score) : badge(entry.status));
  }

  async function viewSamples(main, r, params) {
    const run = RUNS[r];
    const o = await api.overview(r);
    const statuses = {};
    Object.values(o.rewards).forEach(function (rw) { Object.keys(rw.statuses).forEach(function (s) { statuses[s] = 1; }); });
    Object.keys((o.generation || {}).statuses || {}).forEach(function (s) { statuses[s] = 1; });
    const state = Object.assign({ sort: "order" }, params);
    const result = await api.samples(r, state);
    const set = function (changes) { const next = Object.assign({}, state, changes, { offset: changes.offset || "" }); go("run/" + r + "/samples", next); };
    const input = function (name, attrs) {
      return h("input", Object.assign({ name: name, value: state[name] || "", onchange: function (e) { const c = {}; c[name] = e.target.value; set(c); } }, attrs || {}));
    };
    const select = function (name, options) {
      return h("select", { name: name, onchange: function (e) { const c = {}; c[name] = e.target.value; set(c); } }, options.map(function (o) {
        const opt = h("option", { value: o[0] }, o[1]);
        if ((state[name] || "") === o[0]) opt.selected = true;
        return opt;
      }));
    };
    main.appendChild(h("h1", null, run.name + ": samples"));
    main.appendChild(h("div", { class: "filters" },
      h("label", null, "status", select("status", [["", "any"], ["failed", "any failure"]].concat(Object.keys(statuses).map(function (s) { return [s, s]; })))),
      h("label", null, "reward", select("reward", [["", "all"]].concat(run.rewards.map(function (n) { return [n, n]; })))),
      h("label", null, "min score", input("min", { class: "narrow", type: "number", step: "any" })),
      h("label", null, "max score", input("max", { class: "narrow", type: "number", step: "any" })),
      h("label", null, "prompt id", input("prompt", { placeholder: "contains" })),
      h("label", null, "text", input("q", { placeholder: "prompt, response, reason" })),
      h("label", null, "sort", select("sort", [["order", "file order"], ["prompt", "prompt id"], ["score", "score"], ["tokens", "completion tokens"]])),
      h("label", null, "descending", h("input", { type: "checkbox", name: "desc", checked: state.desc === "1", onchange: function (e) { set({ desc: e.target.checked ? "1" : "" }); } })),
      h("button", { onclick: function () { go("run/" + r + "/samples"); } }, "clear")));
    const head = h("tr", null, h("th", null, "#"), h("th", null, "prompt"), h("th", { class: "num" }, "sample"), h("th", null, "generation"),
      run.rewards.map(function (n) { return h("th", { class: "num sortable", onclick: function () { set({ reward: n, sort: "score", desc: state.sort === "score" && state.desc !== "1" ? "1" : "" }); } }, n); }),
      h("th", { class: "num" }, "tokens"), h("th", null, "response"));
    const body = result.rows.map(function (s) {
      return h("tr", { class: "click", "data-sample": s.id, onclick: function () { go("run/" + r + "/sample/" + s.id); } },
        h("td", { class: "num" }, s.id), h("td", null, h("a", { href: "#/run/" + r + "/prompt" + query({ id: s.prompt_id }), onclick: function (e) { e.stopPropagation(); } }, s.prompt_id)),
        h("td", { class: "num" }, s.sample_index), h("td", null, badge(s.generation_status)),
        run.rewards.map(function (n) { return scoreCell(s.rewards[n]); }),
        h("td", { class: "num" }, fmt(s.tokens)), h("td", { class: "preview" }, s.preview));
    });
    const offset = result.offset;
    main.appendChild(card(null, h("table", { id: "samples" }, head, body),
      h("div", { class: "pager" },
        h("button", { disabled: offset <= 0 ? "disabled" : null, onclick: function () { set({ offset: String(Math.max(0, offset - PAGE)) }); } }, "previous"),
        h("span", { id: "count" }, result.total ? (offset + 1) + "-" + (offset + result.rows.length) + " of " + result.total : "no sample matches"),
        h("button", { disabled: offset + PAGE >= result.total ? "disabled" : null, onclick: function () { set({ offset: String(offset + PAGE) }); } }, "next"))));
  }

  function content(value, raw) {
    if (value === null || value === undefined) return h("span", { class: "muted" }, "(no content)");
    if (typeof value === "string") return raw ? h("pre", null, value) : window.rkMarkdown(value);
    if (Array.isArray(value)) return value.map(function (part) {
      if (part && part.type === "text") return content(part.text, raw);
      return h("pre", null, json(part));
    });
    return h("pre", null, json(value));
  }

  function toolCalls(calls) {
    return (calls || []).map(function (call) {
      const fn = call.function || call;
      let args = fn.arguments;
      try { if (typeof args === "string") args = json(JSON.parse(args)); } catch (e) { /* shown as sent */ }
      return h("div", { class: "toolcall" }, h("div", null, h("strong", null, "tool call: "), h("code", null, String(fn.name)), call.id ? h("span", { class: "muted" }, " (" + call.id + ")") : null),
        h("pre", null, typeof args === "string" ? args : json(args)));
    });
  }

  function message(m, raw) {
    const role = String(m.role || "?");
    const label = role === "tool" ? "tool result" + (m.tool_call_id ? " (" + m.tool_call_id + ")" : "") + (m.name ? ": " + m.name : "") : role;
    return h("div", { class: "msg " + role.replace(/[^a-z]/g, "") }, h("div", { class: "role" }, label),
      h("div", { class: "body" }, content(m.content, raw || role === "tool"), toolCalls(m.tool_calls)));
  }

  // An environment rollout (rk run --env): its turns after the prompt, each step's reward
  // after that step's tool results.
  function envTurns(env, raw) {
    const parts = [];
    const rewards = env.step_rewards || [];
    let step = -1;
    const turns = env.turns || [];
    turns.forEach(function (m, i) {
      if (m.role === "assistant" && m.tool_calls && m.tool_calls.length) step++;
      parts.push(message(m, raw));
      const next = turns[i + 1];
      if (m.role === "tool" && (!next || next.role !== "tool") && step >= 0 && step < rewards.length) {
        parts.push(h("div", { class: "step-reward", "data-step": step }, h("span", { class: "badge" }, "step " + (step + 1) + " reward " + fmt(rewards[step]))));
      }
    });
    parts.push(h("div", { class: "muted" }, "environment " + env.name + ": " + env.status + ", " + env.steps + " steps" + (env.done ? ", done" : "") + (env.error ? ", " + env.error : "")));
    return parts;
  }

  function conversation(row, raw) {
    const parts = (row.messages || []).map(function (m) { return message(m, raw); });
    const g = row.generation || {};
    if (row.env && Array.isArray(row.env.turns)) {
      if (g.status && g.status !== "ok") parts.push(h("div", { class: "error" }, "generation failed: " + g.status + " " + String(g.error || "")));
      return parts.concat(envTurns(row.env, raw));
    }
    if (row.response !== undefined || g.tool_calls) {
      if (row.response === null && g.status && g.status !== "ok") {
        parts.push(h("div", { class: "msg assistant" }, h("div", { class: "role" }, "assistant (generation failed: " + g.status + ")"), h("div", { class: "body error" }, String(g.error || ""))));
      } else {
        parts.push(message({ role: "assistant", content: row.response, tool_calls: g.tool_calls }, raw));
      }
    }
    const steps = row.steps || row.trajectory;
    if (Array.isArray(steps)) {
      parts.push(h("h3", null, "steps"));
      parts.push(h("table", { class: "steps" }, h("tr", null, h("th", null, "step"), h("th", null, "reward"), h("th", null, "content")), steps.map(function (s, i) {
        return h("tr", null, h("td", { class: "num" }, i), h("td", { class: "num" }, fmt(s && s.reward)), h("td", null, h("pre", null, typeof s === "string" ? s : json(s))));
      })));
    }
    return parts;
  }

  function rewardsTable(row) {
    const rewards = row.rewards || {};
    return Object.keys(rewards).map(function (name) {
      const e = rewards[name] || {};
      const status = e.status !== "ok" ? e.status : e.is_score_valid === false ? "score_invalid" : "ok";
      const metrics = e.metrics || {};
      return h("div", { class: "reward", "data-reward": name }, h("h3", null, name + " ", badge(status), " score ", fmt(e.score)),
        e.reason ? h("div", { class: "reason" }, content(String(e.reason), true)) : null,
        e.error ? h("pre", { class: "error" }, typeof e.error === "string" ? e.error : json(e.error)) : null,
        Object.keys(metrics).length ? h("table", null, h("tr", null, h("th", null, "metric"), h("th", { class: "num" }, "score"), h("th", null, "reason")), Object.keys(metrics).map(function (m) {
          const v = metrics[m];
          const obj = v && typeof v === "object";
          return h("tr", null, h("td", null, m), h("td", { class: "num" }, fmt(obj ? v.score : v)), h("td", null, obj && v.reason ? String(v.reason) : ""));
        })) : null);
    });
  }

  const KNOWN = { prompt_id: 1, sample_index: 1, seed: 1, messages: 1, response: 1, ground_truth: 1, generation: 1, rewards: 1, steps: 1, trajectory: 1, env: 1 };

  function sampleBody(r, s, raw) {
    const row = s.row;
    const g = row.generation || {};
    const extra = {};
    Object.keys(row).forEach(function (k) { if (!KNOWN[k]) extra[k] = row[k]; });
    return [
      card("Conversation", conversation(row, raw)),
      card("Rewards", rewardsTable(row)),
      row.ground_truth !== undefined ? card("Ground truth", h("pre", { class: "ground-truth" }, typeof row.ground_truth === "string" ? row.ground_truth : json(row.ground_truth))) : null,
      Object.keys(g).length ? card("Generation", kv([["status", g.status], ["finish reason", g.finish_reason], ["seed", row.seed], ["attempts", g.attempts], ["cached", g.cached === undefined ? undefined : String(g.cached)],
        ["usage", g.usage], ["error", g.error]])) : null,
      Object.keys(extra).length ? card("Other fields", h("pre", null, json(extra))) : null,
      h("details", null, h("summary", null, "raw result line"), h("pre", null, json(row))),
    ];
  }

  let RAW = false;
  function rawToggle() {
    return h("label", { class: "muted" }, h("input", { type: "checkbox", checked: RAW, onchange: function (e) { RAW = e.target.checked; route(); } }), " show text as written (no markdown)");
  }

  async function viewSample(main, r, id) {
    const s = await api.sample(r, id);
    const row = s.row;
    main.appendChild(h("h1", null, RUNS[r].name + " · prompt " + row.prompt_id + " · sample " + row.sample_index));
    main.appendChild(h("p", null, h("a", { href: "#/run/" + r + "/prompt" + query({ id: String(row.prompt_id) }) }, "all samples of this prompt"), " · ",
      h("a", { href: "#/run/" + r + "/samples" }, "back to samples"), " · ", rawToggle()));
    add(main, sampleBody(r, s, RAW));
  }

  function compactSample(r, s) {
    const row = s.row;
    return h("div", { class: "card sample", "data-sample": s.id },
      h("h3", null, h("a", { href: "#/run/" + r + "/sample/" + s.id }, "sample " + row.sample_index)),
      h("div", null, Object.keys(row.rewards || {}).map(function (n) {
        const e = row.rewards[n];
        const status = e.status !== "ok" ? e.status : e.is_score_valid === false ? "score_invalid" : "ok";
        return h("span", { class: "badge " + (status === "ok" ? "ok" : "bad") }, n + ": " + (status === "ok" ? fmt(e.score) : status));
      })),
      conversation({ response: row.response, generation: row.generation, steps: row.steps, env: row.env }, RAW));
  }

  function promptHeader(row) {
    return [
      card("Prompt", (row.messages || []).map(function (m) { return message(m, RAW); })),
      row.ground_truth !== undefined ? card("Ground truth", h("pre", null, typeof row.ground_truth === "string" ? row.ground_truth : json(row.ground_truth))) : null,
    ];
  }

  async function viewPrompt(main, r, id) {
    const p = await api.prompt(r, id);
    main.appendChild(h("h1", null, RUNS[r].name + " · prompt " + id + " · " + p.samples.length + " samples"));
    main.appendChild(h("p", null, rawToggle()));
    if (!p.samples.length) { main.appendChild(h("p", { class: "muted" }, "no sample has this prompt id")); return; }
    add(main, promptHeader(p.samples[0].row));
    main.appendChild(h("div", { class: "cols" }, p.samples.map(function (s) { return compactSample(r, s); })));
  }

  function runPicker(a, b) {
    const pick = function (value, other, which) {
      return h("select", { name: which, onchange: function (e) { const v = Number(e.target.value); go(which === "a" ? "compare/" + v + "/" + other : "compare/" + other + "/" + v); } },
        RUNS.map(function (run) { const o = h("option", { value: String(run.id) }, run.name); if (run.id === value) o.selected = true; return o; }));
    };
    return h("div", { class: "filters" }, h("label", null, "A", pick(a, b, "a")), h("label", null, "B", pick(b, a, "b")));
  }

  async function viewCompare(main, a, b, params) {
    main.appendChild(h("h1", null, "Compare: B − A"));
    main.appendChild(runPicker(a, b));
    const c = await api.compare(a, b);
    main.appendChild(card(null, kv([["A", c.a], ["B", c.b], ["prompts in both", c.shared_prompts], ["only in A", c.only_a], ["only in B", c.only_b],
      ["rewards only in A", c.rewards_only_a.length ? c.rewards_only_a.join(", ") : undefined], ["rewards only in B", c.rewards_only_b.length ? c.rewards_only_b.join(", ") : undefined],
      ["interval", "paired bootstrap over prompts, 2000 resamples, seed " + c.seed]])));
    const names = Object.keys(c.rewards);
    main.appendChild(card("Per reward", h("table", { id: "compare" }, h("tr", null, ["reward", "prompts", "mean A", "mean B", "B − A", "95% CI", "wins", "losses", "ties", "flipped"].map(function (t, i) { return h("th", { class: i ? "num" : "" }, t); })),
      names.map(function (n) {
        const x = c.rewards[n];
        const sign = x.ci && x.ci[0] > 0 ? "better" : x.ci && x.ci[1] < 0 ? "worse" : "";
        return h("tr", { "data-reward": n }, h("td", null, n), h("td", { class: "num" }, x.matched), h("td", { class: "num" }, fmt(x.mean_a)), h("td", { class: "num" }, fmt(x.mean_b)),
          h("td", { class: "num " + sign }, fmt(x.difference)), h("td", { class: "num" }, x.ci ? "[" + fmt(x.ci[0]) + ", " + fmt(x.ci[1]) + "]" : "none"),
          h("td", { class: "num" }, x.wins), h("td", { class: "num" }, x.losses), h("td", { class: "num" }, x.ties), h("td", { class: "num" }, x.flipped));
      }))));
    const reward = params.reward && c.rewards[params.reward] ? params.reward : names[0];
    if (!reward) return;
    const x = c.rewards[reward];
    main.appendChild(card("Changed prompts (" + x.changed_total + ", flipped first)",
      h("div", { class: "filters" }, h("label", null, "reward", h("select", { onchange: function (e) { go("compare/" + a + "/" + b, { reward: e.target.value }); } },
        names.map(function (n) { const o = h("option", { value: n }, n); if (n === reward) o.selected = true; return o; })))),
      h("table", { id: "changed" }, h("tr", null, h("th", null, "prompt"), h("th", { class: "num" }, "A"), h("th", { class: "num" }, "B"), h("th", { class: "num" }, "B − A"), h("th", null, "")),
        x.changed.map(function (ch) {
          return h("tr", { class: "click", "data-prompt": ch.prompt_id, onclick: function () { go("compare/" + a + "/" + b + "/prompt", { id: ch.prompt_id }); } },
            h("td", null, ch.prompt_id), h("td", { class: "num" }, fmt(ch.a)), h("td", { class: "num" }, fmt(ch.b)), h("td", { class: "num " + ch.direction }, fmt(ch.difference)),
            h("td", null, ch.flipped ? h("span", { class: "badge " + (ch.direction === "better" ? "ok" : "bad") }, ch.direction === "better" ? "flipped to pass" : "flipped to fail") : ""));
        }))));
  }

  async function viewComparePrompt(main, a, b, id) {
    const p = await api.comparePrompt(a, b, id);
    main.appendChild(h("h1", null, "Prompt " + id + ": A and B"));
    main.appendChild(h("p", null, h("a", { href: "#/compare/" + a + "/" + b }, "back to the comparison"), " · ", rawToggle()));
    const first = (p.a[0] || p.b[0] || { row: {} }).row;
    add(main, promptHeader(first));
    main.appendChild(h("div", { class: "side" },
      h("div", { "data-side": "a" }, h("h2", null, "A: " + RUNS[a].name), p.a.map(function (s) { return compactSample(a, s); })),
      h("div", { "data-side": "b" }, h("h2", null, "B: " + RUNS[b].name), p.b.map(function (s) { return compactSample(b, s); }))));
  }

  // ---- start ---------------------------------------------------------------------------------
  window.addEventListener("hashchange", route);
  api.runs().then(function (runs) { RUNS = runs; route(); }, function (error) {
    app.replaceChildren(h("main", null, card("Error", h("p", { class: "error" }, String(error.message || error)))));
  });
})();
