/**
 * EIP-6492: a smart wallet that is not deployed yet pays. Its signature carries the factory call that
 * deploys it; we prove the signature by simulating that deployment, deploy the wallet through an
 * allowlisted factory (on our gas, once), then settle as for any ERC-1271 wallet.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFunctionData, parseAbi, serializeErc6492Signature, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { deployContract, mintTokens, startEvmWorld, type EvmWorld, type EvmWorldNetwork } from "@facilitator/devnet";
import { signEip3009Payload } from "@facilitator/evm";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { postForAnswer } from "./helpers/http.ts";

const factoryAbi = parseAbi(["function deploy(address owner, bytes32 salt) returns (address)", "function addressOf(address owner, bytes32 salt) view returns (address)"]);

let world: EvmWorld;
let fx: FacilitatorFixture;
let n: EvmWorldNetwork;
let allowed: Address;
let stranger: Address;

beforeAll(async () => {
  world = await startEvmWorld({ networks: ["base-sepolia"] });
  n = world.networks["base-sepolia"]!;
  const target = { rpcUrl: n.rpcUrl, chainId: n.chainId, deployerKey: world.deployerKey };
  allowed = await deployContract({ ...target, artifact: "WalletFactory" });
  stranger = await deployContract({ ...target, artifact: "WalletFactory" });
  fx = await startFacilitatorOnWorld({ world, config: { eip6492Factories: [allowed] } });
});
afterAll(async () => {
  await fx?.stop();
  await world?.stop();
});

/** A counterfactual wallet of a fresh owner through `factory`, holding `tokens`, and a payment it signs. */
async function counterfactualPayment(factory: Address, tokens: bigint, value = 1000n) {
  const owner = privateKeyToAccount(generatePrivateKey());
  const salt = `0x${"00".repeat(31)}07` as Hex;
  const wallet = await chainView(n).client.readContract({ address: factory, abi: factoryAbi, functionName: "addressOf", args: [owner.address, salt] });
  if (tokens > 0n) await mintTokens({ rpcUrl: n.rpcUrl, chainId: n.chainId, deployerKey: world.deployerKey, token: n.asset.address, to: wallet, amount: tokens });
  const pay = async () => {
    const signed = await signEip3009Payload(owner, {
      domain: { name: n.asset.name!, version: n.asset.version!, chainId: n.chainId, verifyingContract: n.asset.address },
      to: n.payTo,
      value,
      from: wallet,
    });
    const deploy = encodeFunctionData({ abi: factoryAbi, functionName: "deploy", args: [owner.address, salt] });
    const signature = serializeErc6492Signature({ address: factory, data: deploy, signature: signed.signature as Hex });
    const requirements = { scheme: "exact", network: n.caip2, amount: value.toString(), asset: n.asset.address, payTo: n.payTo, maxTimeoutSeconds: 60, extra: { name: n.asset.name, version: n.asset.version } };
    return { x402Version: 2, paymentPayload: { x402Version: 2, accepted: requirements, payload: { ...signed, signature } }, paymentRequirements: requirements };
  };
  return { wallet, pay };
}

const post = async (path: string, body: unknown) => (await postForAnswer(`${fx.url}${path}`, body)).body as Record<string, unknown>;
const code = async (a: Address) => (await chainView(n).client.getCode({ address: a })) ?? "0x";
const sentBySigners = () => Promise.all(world.facilitatorKeys.map((k) => chainView(n).txCount(privateKeyToAccount(k).address))).then((c) => c.reduce((a, b) => a + b, 0));

describe("EIP-6492: a wallet not deployed yet", () => {
  it("verifies by simulating its deployment, then settles: deployed once through the allowlisted factory, paid exactly", async () => {
    const { wallet, pay } = await counterfactualPayment(allowed, 5000n);
    const payment = await pay();
    expect(await post("/verify", payment)).toMatchObject({ isValid: true, payer: wallet });
    expect(await code(wallet)).toBe("0x"); // verify sends nothing

    const payToBefore = await chainView(n).balanceOf(n.payTo);
    const settled = await post("/settle", payment);
    expect(settled, JSON.stringify(settled)).toMatchObject({ success: true, payer: wallet });
    expect((await code(wallet)).length).toBeGreaterThan(2);
    expect(await chainView(n).balanceOf(wallet)).toBe(4000n);
    expect(await chainView(n).balanceOf(n.payTo)).toBe(payToBefore + 1000n);
    expect(await post("/settle", payment)).toMatchObject({ success: false, errorReason: "duplicate_settlement" });

    // Deployed now: its next 6492-wrapped payment settles as any ERC-1271 wallet's, with no second deployment.
    const sent = await sentBySigners();
    expect(await post("/settle", await pay())).toMatchObject({ success: true });
    expect(await sentBySigners()).toBe(sent + 1);
  });

  it("concurrent settles of a wallet's first two payments deploy it once", async () => {
    const { wallet, pay } = await counterfactualPayment(allowed, 5000n);
    const [a, b] = [await pay(), await pay()];
    const [first, second] = await Promise.all([post("/settle", a), post("/settle", b)]);
    // One of them deploys; the other may be told the deployment is under way, and settles on its retry.
    for (const [answer, payment] of [[first, a], [second, b]] as const) {
      if (!answer.success) {
        expect(answer.errorReason).toBe("settlement_pending");
        expect(await post("/settle", payment)).toMatchObject({ success: true });
      }
    }
    const logs = await chainView(n).client.getContractEvents({ address: allowed, abi: parseAbi(["event Deployed(address wallet, address owner)"]), eventName: "Deployed", fromBlock: 0n });
    expect(logs.filter((l) => l.args.wallet === wallet)).toHaveLength(1);
    expect(await chainView(n).balanceOf(wallet)).toBe(3000n);
  });

  it("a factory outside the allowlist is refused at verify and settle, before any gas is spent", async () => {
    const { wallet, pay } = await counterfactualPayment(stranger, 5000n);
    const sent = await sentBySigners();
    const payment = await pay();
    expect(await post("/verify", payment)).toMatchObject({ isValid: false, invalidReason: "eip6492_factory_not_allowed" });
    expect(await post("/settle", payment)).toMatchObject({ success: false, errorReason: "eip6492_factory_not_allowed" });
    expect(await sentBySigners()).toBe(sent);
    expect(await code(wallet)).toBe("0x");
  });

  it("a wallet that holds less than it pays is not deployed on our gas", async () => {
    const { wallet, pay } = await counterfactualPayment(allowed, 10n);
    const sent = await sentBySigners();
    expect(await post("/settle", await pay())).toMatchObject({ success: false, errorReason: "insufficient_funds" });
    expect(await sentBySigners()).toBe(sent);
    expect(await code(wallet)).toBe("0x");
  });
});
