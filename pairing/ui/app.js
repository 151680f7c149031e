// clawguard admin UI core. No framework, no build step, no inline code (the
// page runs under a CSP without 'unsafe-inline'). Sections (pairing requests,
// devices, and later exec approvals) register themselves with
// registerSection; the core loads and renders them, and reloads the ones
// whose topics a live event names.

const API = "/.clawguard/api/";
const sections = [];
let csrfToken = null;

// registerSection adds a section to the page.
//   id:      unique id, used as the element id
//   title:   heading
//   topics:  live-event topics that make it reload (e.g. ["pairing"])
//   load():  async, returns the data to render
//   render(body, data): fills the section's body element
export function registerSection(section) {
  sections.push(section);
}

// el builds an element. Text is always set as text, never parsed as HTML,
// so names chosen by devices cannot inject markup.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class APIError extends Error {
  constructor(status, body) {
    super(body.error || "HTTP " + status);
    this.status = status;
    this.code = body.code || "";
  }
}

async function apiError(resp) {
  let body = {};
  try { body = await resp.json(); } catch { /* not JSON */ }
  return new APIError(resp.status, body);
}

// clockOffset is how far the gate's clock is ahead of this device's, from
// the Date header of its answers; countdowns use the gate's time, so a phone
// whose clock is off still shows the right time left.
let clockOffset = 0;

function noteServerTime(resp) {
  const d = Date.parse(resp.headers.get("Date") || "");
  if (Number.isNaN(d)) return;
  const off = d - Date.now();
  // The header has whole seconds: small differences are that, not skew.
  clockOffset = Math.abs(off) > 3000 ? off : 0;
}

export async function getJSON(path) {
  const resp = await fetch(API + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  noteServerTime(resp);
  if (!resp.ok) throw await apiError(resp);
  return resp.json();
}

// left says how long until ms (a time in the gate's clock): "4m 05s",
// "1h 02m 03s", "12s"; "" once it has passed.
function left(ms) {
  const s = Math.ceil((ms - Date.now() - clockOffset) / 1000);
  if (s <= 0) return "";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
  if (h) return h + "h " + String(m).padStart(2, "0") + "m " + sec + "s";
  return m ? m + "m " + sec + "s" : s + "s";
}

function tick(e) {
  const ms = Number(e.dataset.expires);
  const text = left(ms);
  e.textContent = text || "expired";
  e.classList.toggle("expired", !text);
  e.classList.toggle("soon", Boolean(text) && ms - Date.now() - clockOffset < 30000);
}

// countdown is an element showing the time left until iso, updated every
// second; its title says the moment itself.
export function countdown(iso) {
  const ms = Date.parse(iso);
  const e = el("span", { class: "countdown", "data-expires": ms, title: "expires " + new Date(ms).toLocaleString() });
  tick(e);
  return e;
}

setInterval(() => document.querySelectorAll(".countdown").forEach(tick), 1000);

// when shows a past moment briefly: the time of day today, else date and time.
export function when(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

async function session() {
  const s = await getJSON("session");
  csrfToken = s.csrf_token;
  document.getElementById("identity").textContent = "signed in as " + s.identity;
}

// post sends a write with the CSRF token, fetching a new token once if the
// gate restarted (tokens are kept in its memory only).
export async function post(path, body) {
  if (!csrfToken) await session();
  const send = () => fetch(API + path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
    body: JSON.stringify(body || {}),
  });
  let resp = await send();
  if (resp.status === 403) {
    const err = await apiError(resp.clone());
    if (err.code === "csrf") {
      await session();
      resp = await send();
    }
  }
  if (!resp.ok) throw await apiError(resp);
  return resp.json();
}

export function showError(err) {
  const p = document.getElementById("error");
  if (!err) {
    p.hidden = true;
    p.textContent = "";
    return;
  }
  p.textContent = String(err.message || err);
  p.hidden = false;
}

// act runs a button's action, disabling it meanwhile; the live feed (or the
// explicit refresh) shows the result.
export async function act(button, fn) {
  button.disabled = true;
  try {
    await fn();
    showError(null);
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
  await refresh(null, true);
}

// inUse reports whether redrawing body would throw away what a person is
// doing there: a focused or edited text field, or a button armed for its
// confirming second click. Live events must not do that.
function inUse(body) {
  const a = document.activeElement;
  if (a && a.tagName === "INPUT" && body.contains(a)) return true;
  if (body.querySelector(".armed")) return true;
  return [...body.querySelectorAll("input")].some((i) => i.value !== i.defaultValue);
}

// renderSection redraws a section; a section in use is redrawn once the
// person is done with it, unless force (after their own action) says now.
async function renderSection(s, force) {
  const body = document.getElementById(s.id).querySelector(".body");
  if (!force && inUse(body)) {
    if (!s.retry) s.retry = setTimeout(() => { s.retry = null; renderSection(s, false); }, 1000);
    return;
  }
  try {
    const data = await s.load();
    // Unchanged data keeps the DOM as it is: no flicker, and no element a
    // person is about to click is swapped under them.
    const shown = JSON.stringify(data);
    if (shown === s.shown) return;
    body.replaceChildren();
    s.render(body, data);
    s.shown = shown;
  } catch (err) {
    s.shown = null;
    body.replaceChildren(el("p", { class: "error" }, "could not load: " + err.message));
  }
}

// refresh reloads the sections of the given topics (all when null); force
// redraws sections in use too.
export async function refresh(topics, force = false) {
  const todo = sections.filter((s) => !topics || s.topics.some((t) => topics.includes(t)));
  await Promise.all(todo.map((s) => renderSection(s, force)));
}

// live keeps a WebSocket to the event feed; while it is down the page polls.
function live() {
  const badge = document.getElementById("live");
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let delay = 500;
  let poller = null;
  const startPolling = () => {
    if (!poller) poller = setInterval(() => refresh(null), 5000);
  };
  const connect = () => {
    const ws = new WebSocket(proto + "//" + location.host + API + "events");
    ws.onopen = () => {
      delay = 500;
      badge.textContent = "live";
      badge.className = "badge ok";
      if (poller) { clearInterval(poller); poller = null; }
    };
    ws.onmessage = (ev) => {
      let msg = {};
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "changed") refresh(msg.topics || null);
    };
    ws.onclose = () => {
      badge.textContent = "reconnecting…";
      badge.className = "badge warn";
      startPolling();
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  connect();
}

async function start() {
  const main = document.getElementById("sections");
  for (const s of sections) {
    main.append(el("section", { id: s.id }, el("h2", {}, s.title), el("div", { class: "body" }, "loading…")));
  }
  try {
    await session();
  } catch (err) {
    showError(err);
  }
  await refresh(null);
  live();
}

// Module scripts run before DOMContentLoaded, so every section has
// registered by then.
document.addEventListener("DOMContentLoaded", start);
