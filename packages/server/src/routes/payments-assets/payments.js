// The payments page. Everything shown comes from payers and resource servers: it only ever goes in
// through textContent, never as HTML. The operator key stays in this tab (sessionStorage).
"use strict";

(() => {
  const base = location.pathname.replace(/\/+$/, "") + "/api/";
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, children = []) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const child of children) node.append(child);
    return node;
  };
  const cell = (text, className = "") => el("td", { textContent: text == null ? "" : String(text), className, title: text == null ? "" : String(text) });
  const short = (s) => (s && s.length > 20 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s || "");
  const time = (ms) => (ms ? new Date(ms).toLocaleString() : "");

  async function getJson(path) {
    const key = sessionStorage.getItem("operatorKey") || "";
    const res = await fetch(base + path, { headers: { accept: "application/json", authorization: `Bearer ${key}` } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || `${path} answered ${res.status}`);
    return body;
  }

  function webhookText(w) {
    const status = w.lastStatus ? `, HTTP ${w.lastStatus}` : "";
    const attempts = `${w.attempts} attempt${w.attempts === 1 ? "" : "s"}`;
    if (w.state === "delivered") return `delivered (${attempts}${status}) to ${w.receiver}`;
    const error = w.lastError ? `, last: ${w.lastError}` : "";
    if (w.state === "failed") return `failed after ${attempts}${error} (${w.receiver})`;
    return `pending (${attempts}${error}${w.nextAt ? `, next ${time(w.nextAt)}` : ""}) to ${w.receiver}`;
  }

  function usageText(u) {
    if (!u) return "";
    const parts = [];
    if (u.model) parts.push(u.model);
    if (u.inputTokens != null || u.outputTokens != null) parts.push(`${u.inputTokens ?? 0} in / ${u.outputTokens ?? 0} out`);
    if (u.cost) parts.push(`cost ${u.cost}`);
    if (u.sessionId) parts.push(`session ${u.sessionId}`);
    if (u.streaming) parts.push("streaming");
    return parts.join(", ");
  }

  function paymentRow(p) {
    return el("tr", { className: "payment" }, [
      cell(time(p.time)),
      cell(p.network, "mono"),
      el("td", { className: "mono", textContent: short(p.payer), title: p.payer || "" }),
      el("td", { className: "mono payee", textContent: short(p.payTo), title: p.payTo }),
      cell(p.amount, "mono"),
      el("td", { className: "mono", textContent: short(p.asset), title: p.asset }),
      el("td", { className: "mono transaction", textContent: short(p.transaction), title: p.transaction || "" }),
      cell(p.collected ? `${p.outcome} (collected)` : p.outcome, `outcome ${p.outcome}`),
      cell(p.reason, "reason"),
      cell(`${p.latencyMs} ms`),
      cell(usageText(p.usage), "usage"),
      el("td", { className: "webhooks" }, p.webhooks.map((w) => el("div", { className: `webhook ${w.state}`, textContent: webhookText(w) }))),
    ]);
  }

  async function loadPayments() {
    const q = new URLSearchParams({ limit: "100" });
    if ($("network").value.trim()) q.set("network", $("network").value.trim());
    if ($("outcome").value) q.set("outcome", $("outcome").value);
    const { payments } = await getJson(`payments?${q}`);
    $("payments").querySelector("tbody").replaceChildren(...payments.map(paymentRow));
    const pending = await getJson("payments?outcome=pending&limit=100");
    $("pending").querySelector("tbody").replaceChildren(
      ...pending.payments.map((p) => el("tr", { className: "pending-payment" }, [cell(time(p.time)), cell(p.network, "mono"), cell(p.payer, "mono"), cell(p.payTo, "mono"), cell(p.amount, "mono"), cell(p.transaction, "mono"), cell(p.reason)])),
    );
  }

  async function loadTotals() {
    const q = new URLSearchParams({ days: $("days").value || "7" });
    if ($("payee").value.trim()) q.set("payTo", $("payee").value.trim());
    const report = await getJson(`usage?${q}`);
    const rows = report.payees.flatMap((payee) =>
      payee.days.map((d) =>
        el("tr", { className: "total" }, [
          cell(payee.payTo, "mono payee"),
          cell(d.day),
          cell(d.payments),
          cell(d.success),
          cell(d.failed),
          cell(d.pending),
          cell(d.amounts.map((a) => `${a.amount} of ${short(a.asset)} on ${a.network}`).join("; "), "mono amounts"),
          cell(d.inferenceRecords),
          cell(`${d.usage.inputTokens} / ${d.usage.outputTokens}`),
          cell(d.usage.cost),
        ]),
      ),
    );
    $("totals").querySelector("tbody").replaceChildren(...rows);
  }

  async function loadAll() {
    $("status").textContent = "Loading…";
    try {
      await Promise.all([loadPayments(), loadTotals()]);
      $("status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      $("status").textContent = `Could not load: ${e.message}`;
    }
  }

  const on = (id, f) =>
    $(id).addEventListener("submit", (event) => {
      event.preventDefault();
      f();
    });
  on("key-form", () => {
    sessionStorage.setItem("operatorKey", $("key").value);
    $("key").value = "";
    loadAll();
  });
  on("usage-form", () => loadAll());
  on("recent-form", () => loadAll());
  if (sessionStorage.getItem("operatorKey")) loadAll();
})();
