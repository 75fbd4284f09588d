export { startSolanaRpc, type SolanaRpc, type SolanaRpcOptions } from "./rpc.ts";
export { setupSolanaWorld, newKeypair, type SolanaWorld, type SolanaWorldOptions, type SolanaKeypair } from "./world.ts";
export { LocalSolana, RpcError as SolanaRpcError, type LocalSolanaOptions, type LandedTransaction } from "./chain.ts";
export { DEVNET_GENESIS_HASH } from "./methods.ts";
