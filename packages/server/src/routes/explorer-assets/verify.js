// In-browser verification for the explorer page. No imports, no build step: the page inlines this
// file. Everything a verdict rests on is computed here, in the reader's browser: Keccak-256 (written
// from FIPS 202 with Ethereum's original Keccak padding), the ABI encoding of leaf encodings v2 and v1, the
// sorted-pair Merkle fold, and the decoding of the relay's logs and calls answered by the chain.
"use strict";

const ExplorerVerify = (() => {
  const MASK = (1n << 64n) - 1n;

  // Round constants from the LFSR x^8 + x^6 + x^5 + x^4 + 1 (FIPS 202, algorithm 5).
  const ROUND_CONSTANTS = (() => {
    const out = [];
    let r = 1;
    for (let round = 0; round < 24; round++) {
      let rc = 0n;
      for (let j = 0; j < 7; j++) {
        if (r & 1) rc |= 1n << BigInt((1 << j) - 1);
        r = ((r << 1) ^ (r & 0x80 ? 0x71 : 0)) & 0xff;
      }
      out.push(rc);
    }
    return out;
  })();

  // Rotation offsets for lane x + 5y, walking (x, y) -> (y, 2x + 3y) from (1, 0) (FIPS 202, rho).
  const ROTATIONS = (() => {
    const rot = new Array(25).fill(0);
    let x = 1;
    let y = 0;
    for (let t = 0; t < 24; t++) {
      rot[x + 5 * y] = (((t + 1) * (t + 2)) / 2) % 64;
      [x, y] = [y, (2 * x + 3 * y) % 5];
    }
    return rot;
  })();

  const rotl = (v, n) => (n === 0 ? v : ((v << BigInt(n)) | (v >> BigInt(64 - n))) & MASK);

  function permute(a) {
    const c = new Array(5);
    const b = new Array(25);
    for (let round = 0; round < 24; round++) {
      for (let x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
      for (let x = 0; x < 5; x++) {
        const d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
        for (let y = 0; y < 25; y += 5) a[x + y] ^= d;
      }
      for (let x = 0; x < 5; x++) {
        for (let y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], ROTATIONS[x + 5 * y]);
      }
      for (let y = 0; y < 25; y += 5) {
        for (let x = 0; x < 5; x++) a[x + y] = b[x + y] ^ ((b[((x + 1) % 5) + y] ^ MASK) & b[((x + 2) % 5) + y]);
      }
      a[0] ^= ROUND_CONSTANTS[round];
    }
  }

  const RATE = 136; // bytes: 1600 - 2 * 256 bits of capacity

  /** Keccak-256 of bytes (Uint8Array) -> 32 bytes. */
  function keccak256(bytes) {
    const padded = new Uint8Array(Math.floor(bytes.length / RATE) * RATE + RATE);
    padded.set(bytes);
    padded[bytes.length] ^= 0x01;
    padded[padded.length - 1] ^= 0x80;
    const state = new Array(25).fill(0n);
    for (let off = 0; off < padded.length; off += RATE) {
      for (let i = 0; i < RATE / 8; i++) {
        let lane = 0n;
        for (let k = 7; k >= 0; k--) lane = (lane << 8n) | BigInt(padded[off + i * 8 + k]);
        state[i] ^= lane;
      }
      permute(state);
    }
    const out = new Uint8Array(32);
    for (let i = 0; i < 4; i++) {
      let lane = state[i];
      for (let k = 0; k < 8; k++) {
        out[i * 8 + k] = Number(lane & 0xffn);
        lane >>= 8n;
      }
    }
    return out;
  }

  function hexToBytes(hex) {
    if (typeof hex !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(hex)) throw new Error(`not hex bytes: ${String(hex).slice(0, 20)}`);
    const out = new Uint8Array((hex.length - 2) / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 + i * 2, 4 + i * 2), 16);
    return out;
  }

  function bytesToHex(bytes) {
    return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const keccakHex = (hex) => bytesToHex(keccak256(hexToBytes(hex)));
  const keccakText = (text) => bytesToHex(keccak256(new TextEncoder().encode(text)));

  function word(bigint) {
    return bigint.toString(16).padStart(64, "0");
  }

  function bytes32(hex, name) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${name} is not 32-byte hex`);
    return hex.slice(2).toLowerCase();
  }

  /** The tail of one dynamic ABI value (length word, then the bytes padded to whole words). */
  function dynamicTail(bytes) {
    const data = bytesToHex(bytes).slice(2);
    return word(BigInt(bytes.length)) + data + "0".repeat((64 - (data.length % 64)) % 64);
  }

  /**
   * The ABI encoding of a leaf. Leaf encoding v2 (dump format x402-inference-batch/2, leaves with
   * `version: 2`): abi.encode(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp,
   * string settlementType, bytes32 metadataHash, bytes teeSignature). v1 (older dumps): abi.encode(bytes32
   * teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp, bytes teeSignature). Gateway batches
   * (x402-inference-batch/gateway-1, `version: "gateway"`): the tee-gateway facilitator's
   * abi.encode(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, bytes teeSignature, uint256 timestamp).
   */
  function encodeLeaf(leaf) {
    const timestamp = BigInt(leaf.timestamp);
    if (timestamp < 0n || timestamp >= 1n << 256n) throw new Error("timestamp is out of uint256 range");
    const head = bytes32(leaf.teeId, "teeId") + bytes32(leaf.inputHash, "inputHash") + bytes32(leaf.outputHash, "outputHash") + word(timestamp);
    const signature = dynamicTail(hexToBytes(leaf.teeSignature));
    if (leaf.version === 1) return "0x" + head + word(160n) + signature; // the one dynamic value starts after five head words
    // The tee-gateway's layout (bytes32, bytes32, bytes32, bytes teeSignature, uint256 timestamp): the signature's offset, then the time.
    if (leaf.version === "gateway") return "0x" + head.slice(0, 192) + word(160n) + word(timestamp) + signature;
    if (leaf.version !== 2) throw new Error(`unknown leaf version ${String(leaf.version)}`);
    if (typeof leaf.settlementType !== "string") throw new Error("settlementType is not a string");
    const type = dynamicTail(new TextEncoder().encode(leaf.settlementType));
    // Seven head words; settlementType's tail comes first, teeSignature's after it.
    return "0x" + head + word(224n) + bytes32(leaf.metadataHash, "metadataHash") + word(BigInt(224 + type.length / 2)) + type + signature;
  }

  /** OpenZeppelin StandardMerkleTree leaf: keccak256(keccak256(abi.encode(...))). */
  const leafHash = (leaf) => keccakHex(keccakHex(encodeLeaf(leaf)));

  function hashPair(a, b) {
    const [x, y] = [a.toLowerCase(), b.toLowerCase()].sort();
    return keccakHex("0x" + x.slice(2) + y.slice(2));
  }

  const processProof = (leaf, proof) => proof.reduce((node, sibling) => hashPair(node, sibling), leaf.toLowerCase());

  const TOPICS = {
    batch: keccakText("BatchSettlement(bytes32,uint256,bytes)"),
    settlement: keccakText("Settlement(bytes32,bytes32)"),
    settlementWithMetadata: keccakText("SettlementWithMetadata(bytes32,bytes32,string,string,string)"),
  };
  const ANCHORED_AT = keccakText("anchoredAt(bytes32)").slice(0, 10);

  const sameAddress = (a, b) => typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();

  /**
   * Verifies a search result against the chain. `rpc(method, params)` reaches a JSON-RPC node (the
   * facilitator's proxy or the reader's own); `relay` is the contract the reader trusts. Returns
   * {verified, checks: [{name, ok, detail}], failed?, anchorBlock?}.
   */
  async function verifyResult(result, { rpc, relay }) {
    const checks = [];
    let anchorBlock; // the block the relay's anchoredAt(root) names: the TEE checks judge the registry there
    const done = () => {
      const failed = checks.find((c) => !c.ok);
      return { verified: !failed && checks.length > 0, checks, failed: failed && failed.name, anchorBlock };
    };
    const check = (name, ok, detail) => {
      checks.push({ name, ok, detail });
      return ok;
    };

    if (result.kind === "single") {
      // The event is looked for in the block of the transaction named, not across the whole chain:
      // RPC proxies (this server's included) read a bounded block range.
      const named = await rpc("eth_getTransactionReceipt", [result.transactionHash]);
      const at = named && named.blockNumber;
      const topics = [null, result.inputHash.toLowerCase(), result.outputHash.toLowerCase()];
      let logs = [];
      for (const topic of at ? [TOPICS.settlement, TOPICS.settlementWithMetadata] : []) {
        topics[0] = topic;
        logs = logs.concat(await rpc("eth_getLogs", [{ address: relay, topics: [...topics], fromBlock: at, toBlock: at }]));
      }
      const log = logs.find((l) => sameAddress(l.address, relay));
      if (!check("on-chain-event", !!log, log ? `Settlement event in tx ${log.transactionHash}` : `no Settlement event from relay ${relay} names these hashes`)) return done();
      await receiptCheck(log.transactionHash);
      return done();
    }

    let leaf;
    try {
      if (!result.leaf) throw new Error("the leaf's fields are unknown (its batch dump could not be read)");
      if (result.leaf.inputHash.toLowerCase() !== result.inputHash.toLowerCase()) throw new Error("the leaf records another input hash");
      leaf = leafHash(result.leaf);
    } catch (e) {
      check("leaf-hash", false, e.message);
      return done();
    }
    check("leaf-hash", true, `leaf ${leaf} computed in this browser`);

    let computed;
    try {
      computed = processProof(leaf, result.proof || []);
    } catch (e) {
      check("proof", false, `the proof is malformed: ${e.message}`);
      return done();
    }
    if (!check("proof", computed === String(result.root).toLowerCase(), computed === String(result.root).toLowerCase()
      ? `${(result.proof || []).length}-step proof reaches ${computed}`
      : `the proof leads to ${computed}, not to the batch root ${result.root}`)) return done();

    // The relay's anchoredAt(root) names the block: the event is looked for there, not across the
    // whole chain (RPC proxies, this server's included, read a bounded block range).
    const anchored = await rpc("eth_call", [{ to: relay, data: ANCHORED_AT + computed.slice(2) }, "latest"]);
    const block = BigInt(anchored === "0x" ? 0 : anchored);
    anchorBlock = block;
    const at = "0x" + block.toString(16);
    const logs = block === 0n ? [] : await rpc("eth_getLogs", [{ address: relay, topics: [TOPICS.batch, computed], fromBlock: at, toBlock: at }]);
    const log = logs.find((l) => sameAddress(l.address, relay) && l.topics && l.topics[1] && l.topics[1].toLowerCase() === computed);
    if (!check("on-chain-root", !!log, log ? `BatchSettlement of ${computed} by relay ${relay} in tx ${log.transactionHash}` : `no BatchSettlement event from relay ${relay} carries root ${computed}`)) return done();

    check("anchored-at", block !== 0n, block !== 0n ? `the relay's anchoredAt(root) is block ${block}` : "the relay's anchoredAt(root) is 0");
    await receiptCheck(log.transactionHash);
    return done();

    async function receiptCheck(hash) {
      const receipt = await rpc("eth_getTransactionReceipt", [hash]);
      const ok = !!receipt && receipt.status === "0x1";
      check("tx-success", ok, ok ? `transaction ${hash} succeeded` : `transaction ${hash} ${receipt ? "reverted" : "has no receipt"}`);
    }
  }

  return { keccak256, keccakHex, keccakText, hexToBytes, bytesToHex, encodeLeaf, leafHash, hashPair, processProof, verifyResult, TOPICS, ANCHORED_AT };
})();
