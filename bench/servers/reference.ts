/**
 * Child process: the reference facilitator, assembled from the official npm packages exactly as the
 * x402 repository's facilitator example assembles them (`x402Facilitator`, `ExactEvmScheme` and
 * `UptoEvmScheme` over a viem wallet client via `toFacilitatorEvmSigner`, the `eip2612GasSponsoring`
 * extension, `ExactSvmScheme` over `toFacilitatorSvmSigner`), served by a small express app with the
 * same /verify and /settle routes as ours.
 * Only local-chain settings differ from the example: the RPC URLs and viem's polling interval
 * (the same short interval ours uses, or every receipt wait would cost a second).
 * Under /nonce-managed it also serves a variant that is not the example's (see evmSigner).
 */
import express from "express";
import { createKeyPairSignerFromBytes, createSolanaRpc, devnet, getBase58Encoder } from "@solana/kit";
import { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { UptoEvmScheme } from "@x402/evm/upto/facilitator";
import { EIP2612_GAS_SPONSORING } from "@x402/extensions";
import { toFacilitatorSvmSigner } from "@x402/svm";
import { ExactSvmScheme } from "@x402/svm/exact/facilitator";
import { createWalletClient, http, nonceManager, publicActions, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { childSpec, onStop, reportFailure, reportReady } from "../lib/child.ts";
import { serveSpans, wrapFetch, wrapMethod } from "../lib/spans.ts";
import { BASE_SEPOLIA, SOLANA_DEVNET, type ReferenceSpec, type ServerInfo } from "../lib/spec.ts";

async function main(): Promise<void> {
  const spec = childSpec<ReferenceSpec>();
  if (process.env.BENCH_SPANS === "1") {
    wrapFetch();
    wrapMethod(x402Facilitator.prototype, "verify", "facilitator.verify (whole)");
    wrapMethod(x402Facilitator.prototype, "settle", "facilitator.settle (whole)");
    serveSpans();
  }
  const facilitator = new x402Facilitator();
  if (spec.evm) registerEvm(facilitator, evmSigner(spec.evm.rpcUrl, spec.evm.key, false, spec.pollingIntervalMs));

  // A variant that is not in the official example: the same, with viem's nonce manager on the
  // account, so concurrent settles do not all ask the node for the same pending nonce.
  const nonceManaged = new x402Facilitator();
  if (spec.evm?.nonceManagedKey) registerEvm(nonceManaged, evmSigner(spec.evm.rpcUrl, spec.evm.nonceManagedKey, true, spec.pollingIntervalMs));

  if (spec.svm) {
    const feePayer = await createKeyPairSignerFromBytes(getBase58Encoder().encode(spec.svm.key));
    // One RPC client per network (the package's documented option 3). Its option 2, a bare RPC client,
    // does not work with @solana/kit's proxy clients: `"getBalance" in rpc` is false, so the client is
    // taken for a network map and every call fails with "rpc.simulateTransaction is not a function".
    const signer = toFacilitatorSvmSigner(feePayer, { [SOLANA_DEVNET.caip2]: createSolanaRpc(devnet(spec.svm.rpcUrl)) });
    facilitator.register(SOLANA_DEVNET.caip2, new ExactSvmScheme(signer));
  }

  const app = express();
  app.use(express.json());
  serve(app, "", facilitator);
  serve(app, "/nonce-managed", nonceManaged);

  const server = app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const { port } = server.address() as { port: number };
  onStop(() => new Promise<void>((resolve) => server.close(() => resolve())));
  reportReady({ url: `http://127.0.0.1:${port}`, pid: process.pid } satisfies ServerInfo);
}

/**
 * `exact` (EIP-3009 and Permit2) and `upto` on one signer, as one account settles both. The scheme reads
 * an EIP-2612 permit from the payload either way; registering the extension lists it in /supported.
 */
function registerEvm(facilitator: x402Facilitator, signer: ReturnType<typeof evmSigner>): void {
  facilitator.register(BASE_SEPOLIA.caip2, new ExactEvmScheme(signer));
  facilitator.register(BASE_SEPOLIA.caip2, new UptoEvmScheme(signer));
  facilitator.registerExtension(EIP2612_GAS_SPONSORING);
}

/** The example's signer: a viem wallet client extended with public actions, wrapped by toFacilitatorEvmSigner. */
function evmSigner(rpcUrl: string, key: Hex, withNonceManager: boolean, pollingInterval: number) {
  const account = privateKeyToAccount(key, withNonceManager ? { nonceManager } : undefined);
  const client = createWalletClient({
    account,
    chain: { ...baseSepolia, rpcUrls: { default: { http: [rpcUrl] } } },
    transport: http(rpcUrl),
    pollingInterval,
  }).extend(publicActions);
  return toFacilitatorEvmSigner({
    address: account.address,
    getCode: (args) => client.getCode(args),
    readContract: (args) => client.readContract({ ...args, args: args.args || [] } as never),
    verifyTypedData: (args) => client.verifyTypedData(args as never),
    writeContract: (args) => client.writeContract({ ...args, args: args.args || [] } as never),
    sendTransaction: (args) => client.sendTransaction(args),
    waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
  });
}

/** The example's routes: POST /verify and /settle with {paymentPayload, paymentRequirements}, GET /supported. */
function serve(app: express.Express, prefix: string, facilitator: x402Facilitator): void {
  type Body = { paymentPayload: PaymentPayload; paymentRequirements: PaymentRequirements };
  app.post(`${prefix}/verify`, async (req, res) => {
    try {
      const { paymentPayload, paymentRequirements } = req.body as Body;
      res.json(await facilitator.verify(paymentPayload, paymentRequirements));
    } catch (e) {
      res.status(500).json({ error: e instanceof Error ? e.message : String(e) });
    }
  });
  app.post(`${prefix}/settle`, async (req, res) => {
    try {
      const { paymentPayload, paymentRequirements } = req.body as Body;
      res.json(await facilitator.settle(paymentPayload, paymentRequirements));
    } catch (e) {
      res.status(500).json({ error: e instanceof Error ? e.message : String(e) });
    }
  });
  app.get(`${prefix}/supported`, (_req, res) => void res.json(facilitator.getSupported()));
}

main().catch(reportFailure);
