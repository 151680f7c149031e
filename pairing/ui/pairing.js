// Pairing sections: pending requests (approve / reject) and paired devices
// (rename / revoke).
import { registerSection, el, getJSON, post, act, countdown, when } from "./app.js";

function short(id) {
  return id.slice(0, 12) + "…";
}

registerSection({
  id: "pairing",
  title: "Pending pairing requests",
  topics: ["pairing"],
  load: () => getJSON("pairing"),
  render(body, data) {
    if (!data.requests.length) {
      body.append(el("p", { class: "empty" }, "No device is waiting for approval."));
      return;
    }
    const rows = data.requests.map((r) =>
      el("tr", { "data-request": r.request_id },
        el("td", { class: "name" }, r.name),
        // The request id in full, as `clawguard devices list` shows it.
        el("td", { "data-label": "Request" }, el("code", { class: "id" }, r.request_id)),
        el("td", { "data-label": "Device" }, el("code", { title: r.device_id }, short(r.device_id))),
        el("td", { "data-label": "From" }, r.client_ip || ""),
        el("td", { "data-label": "Requested" }, when(r.created_at)),
        el("td", { "data-label": "Expires in" }, countdown(r.expires_at)),
        el("td", { class: "actions" },
          el("button", {
            class: "approve", "data-action": "approve", "data-id": r.request_id,
            onclick: (ev) => act(ev.currentTarget, () => post("pairing/" + encodeURIComponent(r.request_id) + "/approve")),
          }, "Approve"),
          el("button", {
            class: "reject", "data-action": "reject", "data-id": r.request_id,
            onclick: (ev) => act(ev.currentTarget, () => post("pairing/" + encodeURIComponent(r.request_id) + "/reject")),
          }, "Reject"))));
    body.append(el("table", {},
      el("thead", {}, el("tr", {}, ["Name", "Request", "Device", "From", "Requested", "Expires in", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
  },
});

// A revoke needs a second click within a few seconds, so a stray click
// does not cut a device off.
function revokeButton(d) {
  let armed = null;
  return el("button", {
    class: "revoke", "data-action": "revoke", "data-id": d.device_id,
    onclick: (ev) => {
      const b = ev.currentTarget;
      if (!armed) {
        b.textContent = "Confirm revoke";
        b.classList.add("armed");
        armed = setTimeout(() => { armed = null; b.textContent = "Revoke"; b.classList.remove("armed"); }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      act(b, () => post("devices/" + encodeURIComponent(d.device_id) + "/revoke"));
    },
  }, "Revoke");
}

function renameForm(d) {
  const input = el("input", { type: "text", value: d.name, maxlength: 64, "aria-label": "name of " + d.name, required: true });
  return el("form", {
    class: "rename", "data-id": d.device_id,
    onsubmit: (ev) => {
      ev.preventDefault();
      act(ev.submitter || input, () => post("devices/" + encodeURIComponent(d.device_id) + "/rename", { name: input.value.trim() }));
    },
  }, input, el("button", { type: "submit", "data-action": "rename" }, "Rename"));
}

registerSection({
  id: "devices",
  title: "Paired devices",
  topics: ["devices"],
  load: () => getJSON("devices"),
  render(body, data) {
    if (!data.devices.length) {
      body.append(el("p", { class: "empty" }, "No device is paired yet. Pair one with: clawguard pair --gateway URL --name NAME"));
      return;
    }
    const rows = data.devices.map((d) =>
      el("tr", { "data-device": d.device_id, "data-status": d.status, class: d.status },
        el("td", { class: "name" }, d.status === "revoked" ? d.name : renameForm(d)),
        el("td", { "data-label": "Device" }, el("code", { title: d.device_id }, short(d.device_id))),
        el("td", { class: "status", "data-label": "Status" }, d.status.replace("_", " ")),
        el("td", { "data-label": "Last seen" }, when(d.last_seen)),
        el("td", { "data-label": "Last address" }, d.last_ip || ""),
        el("td", { "data-label": "Approved by" }, d.approved_by),
        el("td", { class: "actions" }, d.status === "revoked" ? "" : revokeButton(d))));
    body.append(el("table", {},
      el("thead", {}, el("tr", {}, ["Name", "Device", "Status", "Last seen", "Last address", "Approved by", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
  },
});
