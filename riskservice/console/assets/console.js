// The analysts' console: keeps the key in sessionStorage (this tab only),
// fetches server-rendered fragments with it, and posts actions to the JSON API.
"use strict";

const KEY = "riskAnalystKey";
const $ = (sel) => document.querySelector(sel);
let queueQuery = { status: "open", reason: "" };
let caseStatus = "open";

function key() { return sessionStorage.getItem(KEY); }

// A request refused for the key: call() has signed out and said why, so the
// loads that were waiting on it just stop (no uncaught rejection).
class Refused extends Error {}
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof Refused) event.preventDefault();
});

function say(message, kind) {
  const box = $("#status");
  box.textContent = message;
  box.className = "status" + (kind ? " " + kind : "");
}

async function call(path, options) {
  const opts = options || {};
  opts.headers = Object.assign({ Authorization: "Bearer " + key() }, opts.headers || {});
  const resp = await fetch(path, opts);
  if (resp.status === 401 || resp.status === 403) {
    const body = await resp.json().catch(() => ({}));
    signOut((body.error && body.error.message) || "The key was refused.");
    throw new Refused("unauthorised");
  }
  return resp;
}

async function errorText(resp) {
  const body = await resp.json().catch(() => null);
  if (!body || !body.error) return "Request failed (" + resp.status + ")";
  const fields = Object.entries(body.error.fields || {}).map(([k, v]) => k + ": " + v).join("; ");
  return body.error.message + (fields && !body.error.message.includes(fields) ? " (" + fields + ")" : "");
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  $("#app").hidden = true;
  $("#performance").hidden = true;
  $("#nav").hidden = true;
  $("#who").hidden = true;
  $("#login").hidden = false;
  $("#key").value = "";
  $("#key").focus();
  if (message) say(message, "error");
}

function signedIn() {
  $("#login").hidden = true;
  $("#who").hidden = false;
  $("#nav").hidden = false;
  loadQueue();
  loadCases();
  route();
}

async function loadQueue(cursor) {
  const params = new URLSearchParams({ status: queueQuery.status });
  if (queueQuery.reason) params.set("reason", queueQuery.reason);
  if (cursor) params.set("cursor", cursor);
  const resp = await call("/console/queue?" + params);
  if (!resp.ok) { say(await errorText(resp), "error"); return; }
  $("#queue").innerHTML = await resp.text();
}

// The id in the address's #device= or #case=, or null (also for a malformed
// escape, as a hand-edited or truncated link may hold).
function fromHash(pattern) {
  const m = location.hash.match(pattern);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch (err) {
    say("The link's id is not valid (" + err.message + ").", "error");
    return null;
  }
}

function currentDevice() { return fromHash(/^#device=(.+)$/); }

function currentCase() { return fromHash(/^#case=(.+)$/); }

async function loadCases(cursor) {
  const params = new URLSearchParams({ status: caseStatus });
  if (cursor) params.set("cursor", cursor);
  const resp = await call("/console/cases?" + params);
  if (!resp.ok) { say(await errorText(resp), "error"); return; }
  $("#cases").innerHTML = await resp.text();
}

function showTab(which) {
  const cases = which === "cases";
  $("#cases-view").hidden = !cases;
  $("#devices-view").hidden = cases;
  $("#tab-cases").setAttribute("aria-pressed", String(cases));
  $("#tab-devices").setAttribute("aria-pressed", String(!cases));
}

// An error answer in place of a pane's content (the device pane by default).
async function showError(resp, pane = $("#device")) {
  pane.innerHTML = "";
  const p = document.createElement("p");
  p.className = "notice danger";
  p.textContent = await errorText(resp);
  pane.appendChild(p);
}

async function loadCase(caseId, focus) {
  const resp = await call("/console/cases/" + encodeURIComponent(caseId));
  if (!resp.ok) { await showError(resp); return; }
  $("#device").innerHTML = await resp.text();
  if (focus) $("#case-title").focus();
}

// The form's reason, or null after asking for one (every action needs it).
function reasonOf(form) {
  const reason = form.reason.value.trim();
  if (!reason) {
    say("Give a reason: it is kept in the audit trail.", "error");
    form.reason.focus();
    return null;
  }
  return reason;
}

async function actOnCase(form, action) {
  const caseId = form.dataset.case;
  const reason = reasonOf(form);
  if (!reason) return;
  // The members the analyst saw: the service refuses the action if the case changed since.
  const body = { action: action, reason: reason };
  if (form.dataset.members) body.members = JSON.parse(form.dataset.members);
  else body.members_digest = form.dataset.digest;
  if (action === "label") {
    const chosen = form.querySelector("input[name=label]:checked");
    if (!chosen) { say("Choose fraud or legit to label the members.", "error"); return; }
    body.label = chosen.value;
  }
  const resp = await call("/v1/review/cases/" + encodeURIComponent(caseId) + "/actions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!resp.ok) { say(await errorText(resp), "error"); return; }
  const result = await resp.json();
  say("Done: " + action + " case " + caseId + " (" + result.members.length + " members; audit entry #" +
      result.audit.seq + ").", "ok");
  await loadCase(caseId, true);
  loadCases();
  loadQueue();
}

async function loadDevice(device, hops, focus) {
  // The id goes in the query: any id a decision accepts ("/", "%", "#", "..") survives there.
  const params = new URLSearchParams({ device_id: device });
  if (hops) params.set("hops", hops);
  const resp = await call("/console/device?" + params);
  const pane = $("#device");
  if (!resp.ok) {
    await showError(resp, pane);
    return;
  }
  pane.innerHTML = await resp.text();
  if (focus) $("#device-title").focus();
}

// Two views: the review queue with a device (#queue, #device=...) and rule performance (#performance).
function route() {
  if (!key()) return;
  const performance = location.hash === "#performance";
  $("#app").hidden = performance;
  $("#performance").hidden = !performance;
  $("#nav-performance").removeAttribute("aria-current");
  $("#nav-queue").removeAttribute("aria-current");
  $(performance ? "#nav-performance" : "#nav-queue").setAttribute("aria-current", "page");
  if (performance) { loadPerformance(); return; }
  const device = currentDevice();
  if (device && key()) loadDevice(device, null, true);
  const caseId = currentCase();
  if (caseId && key()) { showTab("cases"); loadCase(caseId, true); }
}

async function loadPerformance() {
  const span = Number($("#perf-window").value);
  const params = new URLSearchParams({ since: String(Date.now() - span) });
  const resp = await call("/console/performance?" + params);
  const body = $("#performance-body");
  if (!resp.ok) {
    await showError(resp, body);
    return;
  }
  body.innerHTML = await resp.text();
  $("#performance-title").focus();
}

async function act(form, action) {
  const device = form.dataset.device;
  const reason = reasonOf(form);
  if (!reason) return;
  const body = { action: action, reason: reason };
  if (action === "label") {
    const chosen = form.querySelector("input[name=label]:checked");
    if (!chosen) { say("Choose fraud or legit to label the device.", "error"); return; }
    body.label = chosen.value;
  }
  const resp = await call("/v1/review/device/actions?" + new URLSearchParams({ device_id: device }), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!resp.ok) { say(await errorText(resp), "error"); return; }
  const result = await resp.json();
  say("Done: " + action + " " + device + " (now " + result.status + "; audit entry #" + result.audit.seq + ").", "ok");
  const hops = document.querySelector(".device") && document.querySelector(".device").dataset.hops;
  await loadDevice(device, hops, true);
  loadQueue();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("#key").value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    say("");
    signedIn();
  });
  $("#forget").addEventListener("click", () => signOut("Key forgotten."));
  $("#queue-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    queueQuery = { status: $("#f-status").value, reason: $("#f-reason").value.trim() };
    loadQueue();
  });
  $("#queue").addEventListener("click", (ev) => {
    const more = ev.target.closest("button.more");
    if (more) loadQueue(more.dataset.cursor);
    const item = ev.target.closest("a.queue-item");
    // The same device again changes no hash: load it directly.
    if (item && item.getAttribute("href") === location.hash) {
      ev.preventDefault();
      loadDevice(item.dataset.device, null, true);
    }
  });
  // Queue entries are links (Enter opens them); Space opens them too, as on a button.
  $("#queue").addEventListener("keydown", (ev) => {
    const item = ev.target.closest && ev.target.closest("a.queue-item");
    if (item && ev.key === " ") {
      ev.preventDefault();
      item.click();
    }
  });
  $("#device").addEventListener("submit", (ev) => {
    if (ev.target.id !== "action-form" && ev.target.id !== "case-form") return;
    ev.preventDefault();
    const button = ev.submitter;
    if (!button || !button.value) return;
    if (ev.target.id === "case-form") actOnCase(ev.target, button.value); else act(ev.target, button.value);
  });
  $("#tab-devices").addEventListener("click", () => showTab("devices"));
  $("#tab-cases").addEventListener("click", () => showTab("cases"));
  $("#cases-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    caseStatus = $("#c-status").value;
    loadCases();
  });
  $("#cases").addEventListener("click", (ev) => {
    const more = ev.target.closest("button.more-cases");
    if (more) loadCases(more.dataset.cursor);
    const item = ev.target.closest("a.case-item");
    if (item && item.getAttribute("href") === location.hash) {
      ev.preventDefault();
      loadCase(item.dataset.case, true);
    }
  });
  $("#cases").addEventListener("keydown", (ev) => {
    const item = ev.target.closest && ev.target.closest("a.case-item");
    if (item && ev.key === " ") {
      ev.preventDefault();
      item.click();
    }
  });
  $("#device").addEventListener("change", (ev) => {
    if (ev.target.id === "hops") {
      const device = document.querySelector(".device").dataset.device;
      loadDevice(device, ev.target.value, false).then(() => $("#hops").focus());
    }
  });
  $("#perf-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadPerformance();
  });
  window.addEventListener("hashchange", route);
  if (key()) signedIn(); else $("#key").focus();
});
