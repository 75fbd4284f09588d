/**
 * Puts a contract deployed on a local anvil node at another address: its code and every storage slot,
 * read from anvil's own state dump. The local world uses it to give each token the address of the
 * real one, so that requirements built from the official clients' default asset tables (a route priced
 * "$0.01" on MegaETH is USDm at its mainnet address) name the local token.
 */
import { gunzipSync } from "node:zlib";
import type { Address, Hex } from "viem";

async function rpc<T>(rpcUrl: string, method: string, params: unknown[]): Promise<T> {
  const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

interface DumpedAccount {
  code: Hex;
  storage: Record<string, Hex>;
}

/**
 * Copies `from`'s code and storage to `to` and empties `from`. Contracts that cache their own address
 * (OpenZeppelin's EIP712 does) notice the move and derive their domain from the new one.
 */
export async function relocateContract(rpcUrl: string, from: Address, to: Address): Promise<void> {
  const dump = await rpc<Hex>(rpcUrl, "anvil_dumpState", []);
  const state = JSON.parse(gunzipSync(Buffer.from(dump.slice(2), "hex")).toString()) as { accounts: Record<string, DumpedAccount> };
  const account = Object.entries(state.accounts).find(([a]) => a.toLowerCase() === from.toLowerCase())?.[1];
  if (!account?.code || account.code === "0x") throw new Error(`relocate ${from}: no contract there`);
  await rpc(rpcUrl, "anvil_setCode", [to, account.code]);
  for (const [slot, value] of Object.entries(account.storage)) {
    await rpc(rpcUrl, "anvil_setStorageAt", [to, pad32(slot), pad32(value)]);
  }
  await rpc(rpcUrl, "anvil_setCode", [from, "0x"]);
}

const pad32 = (hex: string): Hex => `0x${hex.replace(/^0x/, "").padStart(64, "0")}`;
