// The explorer page's TEE checks. No imports, no build step: the page inlines this file after
// verify.js, whose Keccak and hex helpers it uses. Decided here, in the reader's browser: the registry's
// entry and measurement status (read through the RPC the reader chose and judged at the block the
// record was anchored, as the auditor judges them), the attestation document's hash against the
// registry's, and an RSA-PSS record signature (WebCrypto). Not decided here: the document's COSE
// signature, certificate chain and PCRs (X.509 and COSE are not rewritten for the page: this server
// verifies them with the auditor's code, and `pnpm auditor verify` does on the reader's machine), nor a
// secp256k1 signature (WebCrypto has none).
"use strict";

const ExplorerTees = (() => {
  const V = ExplorerVerify;
  const GET_TEE = V.keccakText("getTee(bytes32)").slice(0, 10);
  const MEASUREMENT_STATUS = V.keccakText("measurementStatus(uint8,bytes32)").slice(0, 10);
  const SCHEMES = ["rsa-pss-sha256", "secp256k1-eip712"];
  const ZERO_ID = "0x" + "0".repeat(64);

  function wordsOf(hex, what) {
    if (typeof hex !== "string" || !/^0x([0-9a-fA-F]{64})+$/.test(hex)) throw new Error(`the registry's answer to ${what} is not ABI words`);
    return hex.slice(2).toLowerCase();
  }
  const uintAt = (body, byte) => {
    if (byte + 32 > body.length / 2) throw new Error("the registry's answer is shorter than its encoding says");
    return BigInt("0x" + body.slice(byte * 2, byte * 2 + 64));
  };
  const bytes32At = (body, byte) => "0x" + body.slice(byte * 2, byte * 2 + 64);
  function bytesAt(body, byte) {
    const length = Number(uintAt(body, byte));
    if (byte + 32 + length > body.length / 2) throw new Error("the registry's answer is shorter than its encoding says");
    return "0x" + body.slice((byte + 32) * 2, (byte + 32 + length) * 2);
  }

  /** getTee(bytes32)'s answer: the Tee struct (dynamic, so behind one offset word). */
  function decodeTee(hex) {
    const body = wordsOf(hex, "getTee");
    const at = Number(uintAt(body, 0));
    const field = (i) => uintAt(body, at + 32 * i);
    return {
      signingKey: bytesAt(body, at + Number(field(0))),
      scheme: Number(field(1)),
      teeType: Number(field(2)),
      registeredBlock: field(3),
      registeredAt: field(4),
      lastHeartbeat: field(5),
      revokedBlock: field(6),
      measurement: bytes32At(body, at + 32 * 7),
      attestationHash: bytes32At(body, at + 32 * 8),
    };
  }

  /** measurementStatus(uint8,bytes32)'s answer: {status, approvedBlock, revokedBlock}. */
  function decodeMeasurement(hex) {
    const body = wordsOf(hex, "measurementStatus");
    return { status: Number(uintAt(body, 0)), approvedBlock: uintAt(body, 32), revokedBlock: uintAt(body, 64) };
  }

  const pass = (name, detail) => ({ name, ok: true, detail });
  const fail = (name, detail) => ({ name, ok: false, detail });

  /** Registered, and before the record was anchored. */
  function judgeRegistered(tee, teeId, anchorBlock) {
    if (tee.registeredBlock === 0n) return fail("tee-registered", `TEE ${teeId} is not in the TEE registry`);
    if (tee.registeredBlock > anchorBlock) return fail("tee-registered", `TEE ${teeId} was registered at block ${tee.registeredBlock}, after the record was anchored (block ${anchorBlock})`);
    return pass("tee-registered", `TEE ${teeId} registered at block ${tee.registeredBlock}, before the anchor (block ${anchorBlock})`);
  }

  /** The TEE not revoked, its measurement approved and not revoked, at the anchoring block. */
  function judgeMeasurement(tee, m, anchorBlock) {
    if (tee.revokedBlock !== 0n && tee.revokedBlock <= anchorBlock) return fail("tee-measurement", `the TEE was revoked at block ${tee.revokedBlock}, before the anchor (block ${anchorBlock})`);
    if (m.status === 0 || m.approvedBlock === 0n || m.approvedBlock > anchorBlock) return fail("tee-measurement", `measurement ${tee.measurement} was not approved at the anchoring block ${anchorBlock}`);
    if (m.status === 2 && m.revokedBlock <= anchorBlock) return fail("tee-measurement", `measurement ${tee.measurement} was revoked at block ${m.revokedBlock}, before the anchor (block ${anchorBlock})`);
    const later = m.status === 2 ? `; revoked later, at block ${m.revokedBlock}` : "";
    return pass("tee-measurement", `measurement ${tee.measurement} approved at block ${m.approvedBlock}${later}`);
  }

  /** The document this server verified is the one the registry recorded (hashed here), and it verified there. */
  function judgeAttestation(tee, view, documentHash) {
    if (!view || !view.registered) return fail("tee-attestation", "this explorer's server has no record of the TEE's attestation");
    if (!documentHash) return fail("tee-attestation", view.attestation && !view.attestation.verified ? view.attestation.detail : "the attestation document could not be fetched");
    if (documentHash !== tee.attestationHash.toLowerCase()) return fail("tee-attestation", `the document hashes to ${documentHash}, not to the registry's attestation hash ${tee.attestationHash}`);
    if (!view.attestation.verified) return fail("tee-attestation", `the document does not verify: ${view.attestation.detail}`);
    return pass(
      "tee-attestation",
      `document ${view.attestationBlobId} hashes (in this browser) to the registry's hash; its signature, chain to the root ${view.attestation.rootSha256.slice(0, 16)}… and PCRs were verified by this explorer's server`,
    );
  }

  function base64ToBytes(b64) {
    const raw = atob(b64);
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  /** The record's signature under the registered key: RSA-PSS with WebCrypto; a secp256k1 one is left to the auditor. */
  async function checkSignature(leaf, tee, subtle) {
    const scheme = SCHEMES[tee.scheme];
    if (leaf.version !== "gateway") {
      if (scheme !== "secp256k1-eip712") return fail("tee-signature", `the record is signed with secp256k1 EIP-712, but the registry holds a ${scheme || "unknown"} key`);
      return { name: "tee-signature", ok: true, skipped: true, detail: "a secp256k1 EIP-712 signature is not checked in this browser (WebCrypto has no secp256k1): pnpm auditor verify checks it" };
    }
    if (scheme !== "rsa-pss-sha256") return fail("tee-signature", `the record carries the tee-gateway's RSA-PSS signature, but the registry holds a ${scheme || "unknown"} key`);
    if (!subtle) return { name: "tee-signature", ok: true, skipped: true, detail: "this page is not in a secure context, so WebCrypto is unavailable: pnpm auditor verify checks the signature" };
    // The gateway's message: keccak256(inputHash ‖ outputHash ‖ uint256 timestamp), signed with RSA-PSS-SHA256, 32-byte salt.
    const message = V.keccakHex("0x" + leaf.inputHash.slice(2) + leaf.outputHash.slice(2) + BigInt(leaf.timestamp).toString(16).padStart(64, "0"));
    let good = false;
    try {
      const key = await subtle.importKey("spki", V.hexToBytes(tee.signingKey), { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"]);
      good = await subtle.verify({ name: "RSA-PSS", saltLength: 32 }, key, V.hexToBytes(leaf.teeSignature), V.hexToBytes(message));
    } catch (e) {
      return fail("tee-signature", `the registered key or the signature cannot be used: ${e.message}`);
    }
    return good ? pass("tee-signature", "RSA-PSS signature of the record verified under the registered key, in this browser") : fail("tee-signature", "the record's RSA-PSS signature is not the registered key's");
  }

  /**
   * The TEE checks of a record anchored at `anchorBlock`. `view` is this server's answer for the TEE
   * (api/tees/:teeId); `rpc` and `registry` are the reader's choices. Returns {attested, checks, failed?}.
   */
  async function verifyTee({ rpc, registry, leaf, anchorBlock, view, subtle }) {
    const checks = [];
    const done = () => {
      const failed = checks.find((c) => !c.ok);
      return { attested: !failed, partly: !failed && checks.some((c) => c.skipped), checks, failed: failed && failed.name };
    };
    const teeId = leaf.teeId.toLowerCase();
    const tee = decodeTee(await rpc("eth_call", [{ to: registry, data: GET_TEE + teeId.slice(2) }, "latest"]));
    checks.push(judgeRegistered(tee, teeId, anchorBlock));
    if (tee.registeredBlock === 0n) return done();
    const typeWord = BigInt(tee.teeType).toString(16).padStart(64, "0");
    const m = decodeMeasurement(await rpc("eth_call", [{ to: registry, data: MEASUREMENT_STATUS + typeWord + tee.measurement.slice(2) }, "latest"]));
    checks.push(judgeMeasurement(tee, m, anchorBlock));
    const documentHash = view && view.document ? V.bytesToHex(V.keccak256(base64ToBytes(view.document))) : undefined;
    checks.push(judgeAttestation(tee, view, documentHash));
    checks.push(await checkSignature(leaf, tee, subtle));
    return done();
  }

  /** The TEE's facts for people, as [label, value] rows (this server's view, before the browser's checks). */
  function describe(view) {
    if (!view.registered) return [["TEE", `${view.teeId}: not in the TEE registry ${view.registry}`]];
    const rows = [
      ["TEE", view.teeId],
      ["type", view.measurementRule ? `${view.teeTypeName} (measurement = ${view.measurementRule})` : view.teeTypeName],
      ["key scheme", view.scheme === "rsa-pss-sha256" ? "RSA-PSS-SHA256 (the tee-gateway's)" : view.scheme === "secp256k1-eip712" ? "secp256k1, EIP-712 TEE attestation v2" : view.scheme],
      ["measurement", `${view.measurement}: ${view.measurementStatus}${view.measurementApprovedBlock !== "0" ? ` (approved at block ${view.measurementApprovedBlock}${view.measurementRevokedBlock !== "0" ? `, revoked at block ${view.measurementRevokedBlock}` : ""})` : ""}`],
    ];
    if (view.attestation.verified) for (const [name, value] of Object.entries(view.attestation.registers)) rows.push([name, value]);
    rows.push(["registered", `block ${view.registeredBlock}, ${new Date(Number(view.registeredAt) * 1000).toISOString()}${view.revokedBlock !== "0" ? `; TEE revoked at block ${view.revokedBlock}` : ""}`]);
    rows.push(["attestation document", `Walrus blob ${view.attestationBlobId}, keccak256 ${view.attestationHash}`]);
    rows.push([
      "attestation",
      view.attestation.verified
        ? `verified by this explorer's server: chains to the root with SHA-256 ${view.attestation.rootSha256}`
        : `DOES NOT VERIFY (this explorer's server): ${view.attestation.detail}`,
    ]);
    return rows;
  }

  /** Whether a leaf names a TEE at all (a zero teeId is an unsigned record). */
  const namesTee = (leaf) => !!leaf && typeof leaf.teeId === "string" && /^0x[0-9a-fA-F]{64}$/.test(leaf.teeId) && leaf.teeId.toLowerCase() !== ZERO_ID;

  return { decodeTee, decodeMeasurement, judgeRegistered, judgeMeasurement, judgeAttestation, checkSignature, verifyTee, describe, namesTee, GET_TEE, MEASUREMENT_STATUS };
})();
