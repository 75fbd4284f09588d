import { mnemonicToAccount } from "viem/accounts";
import { toHex } from "viem";

/**
 * anvil's public development mnemonic. These keys are known to everyone and hold value only on
 * local chains; never configure them for a real network.
 */
export const DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** The private key anvil funds at `index` (0..9 get 10,000 ETH each on start). */
export function devKey(index: number): `0x${string}` {
  const account = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: index });
  return toHex(account.getHdKey().privateKey!);
}

/** Roles on the local world, one dev account each, so logs and balances are easy to read. */
export const DevRole = {
  deployer: 0,
  facilitator: 1,
  facilitator2: 2,
  relayer: 3,
  payTo: 4,
  thirdParty: 5,
} as const;
