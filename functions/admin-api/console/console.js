// Operator console of the snapshot admin API. No build step, no dependencies; every call
// goes to the admin API with the bearer token kept in this tab's sessionStorage only.
"use strict";

const api = new URL("../", window.location.href);
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "snapshot-console-token";

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function say(text, kind) {
  const message = $("message");
  message.textContent = text;
  message.className = kind || "";
}

// Calls the API; a problem+json answer becomes an Error carrying its title and detail.
async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, api), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!response.ok) {
    const title = (json && json.title) || response.statusText;
    const detail = (json && json.detail) || "";
    const error = new Error(`${response.status} ${title}${detail ? ": " + detail : ""}`);
    error.status = response.status;
    throw error;
  }
  return json;
}

async function guarded(action) {
  try {
    await action();
  } catch (error) {
    say(error.status === 401 || error.status === 403
      ? `Refused (${error.message}). Sign in with an admin token.`
      : error.message, "error");
  }
}

function showSignedIn() {
  const signedIn = token() !== "";
  $("signed-in").hidden = !signedIn;
  $("sign-in-form").hidden = signedIn;
}

function enc(value) {
  return encodeURIComponent(value);
}

function currentId() {
  return $("aggregate-id").value.trim();
}

function currentType() {
  return $("aggregate-type").value;
}

// Pretty-printed JSON, one element per line, lines at or under a differing JSON Pointer
// marked with the `diff` class.
function renderJson(target, value, differences) {
  target.replaceChildren();
  const marked = (pointer) =>
    differences.some((d) => d === "" || pointer === d || pointer.startsWith(d + "/"));
  const line = (indent, text, pointer) => {
    const span = document.createElement("span");
    span.textContent = "  ".repeat(indent) + text + "\n";
    if (pointer !== null && marked(pointer)) span.className = "diff";
    target.appendChild(span);
  };
  const escape = (key) => key.replace(/~/g, "~0").replace(/\//g, "~1");
  const walk = (v, indent, pointer, prefix, suffix) => {
    if (v !== null && typeof v === "object") {
      const isArray = Array.isArray(v);
      const entries = isArray ? v.map((x, i) => [String(i), x]) : Object.entries(v);
      if (entries.length === 0) {
        line(indent, prefix + (isArray ? "[]" : "{}") + suffix, pointer);
        return;
      }
      line(indent, prefix + (isArray ? "[" : "{"), pointer);
      entries.forEach(([k, x], i) => {
        const comma = i < entries.length - 1 ? "," : "";
        walk(x, indent + 1, pointer + "/" + escape(k), isArray ? "" : JSON.stringify(k) + ": ", comma);
      });
      line(indent, (isArray ? "]" : "}") + suffix, pointer);
    } else {
      line(indent, prefix + JSON.stringify(v) + suffix, pointer);
    }
  };
  walk(value, 0, "", "", "");
}

async function lookup() {
  const id = currentId();
  if (!id) return;
  const page = await call("GET", `admin/snapshots/${enc(id)}?limit=100`);
  $("snapshots-of").textContent = id;
  const body = $("snapshots").querySelector("tbody");
  body.replaceChildren();
  const items = page.items || [];
  for (const s of items) {
    const row = document.createElement("tr");
    row.dataset.version = s.version;
    const cells = [s.version, s.schemaVersion, s.encoding, s.sizeBytes, s.storedBytes,
      (s.metadata && s.metadata.reason) || "", new Date(s.timestamp).toISOString()];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = String(c);
      row.appendChild(td);
    }
    const actions = document.createElement("td");
    const view = document.createElement("button");
    view.textContent = "View";
    view.className = "view";
    view.addEventListener("click", () => guarded(() => viewState(id, s.version)));
    const del = document.createElement("button");
    del.textContent = "Delete";
    del.className = "delete";
    del.addEventListener("click", () => guarded(() => confirmDelete(id, s.version, items.length === 1)));
    actions.append(view, " ", del);
    row.appendChild(actions);
    body.appendChild(row);
  }
  $("snapshots-section").hidden = false;
  $("aggregate-actions").hidden = false;
  say(`${items.length} snapshot(s) of ${id}`, "ok");
}

async function viewState(id, version) {
  const page = await call("GET", `admin/snapshots/${enc(id)}?includeState=true&limit=1&cursor=${version + 1}`);
  const snapshot = (page.items || [])[0];
  if (!snapshot || snapshot.version !== version) throw new Error(`snapshot ${version} not found`);
  $("state-title").textContent = `State of ${id} at version ${version}` + (snapshot.valid ? "" : ` (invalid: ${snapshot.invalidReason})`);
  if (snapshot.state !== undefined) renderJson($("state"), snapshot.state, []);
  else $("state").textContent = snapshot.stateOmitted || snapshot.invalidReason || "";
  $("state-section").hidden = false;
  say(`Showing version ${version}`, "ok");
}

async function createSnapshot() {
  const created = await call("POST", `admin/snapshots/create/${enc(currentType())}/${enc(currentId())}`);
  await lookup();
  say(`Snapshot ${created.outcome === "created" ? "created" : "already present"} at version ${created.snapshot.version}`, "ok");
}

async function verify() {
  const result = await call("POST", `admin/snapshots/${enc(currentId())}/verify`);
  const verdict = $("verify-result");
  verdict.textContent = result.result;
  verdict.className = result.result;
  $("verify-summary").textContent = result.result === "match"
    ? `Snapshot + tail equals the full replay at version ${result.version}.`
    : `${result.differences.length} difference(s): ${result.differences.join(", ")}`;
  renderJson($("verify-loaded"), result.loadedState === undefined ? null : result.loadedState, result.differences);
  renderJson($("verify-replayed"), result.replayedState === undefined ? null : result.replayedState, result.differences);
  $("verify-section").hidden = false;
  say(`Verify: ${result.result}`, result.result === "match" ? "ok" : "error");
}

function confirmDelete(id, version, last) {
  const dialog = $("confirm");
  $("confirm-text").textContent = `Delete snapshot ${version} of ${id}?`;
  $("confirm-force-row").hidden = !last;
  $("confirm-force").checked = false;
  dialog.onclose = () => {
    if (dialog.returnValue !== "ok") return;
    const force = last && $("confirm-force").checked;
    guarded(async () => {
      await call("DELETE", `admin/snapshots/${enc(id)}/${version}${force ? "?force=true" : ""}`);
      await lookup();
      say(`Deleted snapshot ${version} of ${id}`, "ok");
    });
  };
  dialog.showModal();
}

async function cleanupDryRun() {
  const id = currentId();
  const body = id ? { dryRun: true, aggregateId: id } : { dryRun: true };
  const summary = await call("POST", "admin/snapshots/cleanup", body);
  $("cleanup-result").textContent = JSON.stringify(summary, null, 2);
  say("Cleanup dry run done: nothing was deleted", "ok");
}

async function backfillDryRun() {
  const plan = await call("POST", "admin/backfill", { dryRun: true });
  $("backfill-plan").textContent = JSON.stringify(plan, null, 2);
  say(`Backfill would re-snapshot ${plan.aggregates} aggregate(s)`, "ok");
}

function showBackfill(status) {
  const progress = $("backfill-progress");
  progress.max = Math.max(status.total, 1);
  progress.value = status.done;
  $("backfill-status").textContent = `${status.done} / ${status.total} ${status.state}`;
}

async function backfillStart() {
  let status = await call("POST", "admin/backfill", { dryRun: false });
  showBackfill(status);
  while (status.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    status = await call("GET", `admin/backfill/${enc(status.jobId)}`);
    showBackfill(status);
  }
  say(`Backfill ${status.state}: ${status.done} / ${status.total}`, "ok");
}

document.addEventListener("DOMContentLoaded", () => {
  showSignedIn();
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    showSignedIn();
    say("Signed in", "ok");
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignedIn();
    say("Signed out", "ok");
  });
  $("lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(lookup);
  });
  $("create").addEventListener("click", () => guarded(createSnapshot));
  $("verify").addEventListener("click", () => guarded(verify));
  $("cleanup-dry-run").addEventListener("click", () => guarded(cleanupDryRun));
  $("backfill-dry-run").addEventListener("click", () => guarded(backfillDryRun));
  $("backfill-start").addEventListener("click", () => guarded(backfillStart));
});
