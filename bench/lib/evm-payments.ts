/**
 * EVM payments of each method for one round, and the accounts they need (set up once per run):
 *
 * - `eip3009`: `exact`, an EIP-3009 authorization by the world's payer.
 * - `permit2`: `exact` through x402ExactPermit2Proxy, by the world's payer, who approved Permit2 once.
 * - `permit2-eip2612`: the same with the `eip2612GasSponsoring` extension (settleWithPermit). A permit's
 *   nonce is the token's sequential one, so each settled payment needs a payer of its own: fresh keys,
 *   given tokens before the round; verifies share one unapproved payer (nothing is consumed).
 * - `upto`: through x402UptoPermit2Proxy by the world's payer, signed for at most twice the amount and
 *   settled for the amount, naming the settling account of the facilitator it goes to.
 */
import type { Address, Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { mintTokens, type EvmWorld, type EvmWorldNetwork } from "@facilitator/devnet";
import { approvePermit2 } from "../../test/helpers/payments.ts";
import { evmBodyFactory, permit2Bodies } from "./payloads.ts";
import type { EvmMethod, Operation } from "./phase.ts";

export interface EvmPayments {
  /** `n` bodies of `method` paying `payTo`; `facilitator` is the settling account an `upto` witness names. */
  bodies(method: EvmMethod, operation: Operation, n: number, payTo: Address, facilitator: Address): Promise<Buffer[]>;
}

export async function evmPayments(world: EvmWorld, network: EvmWorldNetwork, methods: readonly EvmMethod[], amount: bigint): Promise<EvmPayments> {
  const payer = { address: network.payer.address, key: network.payer.privateKey };
  if (methods.some((m) => m === "permit2" || m === "upto")) await approvePermit2(network, payer);
  const mint = (to: Address, tokens: bigint) =>
    mintTokens({ rpcUrl: network.rpcUrl, chainId: network.chainId, deployerKey: world.deployerKey, token: network.asset.address, to, amount: tokens });
  // Never approves Permit2, so every verify of it is a sponsored one.
  const sponsoredVerifier = generatePrivateKey();
  if (methods.includes("permit2-eip2612")) await mint(privateKeyToAccount(sponsoredVerifier).address, 10n ** 12n);

  /** Keys holding `amount` tokens and no allowance: one mint each (sent one at a time, receipts awaited together). */
  const freshPayers = async (n: number): Promise<Hex[]> => {
    const keys = Array.from({ length: n }, () => generatePrivateKey());
    for (let i = 0; i < n; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => mint(privateKeyToAccount(k).address, amount)));
    return keys;
  };
  const target = { rpcUrl: network.rpcUrl, asset: network.asset, amount };
  return {
    async bodies(method, operation, n, payTo, facilitator) {
      const same = (key: Hex) => Array<Hex>(n).fill(key);
      switch (method) {
        case "eip3009":
          return evmBodyFactory(privateKeyToAccount(payer.key), { ...network.asset, transferMethod: "eip3009" }, payTo, amount)(n);
        case "permit2":
          return permit2Bodies({ ...target, payTo, scheme: "exact" }, same(payer.key), operation);
        case "permit2-eip2612": {
          const keys = operation === "settle" ? await freshPayers(n) : same(sponsoredVerifier);
          return permit2Bodies({ ...target, payTo, scheme: "exact", sponsored: true }, keys, operation);
        }
        case "upto":
          return permit2Bodies({ ...target, payTo, scheme: "upto", amount: 2n * amount, charge: amount, facilitator }, same(payer.key), operation);
      }
    },
  };
}

