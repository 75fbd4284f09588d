/**
 * The local world's Permit2 and x402 Permit2 proxies (issue 13, first piece): at their canonical
 * addresses on every local EVM chain, Permit2 with the domain separator of its canonical address, and
 * the proxies settling what the official @x402/evm 2.27 client signs (exact with Permit2, and upto),
 * called directly from a facilitator account.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPublicClient,
  createWalletClient,
  erc20Abi,
  getContractAddress,
  hashDomain,
  http,
  maxUint256,
  parseAbi,
  type Abi,
  type Address,
  type Hex,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import type { PaymentRequirements } from "@x402/core/types";
import { PERMIT2_ADDRESS as X402_PERMIT2_ADDRESS, x402ExactPermit2ProxyABI, x402UptoPermit2ProxyABI } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import {
  EVM_WORLD_CHAINS,
  loadArtifact,
  loadPermit2Artifact,
  localChain,
  PERMIT2_ADDRESS,
  permit2RuntimeCode,
  startEvmWorld,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
  type EvmWorld,
  type EvmWorldNetwork,
  type Permit2Artifact,
} from "@facilitator/devnet";
import { nodeRpc } from "./helpers/chain.ts";

let world: EvmWorld;
let permit2: Permit2Artifact;

beforeAll(async () => {
  world = await startEvmWorld();
  permit2 = await loadPermit2Artifact();
});
afterAll(async () => {
  await world?.stop();
});

interface Permit2Payload {
  signature: Hex;
  permit2Authorization: {
    from: Address;
    permitted: { token: Address; amount: string };
    spender: Address;
    nonce: string;
    deadline: string;
    witness: { to: Address; validAfter: string; facilitator?: Address };
  };
}

function clients(n: EvmWorldNetwork, key: Hex) {
  const chain = localChain(n.chainId, n.rpcUrl);
  const transport = http(n.rpcUrl);
  return {
    pub: createPublicClient({ chain, transport, pollingInterval: 50, cacheTime: 0 }),
    wallet: createWalletClient({ account: privateKeyToAccount(key), chain, transport, pollingInterval: 50 }),
  };
}

/** The official 2.27 client's payload for one requirement, as `@x402/fetch` would send it. */
async function officialPayload(n: EvmWorldNetwork, requirements: PaymentRequirements): Promise<Permit2Payload> {
  const signer = privateKeyToAccount(n.payer.privateKey);
  const client = new x402Client();
  client.register(n.caip2 as `${string}:${string}`, requirements.scheme === "upto" ? new UptoEvmScheme(signer) : new ExactEvmScheme(signer));
  client.setSpendControls(false); // the local tokens are not the client's default assets
  const payment = await client.createPaymentPayload({ x402Version: 2, resource: { url: "http://local.test/paid" }, accepts: [requirements] });
  expect(payment.accepted).toMatchObject({ scheme: requirements.scheme, network: n.caip2 });
  return payment.payload as unknown as Permit2Payload;
}

function requirementsFor(n: EvmWorldNetwork, scheme: "exact" | "upto", amount: bigint, extra: Record<string, unknown>): PaymentRequirements {
  return {
    scheme,
    network: n.caip2 as `${string}:${string}`,
    amount: amount.toString(),
    asset: n.asset.address,
    payTo: n.payTo,
    maxTimeoutSeconds: 120,
    extra: { name: n.asset.name, version: n.asset.version, ...extra },
  };
}

const permitArg = (p: Permit2Payload) => ({
  permitted: { token: p.permit2Authorization.permitted.token, amount: BigInt(p.permit2Authorization.permitted.amount) },
  nonce: BigInt(p.permit2Authorization.nonce),
  deadline: BigInt(p.permit2Authorization.deadline),
});

/** The proxy ABI with Permit2's errors, so reverts from inside Permit2 decode by name. */
const withPermit2Errors = (abi: Abi): Abi => [...abi, ...permit2.abi.filter((i) => i.type === "error")];

/** The payer approves Permit2 once (gas money given for that approval and taken back after). */
async function approvePermit2(n: EvmWorldNetwork) {
  const { pub, wallet } = clients(n, n.payer.privateKey);
  await nodeRpc(n.rpcUrl, "anvil_setBalance", [n.payer.address, "0xde0b6b3a7640000"]);
  const hash = await wallet.writeContract({ address: n.asset.address, abi: erc20Abi, functionName: "approve", args: [PERMIT2_ADDRESS, maxUint256] });
  expect((await pub.waitForTransactionReceipt({ hash })).status).toBe("success");
  await nodeRpc(n.rpcUrl, "anvil_setBalance", [n.payer.address, "0x0"]);
}

async function balances(n: EvmWorldNetwork) {
  const { pub } = clients(n, n.payer.privateKey);
  const of = (who: Address) => pub.readContract({ address: n.asset.address, abi: erc20Abi, functionName: "balanceOf", args: [who] });
  return { payer: await of(n.payer.address), payTo: await of(n.payTo) };
}

/** Is the Permit2 nonce (word/bit of the unordered bitmap) used for `owner`? */
async function nonceUsed(n: EvmWorldNetwork, owner: Address, nonce: bigint): Promise<boolean> {
  const { pub } = clients(n, n.payer.privateKey);
  const abi = parseAbi(["function nonceBitmap(address, uint256) view returns (uint256)"]);
  const word = await pub.readContract({ address: PERMIT2_ADDRESS, abi, functionName: "nonceBitmap", args: [owner, nonce >> 8n] });
  return ((word >> (nonce & 0xffn)) & 1n) === 1n;
}

/** Each ABI item (constructor aside) as canonical JSON without `internalType`, sorted: what callers rely on. */
const signatures = (abi: Abi) =>
  abi
    .filter((i) => i.type !== "constructor")
    .map((i) => JSON.stringify(i, (k, v) => (k === "internalType" ? undefined : v), 0))
    .map((j) => JSON.stringify(sortKeys(JSON.parse(j))))
    .sort();
const sortKeys = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sortKeys)
    : v && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)]))
      : v;

describe("the fixtures implement the documented interface", () => {
  it("the canonical addresses are the ones @x402/evm 2.27 names", () => {
    expect(PERMIT2_ADDRESS).toBe(X402_PERMIT2_ADDRESS);
  });

  it("each proxy's ABI equals the one @x402/evm 2.27 ships (functions, events, errors)", () => {
    expect(signatures(loadArtifact("x402ExactPermit2Proxy", "fixtures/x402Permit2Proxies.sol").abi)).toEqual(
      signatures(x402ExactPermit2ProxyABI as unknown as Abi),
    );
    expect(signatures(loadArtifact("x402UptoPermit2Proxy", "fixtures/x402Permit2Proxies.sol").abi)).toEqual(
      signatures(x402UptoPermit2ProxyABI as unknown as Abi),
    );
  });

  it("Permit2 was compiled by solc 0.8.17 from @uniswap/v4-periphery's lib/permit2 and cached", () => {
    expect(permit2.solcVersion).toBe("0.8.17");
    expect(Object.keys(permit2.immutables).sort()).toEqual(["_CACHED_CHAIN_ID", "_CACHED_DOMAIN_SEPARATOR"]);
  });
});

describe.each(EVM_WORLD_CHAINS.map((c) => c.network))("%s", (network) => {
  let n: EvmWorldNetwork;
  const facilitatorKey = () => world.facilitatorKeys[0]!;
  const otherFacilitatorKey = () => world.facilitatorKeys[1]!;

  beforeAll(async () => {
    n = world.networks[network]!;
    await approvePermit2(n);
  });

  it("places Permit2 and both proxies at their canonical addresses", async () => {
    const { pub } = clients(n, facilitatorKey());
    expect(n.permit2).toEqual({ permit2: PERMIT2_ADDRESS, exactProxy: X402_EXACT_PERMIT2_PROXY_ADDRESS, uptoProxy: X402_UPTO_PERMIT2_PROXY_ADDRESS });
    for (const a of [PERMIT2_ADDRESS, X402_EXACT_PERMIT2_PROXY_ADDRESS, X402_UPTO_PERMIT2_PROXY_ADDRESS]) {
      expect((await pub.getCode({ address: a }))?.length ?? 0).toBeGreaterThan(1000);
    }
    for (const [address, abi] of [
      [X402_EXACT_PERMIT2_PROXY_ADDRESS, x402ExactPermit2ProxyABI],
      [X402_UPTO_PERMIT2_PROXY_ADDRESS, x402UptoPermit2ProxyABI],
    ] as const) {
      expect(await pub.readContract({ address, abi: abi as unknown as Abi, functionName: "PERMIT2" })).toBe(PERMIT2_ADDRESS);
    }
  });

  it("Permit2's DOMAIN_SEPARATOR() is the EIP-712 separator of ('Permit2', chainId, canonical address)", async () => {
    const { pub } = clients(n, facilitatorKey());
    const expected = hashDomain({
      domain: { name: "Permit2", chainId: BigInt(n.chainId), verifyingContract: PERMIT2_ADDRESS },
      types: {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "chainId", type: "uint256" },
          { name: "verifyingContract", type: "address" },
        ],
      },
    });
    const abi = parseAbi(["function DOMAIN_SEPARATOR() view returns (bytes32)"]);
    expect(await pub.readContract({ address: PERMIT2_ADDRESS, abi, functionName: "DOMAIN_SEPARATOR" })).toBe(expected);
  });

  it("the placed Permit2 code is byte for byte what its constructor leaves, separator aside", async () => {
    // Simulate the creation (no transaction) from a fresh sender: the code lands at getContractAddress(sender, 0).
    const sender = privateKeyToAccount(generatePrivateKey()).address;
    const created = await nodeRpc<Hex>(n.rpcUrl, "eth_call", [{ from: sender, data: permit2.bytecode, gas: "0x1c9c380" }, "latest"]);
    const createdAt = getContractAddress({ from: sender, nonce: 0n });
    expect(created).toBe(permit2RuntimeCode(permit2, n.chainId, createdAt));
    // ... and the canonical code differs from it only in the separator's bytes.
    const placed = await nodeRpc<Hex>(n.rpcUrl, "eth_getCode", [PERMIT2_ADDRESS, "latest"]);
    expect(placed).toBe(permit2RuntimeCode(permit2, n.chainId, PERMIT2_ADDRESS));
    expect(placed).not.toBe(created);
  });

  it("exact: the official client's Permit2 signature moves exactly the amount to the witness's `to`, once", async () => {
    const amount = 1_000n;
    const p = await officialPayload(n, requirementsFor(n, "exact", amount, { assetTransferMethod: "permit2" }));
    expect(p.permit2Authorization.spender).toBe(X402_EXACT_PERMIT2_PROXY_ADDRESS);
    expect(p.permit2Authorization.witness.to).toBe(n.payTo);
    const { pub, wallet } = clients(n, facilitatorKey());
    const abi = withPermit2Errors(x402ExactPermit2ProxyABI as unknown as Abi);
    const witness = { to: p.permit2Authorization.witness.to, validAfter: BigInt(p.permit2Authorization.witness.validAfter) };
    const args = [permitArg(p), p.permit2Authorization.from, witness, p.signature] as const;
    const call = { address: X402_EXACT_PERMIT2_PROXY_ADDRESS, abi, functionName: "settle", args } as const;

    // The facilitator cannot redirect: another `to` breaks the witness the payer signed.
    await expect(
      pub.simulateContract({ ...call, account: wallet.account, args: [permitArg(p), p.permit2Authorization.from, { ...witness, to: wallet.account.address }, p.signature] }),
    ).rejects.toThrow(/InvalidSigner/);

    const before = await balances(n);
    const hash = await wallet.writeContract(call);
    const receipt = await pub.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    const after = await balances(n);
    expect(after.payer).toBe(before.payer - amount);
    expect(after.payTo).toBe(before.payTo + amount);
    expect(await nonceUsed(n, n.payer.address, BigInt(p.permit2Authorization.nonce))).toBe(true);

    // A replay reverts, in simulation and on chain, and moves nothing.
    await expect(pub.simulateContract({ ...call, account: wallet.account })).rejects.toThrow(/InvalidNonce/);
    const replay = await wallet.writeContract({ ...call, gas: 300_000n });
    expect((await pub.waitForTransactionReceipt({ hash: replay })).status).toBe("reverted");
    expect(await balances(n)).toEqual(after);
  });

  it("upto: the facilitator named in the witness moves at most the signed maximum, once", async () => {
    const facilitator = privateKeyToAccount(facilitatorKey()).address;
    const maximum = 1_000n;
    const p = await officialPayload(n, requirementsFor(n, "upto", maximum, { facilitatorAddress: facilitator }));
    expect(p.permit2Authorization.spender).toBe(X402_UPTO_PERMIT2_PROXY_ADDRESS);
    expect(p.permit2Authorization.witness).toMatchObject({ to: n.payTo, facilitator });
    const { pub, wallet } = clients(n, facilitatorKey());
    const other = clients(n, otherFacilitatorKey());
    const abi = withPermit2Errors(x402UptoPermit2ProxyABI as unknown as Abi);
    const witness = {
      to: p.permit2Authorization.witness.to,
      facilitator: p.permit2Authorization.witness.facilitator!,
      validAfter: BigInt(p.permit2Authorization.witness.validAfter),
    };
    const settle = (amount: bigint) =>
      ({ address: X402_UPTO_PERMIT2_PROXY_ADDRESS, abi, functionName: "settle", args: [permitArg(p), amount, p.permit2Authorization.from, witness, p.signature] }) as const;
    const before = await balances(n);

    // More than the signed maximum reverts; so does any other facilitator; nothing moves.
    await expect(pub.simulateContract({ ...settle(maximum + 1n), account: wallet.account })).rejects.toThrow(/AmountExceedsPermitted/);
    await expect(pub.simulateContract({ ...settle(400n), account: other.wallet.account })).rejects.toThrow(/UnauthorizedFacilitator/);
    const over = await wallet.writeContract({ ...settle(maximum + 1n), gas: 300_000n });
    expect((await pub.waitForTransactionReceipt({ hash: over })).status).toBe("reverted");
    expect(await balances(n)).toEqual(before);

    // The actual charge, below the maximum, moves exactly.
    const hash = await wallet.writeContract(settle(400n));
    expect((await pub.waitForTransactionReceipt({ hash })).status).toBe("success");
    const after = await balances(n);
    expect(after.payer).toBe(before.payer - 400n);
    expect(after.payTo).toBe(before.payTo + 400n);

    // The rest of the maximum cannot be taken with the same signature.
    await expect(pub.simulateContract({ ...settle(400n), account: wallet.account })).rejects.toThrow(/InvalidNonce/);
    await expect(pub.simulateContract({ ...settle(600n), account: wallet.account })).rejects.toThrow(/InvalidNonce/);
    const replay = await wallet.writeContract({ ...settle(600n), gas: 300_000n });
    expect((await pub.waitForTransactionReceipt({ hash: replay })).status).toBe("reverted");
    expect(await balances(n)).toEqual(after);
  });

  it("upto: the full signed maximum can be settled", async () => {
    const facilitator = privateKeyToAccount(facilitatorKey()).address;
    const p = await officialPayload(n, requirementsFor(n, "upto", 777n, { facilitatorAddress: facilitator }));
    const { pub, wallet } = clients(n, facilitatorKey());
    const witness = { to: n.payTo, facilitator, validAfter: BigInt(p.permit2Authorization.witness.validAfter) };
    const before = await balances(n);
    const hash = await wallet.writeContract({
      address: X402_UPTO_PERMIT2_PROXY_ADDRESS,
      abi: x402UptoPermit2ProxyABI,
      functionName: "settle",
      args: [permitArg(p), 777n, p.permit2Authorization.from, witness, p.signature],
    });
    expect((await pub.waitForTransactionReceipt({ hash })).status).toBe("success");
    expect((await balances(n)).payTo).toBe(before.payTo + 777n);
  });
});
