import { subtask } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import type { HardhatUserConfig } from "hardhat/types";

// Hardhat 2 loads this file as CommonJS through ts-node (the root package is not ESM for that reason).
const SOLC_VERSION: string = require("solc/package.json").version;

// Nothing on these machines can download a compiler: use the solcjs build that npm installed.
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD).setAction(async (args: { solcVersion: string }, _hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) return runSuper(args);
  const solc = require("solc");
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: SOLC_VERSION,
    longVersion: solc.version(),
  };
});

const deployerKey = process.env.DEPLOYER_PRIVATE_KEY;

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: { optimizer: { enabled: true, runs: 10_000 }, evmVersion: "cancun" },
  },
  paths: { sources: "./contracts", tests: "./contracts/test", artifacts: "./artifacts", cache: "./cache" },
  networks: {
    base: { url: process.env.BASE_RPC_URL ?? "https://mainnet.base.org", accounts: deployerKey ? [deployerKey] : [] },
    "base-sepolia": { url: process.env.BASE_SEPOLIA_RPC_URL ?? "https://sepolia.base.org", accounts: deployerKey ? [deployerKey] : [] },
    megaeth: { url: process.env.MEGAETH_RPC_URL ?? "https://mainnet.megaeth.com/rpc", accounts: deployerKey ? [deployerKey] : [] },
    "og-evm": { url: process.env.OG_EVM_RPC_URL ?? "https://ogevmdevnet.opengradient.ai/", accounts: deployerKey ? [deployerKey] : [] },
  },
};

export default config;
