// The explorer page's interface. Text from the server or the chain only ever goes in through
// textContent, never as HTML.
"use strict";

(() => {
  const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, children = []) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const child of children) node.append(child);
    return node;
  };
  const short = (hex) => (hex && hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-8)}` : hex || "");

  async function getJson(path) {
    const res = await fetch(base + path, { headers: { accept: "application/json" } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(body.message || `${path} answered ${res.status}`), { status: res.status });
    return body;
  }

  let rpcId = 0;
  async function rpc(method, params) {
    const custom = $("rpc").value.trim();
    const url = custom && custom !== "(this server's proxy)" ? custom : base + "api/rpc";
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
    });
    const body = await res.json();
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result;
  }

  let teeRoots; // SHA-256 of the attestation roots this server verifies documents against, when it shows TEEs

  async function loadConfig() {
    const config = await getJson("api/config");
    $("relay").value = config.relayAddress;
    $("rpc").value = "(this server's proxy)";
    let text = `Chain id ${config.chainId}. The relay address above is what every check trusts: compare it with the one you know.`;
    if (config.teeRegistry) {
      $("registry").value = config.teeRegistry.address;
      $("registry-label").hidden = false;
      teeRoots = config.teeRegistry.rootsSha256;
      text += ` This server verifies attestation documents against the root(s) with SHA-256 ${teeRoots.join(", ")} (AWS publishes its Nitro root's).`;
    }
    $("chain").textContent = text;
  }

  async function loadBatches() {
    try {
      const { batches } = await getJson("api/batches?limit=25");
      const body = $("batches").querySelector("tbody");
      body.replaceChildren(
        ...batches.map((b) =>
          el("tr", {}, [
            el("td", { className: "mono", title: b.root, textContent: short(b.root) }),
            el("td", { textContent: b.batchSize }),
            el("td", { textContent: new Date(b.timestamp * 1000).toLocaleString() }),
            el("td", { className: "mono", title: b.transactionHash, textContent: short(b.transactionHash) }),
            el("td", { className: "mono", textContent: b.blobId }),
          ]),
        ),
      );
      $("batches-status").textContent = batches.length ? `${batches.length} most recent` : "No batch anchored yet.";
    } catch (e) {
      $("batches-status").textContent = `Could not list batches: ${e.message}`;
      // 503: the server is still reading the list from the chain.
      if (e.status === 503) setTimeout(loadBatches, 5000);
    }
  }

  async function search(event) {
    event.preventDefault();
    const q = $("query").value.trim();
    $("results").replaceChildren();
    if (!/^0x[0-9a-fA-F]{64}$/.test(q)) {
      $("search-status").textContent = "Enter a 32-byte hex input hash or record id (0x + 64 hex digits).";
      return;
    }
    $("search-status").textContent = "Searching…";
    try {
      const { results } = await getJson(`api/search?q=${encodeURIComponent(q)}`);
      $("search-status").textContent = results.length ? `${results.length} result(s)` : "Nothing found for this hash.";
      $("results").replaceChildren(...results.map(renderResult));
    } catch (e) {
      $("search-status").textContent = `Search failed: ${e.message}`;
    }
  }

  function renderResult(result) {
    const lines = [];
    const line = (label, value) => lines.push(el("div", {}, [el("span", { className: "muted", textContent: `${label}: ` }), el("span", { className: "mono", textContent: value })]));
    line("source", result.source === "facilitator" ? "the facilitator's records (a claim to check)" : "the chain and the batch dumps");
    if (result.recordId) line("record", result.recordId);
    if (result.status) line("status", result.status);
    line("input", result.inputHash || "");
    line("output", result.outputHash || "");
    if (result.kind === "batch") {
      line("batch root", result.root);
      line("transaction", result.transactionHash || "");
      line("blob id", result.blobId || "");
    } else if (result.kind === "single") {
      line("anchored individually in", result.transactionHash || "");
    }
    const box = el("div", { className: "result" }, lines);
    const tee = teeRoots && result.kind === "batch" && ExplorerTees.namesTee(result.leaf) ? teePanel(result) : undefined;
    if (result.kind === "batch" || result.kind === "single") {
      const output = el("div", { className: "verification" });
      const button = el("button", { className: "verify", textContent: "Verify" });
      button.addEventListener("click", async () => {
        button.disabled = true;
        output.replaceChildren(el("div", { className: "muted", textContent: "Verifying in this browser…" }));
        let outcome;
        try {
          outcome = await ExplorerVerify.verifyResult(result, { rpc, relay: $("relay").value.trim() });
        } catch (e) {
          outcome = { verified: false, checks: [{ name: "chain", ok: false, detail: `the chain could not be read: ${e.message}` }], failed: "chain" };
        }
        const failed = outcome.checks.find((c) => !c.ok);
        output.replaceChildren(
          el("div", {
            className: `verdict ${outcome.verified ? "ok" : "bad"}`,
            textContent: outcome.verified ? "VERIFIED" : `NOT VERIFIED — failing check: ${failed ? `${failed.name}: ${failed.detail}` : "none ran"}`,
          }),
          ...outcome.checks.map(checkLine),
        );
        if (tee && outcome.verified) await tee.verify(outcome.anchorBlock);
        button.disabled = false;
      });
      box.append(button, output);
    }
    if (tee) box.append(tee.panel);
    return box;
  }

  const checkLine = (c) => el("div", { className: `check ${c.skipped ? "skipped" : c.ok ? "ok" : "bad"}`, textContent: `${c.name} — ${c.detail}` });

  /** The TEE a batch leaf names: this server's view at once, the browser's checks once the proof verified. */
  function teePanel(result) {
    const facts = el("div", {}, [el("div", { className: "muted", textContent: "Reading the TEE registry…" })]);
    const output = el("div", { className: "tee-verification" });
    const panel = el("div", { className: "tee" }, [el("strong", { textContent: "TEE" }), facts, output]);
    const view = getJson(`api/tees/${result.leaf.teeId}`);
    view.then(
      (v) => facts.replaceChildren(...ExplorerTees.describe(v).map(([label, value]) => el("div", { className: "tee-fact" }, [el("span", { className: "muted", textContent: `${label}: ` }), el("span", { className: "mono", textContent: value })]))),
      (e) => facts.replaceChildren(el("div", { className: "muted", textContent: `The TEE could not be read: ${e.message}` })),
    );
    const auditor = `pnpm auditor verify --input-hash ${result.leaf.inputHash} --output-hash ${result.leaf.outputHash} --tee-registry ${$("registry").value.trim()}`;
    async function verify(anchorBlock) {
      output.replaceChildren(el("div", { className: "muted", textContent: "Checking the TEE in this browser…" }));
      let outcome;
      try {
        outcome = await ExplorerTees.verifyTee({ rpc, registry: $("registry").value.trim(), leaf: result.leaf, anchorBlock, view: await view.catch(() => undefined), subtle: globalThis.crypto && crypto.subtle });
      } catch (e) {
        outcome = { attested: false, checks: [{ name: "tee-registered", ok: false, detail: `the TEE registry could not be read: ${e.message}` }] };
      }
      const failed = outcome.checks.find((c) => !c.ok);
      const verdict = failed ? `NOT ATTESTED — failing check: ${failed.name}: ${failed.detail}` : outcome.partly ? "ATTESTED ENCLAVE, signature left to the auditor" : "ATTESTED BY AN APPROVED ENCLAVE";
      output.replaceChildren(
        el("div", { className: `verdict tee-verdict ${failed ? "bad" : "ok"}`, textContent: verdict }),
        ...outcome.checks.map(checkLine),
        el("div", { className: "muted", textContent: `Checked in this browser: the registry at the anchoring block, the document's hash${outcome.checks.some((c) => c.name === "tee-signature" && !c.skipped) ? ", the record's signature" : ""}. By this server: the document's signature, certificate chain and PCRs. All of it on your machine (the auditor trusts the AWS Nitro root unless given --attestation-root FILE):` }),
        el("div", { className: "mono", textContent: auditor }),
      );
    }
    return { panel, verify };
  }

  $("search-form").addEventListener("submit", search);
  loadConfig().catch((e) => ($("chain").textContent = `Could not load the configuration: ${e.message}`));
  loadBatches();
})();
