// Exec approvals section: commands agents are waiting to run, from the
// sidecar (the gate forwards /.clawguard/api/approvals* to it). A person
// allows once, allows always (recording an allow entry whose args pattern
// they may widen here), or denies. The list follows the sidecar's live feed.
import { registerSection, el, getJSON, post, act, refresh, countdown } from "./app.js";

document.head.append(el("link", { rel: "stylesheet", href: "approvals.css" }));

function answer(a, decision, args) {
  const body = { decision };
  if (args !== undefined) body.args = args;
  return post("approvals/" + encodeURIComponent(a.id), body);
}

// allowAlways offers the entry allow-always would record, its pattern
// editable, or says why allow-always is not possible for this command.
// The pattern is an RE2 regular expression over the arguments joined by
// spaces, matched as a whole (the approvals file's "args"); the label says
// so on screen, since a phone shows no tooltips.
function allowAlways(a) {
  if (!a.allow_always) {
    return el("div", { class: "allow-always refused" },
      el("button", { class: "approve", "data-action": "allow-always", disabled: true }, "Allow always"),
      el("p", { class: "reason" }, "Allow always is not possible: " + a.allow_always_refused));
  }
  const inputID = "allow-always-" + a.id;
  const input = el("input", {
    id: inputID, type: "text", value: a.allow_always.args, spellcheck: "false", autocapitalize: "off", autocomplete: "off",
    title: "widen it to cover similar commands",
  });
  return el("form", {
    class: "allow-always", "data-id": a.id,
    onsubmit: (ev) => {
      ev.preventDefault();
      act(ev.submitter || input, () => answer(a, "allow-always", input.value));
    },
  },
  el("label", { for: inputID },
    "Allow always: regex over the arguments of ", el("code", {}, a.allow_always.path),
    el("span", { class: "hint" }, " (RE2, matches the whole argument string; widen it to cover similar commands)")),
  el("div", { class: "row" }, input, el("button", { type: "submit", class: "approve", "data-action": "allow-always" }, "Allow always")));
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
        el("td", { class: "command" }, el("code", { class: "command" }, a.command),
          el("div", { class: "reason" }, a.reason),
          el("div", { class: "resolved" }, "runs ", el("code", {}, a.resolved), a.cwd ? [" in ", el("code", {}, a.cwd)] : [])),
        // The ask's id in full, as `clawguard approvals list` shows it.
        el("td", { "data-label": "Ask" }, el("code", { class: "id" }, a.id)),
        el("td", { "data-label": "Agent" }, a.agent),
        el("td", { "data-label": "Requested by" }, a.identity || ""),
        el("td", { "data-label": "Where" }, a.target === "host" ? el("span", { class: "badge warn", title: "outside any sandbox" }, "host (elevated)") : a.target),
        el("td", { "data-label": "Expires in" }, countdown(a.expires)),
        el("td", { class: "actions" },
          el("div", { class: "once" },
            el("button", {
              class: "approve", "data-action": "allow-once",
              onclick: (ev) => act(ev.currentTarget, () => answer(a, "allow-once")),
            }, "Allow once"),
            el("button", {
              class: "reject", "data-action": "deny",
              onclick: (ev) => act(ev.currentTarget, () => answer(a, "deny")),
            }, "Deny")),
          allowAlways(a))));
    body.append(el("table", {},
      el("thead", {}, el("tr", {}, ["Command", "Ask", "Agent", "Requested by", "Where", "Expires in", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
  },
});
