// Exec approvals section: commands agents are waiting to run, from the
// sidecar (the gate forwards /.clawguard/api/approvals* to it). A person
// allows once, allows always (recording an allow entry whose args pattern
// they may widen here), or denies. The list follows the sidecar's live feed.
import { registerSection, el, getJSON, post, act, refresh } from "./app.js";

document.head.append(el("link", { rel: "stylesheet", href: "approvals.css" }));

function remaining(iso) {
  const s = Math.max(0, Math.round((new Date(iso) - Date.now()) / 1000));
  return s >= 60 ? Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s" : s + "s";
}

function answer(a, decision, args) {
  const body = { decision };
  if (args !== undefined) body.args = args;
  return post("approvals/" + encodeURIComponent(a.id), body);
}

// allowAlways offers the entry allow-always would record, its pattern
// editable, or says why allow-always is not possible for this command.
function allowAlways(a) {
  if (!a.allow_always) {
    return el("button", { class: "approve", "data-action": "allow-always", disabled: true, title: a.allow_always_refused }, "Allow always");
  }
  const input = el("input", {
    type: "text", value: a.allow_always.args, "aria-label": "args pattern to allow always", spellcheck: "false",
    title: "RE2 pattern over the arguments of " + a.allow_always.path + "; widen it to cover similar commands",
  });
  return el("form", {
    class: "allow-always", "data-id": a.id,
    onsubmit: (ev) => {
      ev.preventDefault();
      act(ev.submitter || input, () => answer(a, "allow-always", input.value));
    },
  }, input, el("button", { type: "submit", class: "approve", "data-action": "allow-always" }, "Allow always"));
}

// The sidecar's live feed: each event means the pending list changed.
// When it ends (the sidecar stopped), the section checks the status again
// every few seconds and reconnects once the sidecar is back.
let feed = null;
let recheck = null;
let listed = ""; // the IDs load() last listed

function ids(approvals) {
  return approvals.map((a) => a.id).sort().join(" ");
}

function later() {
  if (!recheck) recheck = setTimeout(() => { recheck = null; refresh(["approvals"]); }, 5000);
}

function follow() {
  if (feed) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  feed = new WebSocket(proto + "//" + location.host + "/.clawguard/api/approvals/events");
  // The first message is a snapshot, usually of what load() has just
  // listed; only a difference needs a reload.
  feed.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type !== "snapshot" || ids(msg.approvals || []) !== listed) refresh(["approvals"]);
  };
  feed.onclose = () => { feed = null; later(); };
}

async function load() {
  const status = await getJSON("approvals/status");
  if (!status.available) {
    later();
    return { unavailable: status.error };
  }
  const data = await getJSON("approvals?state=pending");
  listed = ids(data.approvals);
  follow();
  return data;
}

registerSection({
  id: "approvals",
  title: "Commands waiting for approval",
  topics: ["approvals"],
  load,
  render(body, data) {
    // Without a sidecar (a gate alone) the section stays hidden; it shows
    // once one answers on the socket.
    body.parentElement.hidden = Boolean(data.unavailable);
    if (data.unavailable) {
      body.append(el("p", { class: "empty" }, "Exec approvals are not available: " + data.unavailable));
      return;
    }
    if (!data.approvals.length) {
      body.append(el("p", { class: "empty" }, "No command is waiting for approval."));
      return;
    }
    const rows = data.approvals.map((a) =>
      el("tr", { "data-approval": a.id, class: a.target },
        el("td", {}, el("code", { class: "command", title: "runs " + a.resolved + " in " + a.cwd }, a.command),
          el("div", { class: "reason" }, a.reason)),
        el("td", {}, a.agent),
        el("td", {}, a.identity || ""),
        el("td", {}, a.target === "host" ? el("span", { class: "badge warn", title: "outside any sandbox" }, "host (elevated)") : a.target),
        el("td", {}, remaining(a.expires)),
        el("td", { class: "actions" },
          el("button", {
            class: "approve", "data-action": "allow-once",
            onclick: (ev) => act(ev.currentTarget, () => answer(a, "allow-once")),
          }, "Allow once"),
          allowAlways(a),
          el("button", {
            class: "reject", "data-action": "deny",
            onclick: (ev) => act(ev.currentTarget, () => answer(a, "deny")),
          }, "Deny"))));
    body.append(el("table", {},
      el("thead", {}, el("tr", {}, ["Command", "Agent", "Requested by", "Where", "Expires in", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
  },
});
