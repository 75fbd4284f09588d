import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  hashDomain,
  hashTypedData,
  http,
  encodeFunctionData,
  parseSignature,
  serializeSignature,
  toHex,
  type Address,
  type Hex,
  type PrivateKeyAccount,
  type TypedDataDomain,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  CHAIN_IDS,
  DevRole,
  devKey,
  deployErc1271Wallet,
  deployPermitToken,
  deployTestUsdc,
  loadArtifact,
  localChain,
  mintTokens,
  startAnvil,
  type AnvilNode,
} from "@facilitator/devnet";

const CHAIN_ID = CHAIN_IDS["base-sepolia"];
const usdcAbi = loadArtifact("TestUSDC").abi;
const permitAbi = loadArtifact("TestPermitToken").abi;
const walletAbi = loadArtifact("Erc1271Wallet", "mocks/Erc1271Wallet.sol").abi;

const transferTypes = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;
const receiveTypes = { ReceiveWithAuthorization: transferTypes.TransferWithAuthorization } as const;
const cancelTypes = {
  CancelAuthorization: [
    { name: "authorizer", type: "address" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;
const permitTypes = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

let anvil: AnvilNode;
let pub: ReturnType<typeof createPublicClient>;
let relayer: ReturnType<typeof createWalletClient>;
let usdc: Address;
let usdm: Address;
let wallet: Address;
const payer = privateKeyToAccount(devKey(6));
const walletOwner = privateKeyToAccount(devKey(7));
const relayerAccount = privateKeyToAccount(devKey(DevRole.relayer));
const payTo = privateKeyToAccount(devKey(DevRole.payTo)).address;

beforeAll(async () => {
  anvil = await startAnvil({ chainId: CHAIN_ID });
  const target = { rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey: devKey(DevRole.deployer) };
  [usdc, usdm, wallet] = await Promise.all([
    deployTestUsdc({ ...target, name: "USDC", version: "2", decimals: 6 }),
    deployPermitToken({ ...target, name: "MegaUSD", version: "1", decimals: 18 }),
    deployErc1271Wallet({ ...target, owner: walletOwner.address }),
  ]);
  await Promise.all([
    mintTokens({ ...target, token: usdc, to: payer.address, amount: 1_000_000_000n }),
    mintTokens({ ...target, token: usdc, to: wallet, amount: 1_000_000_000n }),
    mintTokens({ ...target, token: usdm, to: payer.address, amount: 10n ** 21n }),
  ]);
  const chain = localChain(CHAIN_ID, anvil.rpcUrl);
  pub = createPublicClient({ chain, transport: http(anvil.rpcUrl), pollingInterval: 50 });
  relayer = createWalletClient({ account: relayerAccount, chain, transport: http(anvil.rpcUrl), pollingInterval: 50 });
});

afterAll(async () => {
  await anvil?.stop();
});

const usdcDomain = (): TypedDataDomain => ({ name: "USDC", version: "2", chainId: CHAIN_ID, verifyingContract: usdc });
const randomNonce = (): Hex => toHex(crypto.getRandomValues(new Uint8Array(32)));

async function now(): Promise<bigint> {
  return (await pub.getBlock()).timestamp;
}

async function balanceOf(token: Address, who: Address): Promise<bigint> {
  return pub.readContract({ address: token, abi: usdcAbi, functionName: "balanceOf", args: [who] }) as Promise<bigint>;
}

/** An authorization valid from an hour ago to an hour ahead, unless overridden. */
async function authorization(overrides: Partial<{ from: Address; value: bigint; validAfter: bigint; validBefore: bigint; nonce: Hex }> = {}) {
  const t = await now();
  return {
    from: payer.address,
    to: payTo,
    value: 1_000n,
    validAfter: t - 3600n,
    validBefore: t + 3600n,
    nonce: randomNonce(),
    ...overrides,
  };
}
type Authorization = Awaited<ReturnType<typeof authorization>>;

function signTransfer(auth: Authorization, signer: PrivateKeyAccount = payer, domain = usdcDomain()): Promise<Hex> {
  return signer.signTypedData({ domain, types: transferTypes, primaryType: "TransferWithAuthorization", message: auth });
}

const authArgs = (a: Authorization) => [a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce] as const;
const vrs = (sig: Hex) => {
  const { v, r, s } = parseSignature(sig);
  return [Number(v), r, s] as const;
};

/** Sends a call as the relayer and waits for success (viem simulates first, so a revert throws here). */
async function send(address: Address, abi: typeof usdcAbi, functionName: string, args: readonly unknown[]) {
  const hash = await relayer.writeContract({ address, abi, functionName, args, chain: null, account: relayerAccount } as never);
  const receipt = await pub.waitForTransactionReceipt({ hash });
  expect(receipt.status).toBe("success");
  return receipt;
}

/** The call reverts in simulation with a message matching `reason`. */
async function expectRevert(address: Address, abi: typeof usdcAbi, functionName: string, args: readonly unknown[], reason: RegExp, account: Address = relayerAccount.address) {
  await expect(pub.simulateContract({ address, abi, functionName, args, account } as never)).rejects.toThrow(reason);
}

describe("TestUSDC / TestPermitToken metadata", () => {
  it("eip712Domain() and version() return the constructor's name and version", async () => {
    for (const [token, name, version, decimals] of [
      [usdc, "USDC", "2", 6],
      [usdm, "MegaUSD", "1", 18],
    ] as const) {
      const domain = await pub.getEip712Domain({ address: token });
      expect(domain.domain).toEqual({ name, version, chainId: CHAIN_ID, verifyingContract: token, salt: `0x${"00".repeat(32)}` });
      expect(await pub.readContract({ address: token, abi: usdcAbi, functionName: "version" })).toBe(version);
      expect(await pub.readContract({ address: token, abi: usdcAbi, functionName: "decimals" })).toBe(decimals);
      expect(await pub.readContract({ address: token, abi: usdcAbi, functionName: "DOMAIN_SEPARATOR" })).toBe(
        hashDomain({
          domain: { name, version, chainId: BigInt(CHAIN_ID), verifyingContract: token },
          types: { EIP712Domain: [
            { name: "name", type: "string" }, { name: "version", type: "string" },
            { name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" },
          ] },
        }),
      );
    }
  });

  it("the permit-only token has no EIP-3009 functions", () => {
    const names = permitAbi.filter((x) => x.type === "function").map((x) => x.name);
    expect(names).toContain("permit");
    expect(names).not.toContain("transferWithAuthorization");
    expect(names).not.toContain("authorizationState");
  });

  it("only the owner mints", async () => {
    await expect(
      mintTokens({ rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey: devKey(DevRole.thirdParty), token: usdc, to: payTo, amount: 1n }),
    ).rejects.toThrow(/OwnableUnauthorizedAccount/);
    await expectRevert(usdm, permitAbi, "mint", [payTo, 1n], /OwnableUnauthorizedAccount/);
    const before = await balanceOf(usdm, payTo);
    await mintTokens({ rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey: devKey(DevRole.deployer), token: usdm, to: payTo, amount: 5n });
    expect(await balanceOf(usdm, payTo)).toBe(before + 5n);
  });
});

describe("EIP-3009 transferWithAuthorization", () => {
  it("moves funds with a (v, r, s) signature and marks the nonce used", async () => {
    const auth = await authorization();
    const sig = await signTransfer(auth);
    const [payerBefore, payToBefore] = [await balanceOf(usdc, payer.address), await balanceOf(usdc, payTo)];
    const receipt = await send(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), ...vrs(sig)]);
    expect(await balanceOf(usdc, payer.address)).toBe(payerBefore - auth.value);
    expect(await balanceOf(usdc, payTo)).toBe(payToBefore + auth.value);
    expect(await pub.readContract({ address: usdc, abi: usdcAbi, functionName: "authorizationState", args: [payer.address, auth.nonce] })).toBe(true);
    const events = await pub.getContractEvents({ address: usdc, abi: usdcAbi, eventName: "AuthorizationUsed", blockHash: receipt.blockHash });
    expect(events.map((e) => e.args)).toEqual([{ authorizer: payer.address, nonce: auth.nonce }]);
  });

  it("moves funds with a bytes signature from an EOA", async () => {
    const auth = await authorization();
    const before = await balanceOf(usdc, payTo);
    await send(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), await signTransfer(auth)]);
    expect(await balanceOf(usdc, payTo)).toBe(before + auth.value);
  });

  it("lets an ERC-1271 wallet pay through the bytes overload, and only with its owner's signature", async () => {
    const auth = await authorization({ from: wallet });
    const digest = hashTypedData({ domain: usdcDomain(), types: transferTypes, primaryType: "TransferWithAuthorization", message: auth });
    const strangerSig = await payer.sign({ hash: digest });
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), strangerSig], /invalid signature/);

    const before = await balanceOf(usdc, wallet);
    await send(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), await walletOwner.sign({ hash: digest })]);
    expect(await balanceOf(usdc, wallet)).toBe(before - auth.value);
  });

  it("rejects a reused nonce and changes nothing", async () => {
    const auth = await authorization();
    const sig = await signTransfer(auth);
    await send(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), sig]);
    const before = await balanceOf(usdc, payer.address);
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), ...vrs(sig)], /authorization is used or canceled/);
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), sig], /authorization is used or canceled/);
    expect(await balanceOf(usdc, payer.address)).toBe(before);
  });

  it("rejects an expired and a not-yet-valid authorization", async () => {
    const t = await now();
    const expired = await authorization({ validAfter: 0n, validBefore: t - 1n });
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(expired), await signTransfer(expired)], /authorization is expired/);
    const early = await authorization({ validAfter: t + 3600n, validBefore: t + 7200n });
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(early), await signTransfer(early)], /authorization is not yet valid/);
  });

  it("treats validAfter and validBefore as exclusive bounds, as USDC does", async () => {
    const test = createTestClient({ mode: "anvil", chain: localChain(CHAIN_ID, anvil.rpcUrl), transport: http(anvil.rpcUrl) });
    const cases = [
      { window: (at: bigint) => ({ validAfter: at, validBefore: at + 100n }), ok: false },
      { window: (at: bigint) => ({ validAfter: at - 100n, validBefore: at }), ok: false },
      { window: (at: bigint) => ({ validAfter: at - 1n, validBefore: at + 1n }), ok: true },
    ];
    for (const { window, ok } of cases) {
      const at = (await now()) + 100n;
      const auth = await authorization(window(at));
      const before = await balanceOf(usdc, payTo);
      // Mine the transaction in a block whose timestamp sits exactly on the bound; a fixed gas limit skips
      // viem's estimate so a reverting transaction still lands and its receipt shows the outcome.
      await test.setNextBlockTimestamp({ timestamp: at });
      const hash = await relayer.writeContract({
        address: usdc, abi: usdcAbi, functionName: "transferWithAuthorization",
        args: [...authArgs(auth), await signTransfer(auth)], gas: 200_000n, chain: null, account: relayerAccount,
      } as never);
      const receipt = await pub.waitForTransactionReceipt({ hash });
      expect((await pub.getBlock({ blockHash: receipt.blockHash })).timestamp).toBe(at);
      expect(receipt.status).toBe(ok ? "success" : "reverted");
      expect(await balanceOf(usdc, payTo)).toBe(ok ? before + auth.value : before);
    }
  });

  it("rejects a signature over another domain version", async () => {
    const auth = await authorization();
    const sig = await signTransfer(auth, payer, { ...usdcDomain(), version: "1" });
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), ...vrs(sig)], /invalid signature/);
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), sig], /invalid signature/);
  });

  it("rejects the malleable (high-s) twin of a valid signature", async () => {
    const auth = await authorization();
    const { r, s, yParity } = parseSignature(await signTransfer(auth));
    const twin = serializeSignature({ r, s: toHex(SECP256K1_N - BigInt(s), { size: 32 }), yParity: 1 - yParity! });
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), twin], /invalid signature/);
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), ...vrs(twin)], /invalid signature/);
  });

  it("receiveWithAuthorization is callable only by the payee", async () => {
    const auth = { ...(await authorization()), to: relayerAccount.address };
    const sig = await payer.signTypedData({ domain: usdcDomain(), types: receiveTypes, primaryType: "ReceiveWithAuthorization", message: auth });
    await expectRevert(usdc, usdcAbi, "receiveWithAuthorization", [...authArgs(auth), sig], /caller must be the payee/, payTo);
    const before = await balanceOf(usdc, relayerAccount.address);
    await send(usdc, usdcAbi, "receiveWithAuthorization", [...authArgs(auth), ...vrs(sig)]);
    expect(await balanceOf(usdc, relayerAccount.address)).toBe(before + auth.value);
  });

  it("a canceled authorization can no longer be used", async () => {
    const auth = await authorization();
    const cancelSig = await payer.signTypedData({
      domain: usdcDomain(), types: cancelTypes, primaryType: "CancelAuthorization", message: { authorizer: payer.address, nonce: auth.nonce },
    });
    const receipt = await send(usdc, usdcAbi, "cancelAuthorization", [payer.address, auth.nonce, cancelSig]);
    const events = await pub.getContractEvents({ address: usdc, abi: usdcAbi, eventName: "AuthorizationCanceled", blockHash: receipt.blockHash });
    expect(events).toHaveLength(1);
    await expectRevert(usdc, usdcAbi, "transferWithAuthorization", [...authArgs(auth), await signTransfer(auth)], /authorization is used or canceled/);
  });
});

describe("ERC-2612 permit", () => {
  for (const which of ["TestUSDC", "TestPermitToken"] as const) {
    it(`${which}: permit then transferFrom moves funds; a replayed or expired permit reverts`, async () => {
      const [token, abi, domain] =
        which === "TestUSDC"
          ? [usdc, usdcAbi, usdcDomain()]
          : [usdm, permitAbi, { name: "MegaUSD", version: "1", chainId: CHAIN_ID, verifyingContract: usdm } as TypedDataDomain];
      const spender = relayerAccount.address;
      const nonce = (await pub.readContract({ address: token, abi, functionName: "nonces", args: [payer.address] })) as bigint;
      const permit = { owner: payer.address, spender, value: 500n, nonce, deadline: (await now()) + 600n };
      const sig = await payer.signTypedData({ domain, types: permitTypes, primaryType: "Permit", message: permit });
      const args = [permit.owner, permit.spender, permit.value, permit.deadline, ...vrs(sig)];

      await send(token, abi, "permit", args);
      expect(await pub.readContract({ address: token, abi, functionName: "allowance", args: [payer.address, spender] })).toBe(500n);
      expect(await pub.readContract({ address: token, abi, functionName: "nonces", args: [payer.address] })).toBe(nonce + 1n);
      await expectRevert(token, abi, "permit", args, /ERC2612InvalidSigner/);

      const before = await balanceOf(token, payTo);
      await send(token, abi, "transferFrom", [payer.address, payTo, 500n]);
      expect(await balanceOf(token, payTo)).toBe(before + 500n);

      const late = { ...permit, nonce: nonce + 1n, deadline: (await now()) - 1n };
      const lateSig = await payer.signTypedData({ domain, types: permitTypes, primaryType: "Permit", message: late });
      await expectRevert(token, abi, "permit", [late.owner, late.spender, late.value, late.deadline, ...vrs(lateSig)], /ERC2612ExpiredSignature/);
    });
  }
});

describe("Erc1271Wallet", () => {
  it("lets only its owner move what it holds", async () => {
    const data = encodeFunctionData({ abi: usdcAbi, functionName: "transfer", args: [payTo, 1n] });
    await expectRevert(wallet, walletAbi, "execute", [usdc, 0n, data], /NotOwner/, payer.address);
    await expect(pub.simulateContract({ address: wallet, abi: walletAbi, functionName: "execute", args: [usdc, 0n, data], account: walletOwner.address } as never)).resolves.toBeDefined();
  });
});
