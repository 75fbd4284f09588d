/**
 * CPU cost of each pure step a facilitator request goes through, measured in-process (no HTTP, no
 * chain), so "where the time goes" can be read without the noise of a shared machine:
 *
 *   pnpm exec tsx bench/tools/cpu-costs.ts [iterations=500]
 *
 * Each step runs `iterations` times after a warm-up; reported as CPU microseconds (user + system) per call.
 * Steps marked "alternative" are not what the facilitator does today: they show what a change would save.
 */
import { createPublicKey, verify as verifySync, type KeyObject } from "node:crypto";
import { createRequire } from "node:module";
import { findAssociatedTokenPda, TOKEN_PROGRAM_ADDRESS } from "@solana-program/token";
import { generateKeyPairSigner, getAddressDecoder, getAddressEncoder, type Address } from "@solana/kit";
import { getAddress, hashTypedData, keccak256, serializeTransaction, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { NetworkRegistry, parsePaymentBody } from "@facilitator/core";
import { checkEip3009Payment, eip3009TypedData, signEip3009Payload } from "@facilitator/evm";
import { decodePaymentTransaction } from "@facilitator/svm";
import { checkPayerSignature } from "../../packages/svm/src/signing.ts";

const iterations = Number(process.argv[2] ?? 500);
// The native binding @facilitator/evm uses, resolved from that package (it is not a root dependency).
const secp256k1 = createRequire(new URL("../../packages/evm/package.json", import.meta.url))("secp256k1") as {
  ecdsaRecover(sig: Uint8Array, recid: number, msg: Uint8Array, compressed: boolean): Uint8Array;
  ecdsaSign(msg: Uint8Array, key: Uint8Array): { signature: Uint8Array; recid: number };
};

async function cost(name: string, work: () => unknown | Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(50, iterations); i++) await work();
  const before = process.cpuUsage();
  for (let i = 0; i < iterations; i++) await work();
  const used = process.cpuUsage(before);
  const us = (used.user + used.system) / iterations;
  console.log(`${us.toFixed(0).padStart(7)} µs  ${name}`);
  return us;
}

async function evm(): Promise<void> {
  console.log("\nEVM (EIP-3009 on base-sepolia)");
  const asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e" as const;
  const registry = new NetworkRegistry([{ name: "base-sepolia", asset: { address: asset, name: "USDC", version: "2" } }]);
  const payer = privateKeyToAccount(generatePrivateKey());
  const payTo = privateKeyToAccount(generatePrivateKey()).address;
  const domain = { name: "USDC", version: "2", chainId: 84532, verifyingContract: asset };
  const requirements = { scheme: "exact", network: "eip155:84532", amount: "1000", asset, payTo, maxTimeoutSeconds: 60, extra: { name: "USDC", version: "2" } };
  const payload = await signEip3009Payload(payer, { domain, to: payTo, value: 1000n });
  const text = JSON.stringify({ x402Version: 2, paymentPayload: { x402Version: 2, accepted: requirements, payload, resource: { url: "http://x/" } }, paymentRequirements: requirements });
  const parsed = parsePaymentBody(JSON.parse(text), registry);
  if (!parsed.ok) throw new Error(parsed.message);
  const request = parsed.request;
  const a = payload.authorization;
  const authorization = { from: getAddress(a.from), to: getAddress(a.to), value: BigInt(a.value), validAfter: BigInt(a.validAfter), validBefore: BigInt(a.validBefore), nonce: a.nonce as Hex };
  const typed = eip3009TypedData(domain, authorization);
  const digest = hashTypedData(typed);

  await cost("JSON.parse of the request body", () => JSON.parse(text));
  await cost("core parsePaymentBody (zod v2 schema, normalisation)", () => parsePaymentBody(JSON.parse(text), registry));
  await cost("evm checkEip3009Payment (shape, domain, binding, EIP-712 digest, ECDSA recovery)", () => checkEip3009Payment(request.payload, request.requirements, request.network));
  await cost("  of which viem hashTypedData (EIP-712 digest, JS keccak)", () => hashTypedData(typed));
  await cost("  of which native secp256k1 ecdsaRecover + keccak of the public key", () => {
    const sig = Buffer.from(payload.signature.slice(2, 130), "hex");
    const pub = secp256k1.ecdsaRecover(sig, parseInt(payload.signature.slice(130), 16) - 27, Buffer.from(digest.slice(2), "hex"), false);
    return keccak256(pub.subarray(1));
  });
  await cost("  of which viem getAddress x4 (checksums; viem caches them)", () => [a.from, a.to, payTo, asset].map((x) => getAddress(x)));
  const domainSeparator = hashTypedDataDomainOnly(domain);
  await cost("alternative: EIP-712 digest with cached type hash and domain separator (2 keccaks)", () => eip3009Digest(domainSeparator, authorization));

  const facilitator = privateKeyToAccount(generatePrivateKey());
  const tx = { chainId: 84532, nonce: 7, to: asset, data: ("0x" + "ab".repeat(260)) as Hex, gas: 100_000n, type: "eip1559" as const, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, value: 0n };
  await cost("settle: viem account.signTransaction (pure-JS secp256k1 sign, as EvmSigner.sign does)", () => facilitator.signTransaction(tx));
  const key = Buffer.from(generatePrivateKey().slice(2), "hex");
  await cost("alternative: serializeTransaction + keccak + native secp256k1 ecdsaSign", () => {
    const unsigned = serializeTransaction(tx);
    const h = Buffer.from(keccak256(unsigned).slice(2), "hex");
    const { signature, recid } = secp256k1.ecdsaSign(h, key);
    return serializeTransaction(tx, { r: `0x${Buffer.from(signature.subarray(0, 32)).toString("hex")}`, s: `0x${Buffer.from(signature.subarray(32)).toString("hex")}`, yParity: recid });
  });
}

/** keccak(0x1901 || domainSeparator || structHash) with the struct hashed by hand: what caching would leave. */
const TYPE_HASH = keccak256(Buffer.from("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"));
function eip3009Digest(domainSeparator: Hex, a: { from: string; to: string; value: bigint; validAfter: bigint; validBefore: bigint; nonce: Hex }): Hex {
  const word = (hex: string) => hex.replace(/^0x/, "").padStart(64, "0");
  const struct = keccak256(`0x${word(TYPE_HASH)}${word(a.from)}${word(a.to)}${word(a.value.toString(16))}${word(a.validAfter.toString(16))}${word(a.validBefore.toString(16))}${word(a.nonce)}` as Hex);
  return keccak256(`0x1901${word(domainSeparator)}${word(struct)}` as Hex);
}
function hashTypedDataDomainOnly(domain: { name: string; version: string; chainId: number; verifyingContract: string }): Hex {
  const t = keccak256(Buffer.from("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"));
  const word = (hex: string) => hex.replace(/^0x/, "").padStart(64, "0");
  return keccak256(`0x${word(t)}${word(keccak256(Buffer.from(domain.name)))}${word(keccak256(Buffer.from(domain.version)))}${word(domain.chainId.toString(16))}${word(domain.verifyingContract)}` as Hex);
}

async function svm(): Promise<void> {
  console.log("\nSolana (SPL TransferChecked)");
  const [payer, feePayer, payTo] = await Promise.all([generateKeyPairSigner(), generateKeyPairSigner(), generateKeyPairSigner()]);
  const mint = getAddressDecoder().decode(crypto.getRandomValues(new Uint8Array(32))) as Address;
  const { buildTransferTransaction } = await import("./svm-tx.ts");
  const wire = await buildTransferTransaction({ payer, feePayer: feePayer.address, payTo: payTo.address, mint });
  const tx = decodePaymentTransaction(wire);
  if ("reason" in tx) throw new Error(tx.message);
  await cost("svm decodePaymentTransaction (base64, kit decoders, base58 addresses)", () => decodePaymentTransaction(wire));
  await cost("svm associatedTokenAccounts: 2 owners x 2 token programs (4 PDA derivations, as prepare() does per request)", () =>
    Promise.all(
      [payTo.address, feePayer.address].flatMap((owner) =>
        [TOKEN_PROGRAM_ADDRESS, "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb" as Address].map((tokenProgram) => findAssociatedTokenPda({ owner, mint, tokenProgram })),
      ),
    ),
  );
  const cache = new Map<string, unknown>();
  await cost("alternative: the same 4 derivations from a Map cache (the payee, fee payer and mint recur)", () => {
    const k = `${payTo.address}:${feePayer.address}:${mint}`;
    return cache.get(k) ?? cache.set(k, {}).get(k);
  });
  const transfer = { authority: payer.address } as never;
  await cost("svm checkPayerSignature (WebCrypto: import the key, then an async ed25519 verify job)", () => checkPayerSignature(tx, transfer));
  const keys = new Map<string, KeyObject>();
  const signature = tx.signatures[payer.address]!;
  await cost("alternative: node:crypto ed25519 verify, synchronous, public KeyObject cached per payer", () => {
    let key = keys.get(payer.address);
    if (!key) {
      const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(getAddressEncoder().encode(payer.address))]);
      key = createPublicKey({ key: spki, format: "der", type: "spki" });
      keys.set(payer.address, key);
    }
    if (!verifySync(null, tx.messageBytes, key, signature)) throw new Error("signature did not verify");
  });
}

await evm();
await svm();
