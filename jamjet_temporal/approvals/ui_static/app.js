// The approvals page: polls /api/pending, renders one row per open request, posts decisions.
// No framework, no build step. Text from the server is only ever set with textContent.
"use strict";

(function () {
  const POLL_MS = 2000;
  const csrf = document.querySelector('meta[name="jamjet-csrf"]').content;
  const rowsEl = document.getElementById("rows");
  const statusEl = document.getElementById("status");
  const problemEl = document.getElementById("problem");
  const updatedEl = document.getElementById("updated");
  const unansweredEl = document.getElementById("unanswered");
  const rows = new Map(); // keyOf(item) -> {tr, cells, data}
  const busy = new Set(); // keys with a decision in flight
  const closed = new Set(); // keys this page completed; a poll begun before must not revive them
  let latest = [];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function money(value) {
    const whole = Number.isInteger(value);
    return new Intl.NumberFormat("en-US", {
      style: "currency", currency: "USD",
      minimumFractionDigits: whole ? 0 : 2, maximumFractionDigits: whole ? 0 : 2,
    }).format(value);
  }

  function plain(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function age(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + "s ago";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + "m ago";
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + "h " + (minutes % 60) + "m ago";
    return Math.floor(hours / 24) + "d ago";
  }

  function until(iso) {
    const when = new Date(iso);
    const seconds = Math.round((when.getTime() - Date.now()) / 1000);
    let left;
    if (seconds <= 0) left = "passed";
    else if (seconds < 3600) left = "in " + Math.ceil(seconds / 60) + "m";
    else if (seconds < 172800) left = "in " + Math.floor(seconds / 3600) + "h";
    else left = "in " + Math.floor(seconds / 86400) + "d";
    return [when.toLocaleString(), left];
  }

  // A request restarted under the same workflow id is a new row, never the old row changed.
  function keyOf(item) {
    return [item.run_id, item.workflow_run_id, item.approval_id, item.nonce].join("/");
  }

  function showUnanswered(ids) {
    unansweredEl.textContent = !ids.length ? ""
      : ids.length + (ids.length === 1 ? " run" : " runs") + " did not answer (no worker?): " +
        ids.join(", ");
  }

  function setStatus(text, kind) {
    statusEl.textContent = text;
    statusEl.className = kind || "";
  }

  function fillCells(entry) {
    const item = entry.data;
    const c = entry.cells;
    c.action.textContent = item.action;
    const amount = item.args.amount;
    c.amount.textContent = typeof amount === "number" ? money(amount)
      : amount === undefined ? "—" : plain(amount);
    c.details.replaceChildren();
    const list = el("ul", { class: "args" });
    for (const [name, value] of Object.entries(item.args)) {
      if (name === "amount" && typeof value === "number") continue;
      const li = el("li");
      li.append(el("span", {}, name + ": "), document.createTextNode(plain(value)));
      list.append(li);
    }
    if (!list.children.length) list.append(el("li", { class: "small" }, "no other arguments"));
    c.details.append(list);
    c.requester.textContent = item.requester || "unknown";
    c.age.textContent = age(item.requested_at);
    c.age.title = new Date(item.requested_at).toLocaleString();
    c.run.replaceChildren(
      el("div", { class: "mono" }, item.run_id),
      el("div", { class: "small" }, item.workflow_type + " · " + item.approval_id),
    );
    c.approvals.replaceChildren(
      el("div", {}, item.approved_by.length + " of " + item.required + " approved"),
      el("div", { class: "small" }, "May approve: " + (item.eligible.join(", ") || "nobody")),
      el("div", { class: "small" },
        item.approved_by.length ? "Approved by: " + item.approved_by.join(", ") : "No approvals yet"),
    );
    if (item.stage === "escalated") c.approvals.append(el("div", { class: "small" }, "Escalated"));
    if (item.deadline) {
      const [when, left] = until(item.deadline);
      c.deadline.replaceChildren(el("div", {}, when), el("div", { class: "small" }, left));
    } else {
      c.deadline.textContent = "none";
    }
    const sending = busy.has(keyOf(item));
    c.approve.disabled = sending || !item.can_approve;
    c.reject.disabled = sending || !item.can_reject;
    c.comment.disabled = !item.can_approve && !item.can_reject;
    c.why.textContent = item.why_not || "";
    c.why.hidden = !item.why_not;
  }

  function makeRow(item) {
    const key = keyOf(item);
    const id = "r" + Math.random().toString(36).slice(2, 10);
    const tr = el("tr", { "data-key": key, "data-run-id": item.run_id });
    const cells = {};
    for (const name of ["action", "amount", "details", "requester", "age", "run", "approvals", "deadline"]) {
      cells[name] = el("td", { class: name });
      tr.append(cells[name]);
    }
    const decide = el("td", { class: "decide" });
    const label = el("label", { for: id + "-comment" }, "Comment");
    const input = el("input", { type: "text", id: id + "-comment", name: "comment",
      autocomplete: "off", maxlength: "2000", placeholder: "Why (recorded in the audit trail)" });
    const buttons = el("div", { class: "buttons" });
    const why = el("div", { class: "why", id: id + "-why" });
    const approve = el("button", { type: "button", class: "approve", "aria-describedby": id + "-why" }, "Approve");
    const reject = el("button", { type: "button", class: "reject", "aria-describedby": id + "-why" }, "Reject");
    approve.setAttribute("aria-label", "Approve " + item.action + " in run " + item.run_id);
    reject.setAttribute("aria-label", "Reject " + item.action + " in run " + item.run_id);
    buttons.append(approve, reject);
    decide.append(label, input, buttons, why);
    tr.append(decide);
    Object.assign(cells, { comment: input, approve, reject, why });
    const entry = { tr, cells, data: item };
    approve.addEventListener("click", () => decide_(entry, "approved"));
    reject.addEventListener("click", () => decide_(entry, "rejected"));
    return entry;
  }

  function render(all) {
    const items = all.filter((item) => !closed.has(keyOf(item)));
    latest = items;
    const seen = new Set();
    for (const item of items) {
      const key = keyOf(item);
      seen.add(key);
      let entry = rows.get(key);
      if (!entry) {
        entry = makeRow(item);
        rows.set(key, entry);
      }
      entry.data = item;
      fillCells(entry);
      rowsEl.append(entry.tr); // keeps the server's order; moving a node keeps its input
    }
    for (const [key, entry] of rows) {
      if (!seen.has(key)) {
        entry.tr.remove();
        rows.delete(key);
      }
    }
    const empty = rowsEl.querySelector("tr.empty");
    if (items.length && empty) empty.remove();
    if (!items.length && !empty) {
      const tr = el("tr", { class: "empty" });
      tr.append(el("td", { colspan: "9" }, "No pending approvals."));
      rowsEl.append(tr);
    } else if (!items.length && empty) {
      empty.firstChild.textContent = "No pending approvals.";
    }
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (_) {
      return { error: "HTTP " + response.status + " " + response.statusText };
    }
  }

  async function poll() {
    try {
      const response = await fetch("api/pending", { headers: { Accept: "application/json" }, cache: "no-store" });
      const body = await readJson(response);
      if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
      render(body.requests);
      showUnanswered(body.unanswered);
      problemEl.textContent = "";
      updatedEl.textContent = "Updated " + new Date().toLocaleTimeString();
    } catch (error) {
      problemEl.textContent = "Cannot load pending approvals: " + error.message + " (retrying)";
      for (const entry of rows.values()) fillCells(entry); // keep ages moving
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  async function decide_(entry, decision) {
    const item = entry.data;
    const key = keyOf(item);
    if (busy.has(key)) return;
    busy.add(key);
    fillCells(entry);
    const verb = decision === "approved" ? "Approving" : "Rejecting";
    setStatus(verb + " " + item.action + " in run " + item.run_id + "…", "");
    try {
      const response = await fetch("api/decide", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-JamJet-CSRF": csrf },
        // Exactly the request this row shows: the server signs it only if it is unchanged.
        body: JSON.stringify({
          run_id: item.run_id, approval_id: item.approval_id,
          workflow_run_id: item.workflow_run_id, nonce: item.nonce, digest: item.digest,
          decision, comment: entry.cells.comment.value,
        }),
      });
      const body = await readJson(response);
      if (!response.ok) {
        setStatus("Not sent: " + (body.error || "HTTP " + response.status), "bad");
      } else if (body.accepted) {
        const done = !body.complete ? "More approvals are needed."
          : decision === "approved" ? "The run goes on." : "The run will not do it.";
        setStatus("Accepted: you " + decision + " " + item.action + " in run " + item.run_id +
          " — " + body.reason + ". " + done + " Audit event " + body.event_id + ".", "ok");
        entry.cells.comment.value = "";
        if (body.complete) {
          closed.add(key);
          render(latest);
        }
      } else {
        setStatus("Refused by the run: " + body.reason + ". Audit event " + body.event_id + ".", "bad");
      }
    } catch (error) {
      setStatus("Not sent: " + error.message, "bad");
    } finally {
      busy.delete(key);
      if (rows.has(key)) fillCells(entry);
    }
  }

  poll();
})();
