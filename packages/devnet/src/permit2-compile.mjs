// Compiles Permit2 (dev-only test fixture) from the npm dev dependency @uniswap/v4-periphery
// (lib/permit2, solmate AGPL-3.0) with the npm solc at its pragma's version (alias `solc-0.8.17`),
// and caches the artifact at the path given as argv[2] (git-ignored cache/permit2/: Hardhat deletes what it did not build from artifacts/).
// Run as a child process by permit2.ts so a cold compile (solcjs, via-IR: ~20 s) never blocks the
// caller's event loop. A cache whose sources, compiler and settings hash matches is reused.
// Prints nothing; exit code 0 when the artifact at argv[2] is current.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, sep } from "node:path";

const SOLC_VERSION = "0.8.17";
// Permit2's own foundry.toml: via_ir, 1,000,000 optimizer runs, no metadata hash; 0.8.17's default EVM.
const SETTINGS = {
  optimizer: { enabled: true, runs: 1_000_000 },
  viaIR: true,
  metadata: { bytecodeHash: "none" },
  evmVersion: "london",
  remappings: ["solmate/=lib/solmate/"],
  outputSelection: {
    "src/Permit2.sol": {
      Permit2: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"],
    },
    "*": { "": ["ast"] },
  },
};

const out = process.argv[2];
if (!out) throw new Error("usage: permit2-compile.mjs <artifact.json>");
const require = createRequire(import.meta.url);
const root = join(dirname(require.resolve("@uniswap/v4-periphery/package.json")), "lib", "permit2");

function solFiles(dir) {
  const files = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) files.push(...solFiles(full));
    else if (name.endsWith(".sol")) files.push(relative(root, full).split(sep).join("/"));
  }
  return files.sort();
}

const sources = {};
for (const file of solFiles(join(root, "src"))) sources[file] = { content: readFileSync(join(root, file), "utf8") };
const sourceHash = createHash("sha256").update(JSON.stringify({ v: SOLC_VERSION, settings: SETTINGS, sources })).digest("hex");

if (existsSync(out)) {
  try {
    const cached = JSON.parse(readFileSync(out, "utf8"));
    if (cached.sourceHash === sourceHash && cached.solcVersion === SOLC_VERSION) process.exit(0);
  } catch {
    // unreadable cache: compile again
  }
}

const solc = require("solc-0.8.17");
if (!solc.version().startsWith(SOLC_VERSION + "+")) throw new Error(`solc-0.8.17 is ${solc.version()}, Permit2 needs ${SOLC_VERSION}`);
// Imports outside src/ are solmate's, remapped to lib/solmate/.
const findImports = (path) => {
  try {
    return { contents: readFileSync(join(root, path), "utf8") };
  } catch {
    return { error: `not found: ${path}` };
  }
};
const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS }), { import: findImports }));
const errors = (output.errors ?? []).filter((e) => e.severity === "error");
if (errors.length) throw new Error("Permit2 compilation failed:\n" + errors.map((e) => e.formattedMessage).join("\n"));
const c = output.contracts?.["src/Permit2.sol"]?.Permit2;
if (!c) throw new Error("Permit2 compilation produced no Permit2 contract");

// immutableReferences are keyed by AST id: name them from the ASTs.
const names = new Map();
const walk = (node) => {
  if (!node || typeof node !== "object") return;
  if (Array.isArray(node)) return node.forEach(walk);
  if (node.nodeType === "VariableDeclaration" && node.mutability === "immutable") names.set(String(node.id), String(node.name));
  for (const v of Object.values(node)) if (v && typeof v === "object") walk(v);
};
for (const s of Object.values(output.sources ?? {})) walk(s.ast);
const immutables = {};
for (const [id, refs] of Object.entries(c.evm.deployedBytecode.immutableReferences)) {
  const name = names.get(id);
  if (!name) throw new Error(`Permit2: immutable with AST id ${id} has no name`);
  immutables[name] = refs;
}

const artifact = {
  solcVersion: SOLC_VERSION,
  solcLongVersion: solc.version(),
  sourceHash,
  abi: c.abi,
  bytecode: `0x${c.evm.bytecode.object}`,
  deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
  immutables,
};
// Atomic: processes compiling at the same time each write a whole file.
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
writeFileSync(tmp, JSON.stringify(artifact) + "\n");
renameSync(tmp, out);
