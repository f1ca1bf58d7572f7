// Compiles every contract under src/ with the pinned npm solc and writes one JSON artifact per
// contract to out/<Name>.json ({ contractName, sourceName, abi, bytecode, deployedBytecode }).
//
//   node scripts/build.mjs          write out/
//   node scripts/build.mjs --check  compile in memory and fail if out/ differs (stale, missing or
//                                   extra artifacts), without touching out/
//
// Artifacts are committed so that Rust bindings (alloy `sol!`) need no compiler at build time;
// the check keeps them honest.
//
// A contract whose fallback DELEGATECALLs an extension (DecentralizedInference and
// KernelExtension, see EXTENSIONS) is one contract to its callers: its artifact's abi lists its
// own entries and then the extension's that it does not define itself, and the build fails
// unless both halves have the same storage layout.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = path.join(root, "src");
const outDir = path.join(root, "out");
const nodeModules = path.join(root, "node_modules");

// The EVM version is pinned rather than left to the compiler's default so that the artifacts
// run unchanged on the embedded dev chain (Prague by default) and on `hardhat node`.
export const EVM_VERSION = "prague";
const OPTIMIZER_RUNS = 200;
// Contract -> the extension its fallback delegates to.
const EXTENSIONS = { DecentralizedInference: "KernelExtension" };

function listSources(dir) {
  if (!fs.existsSync(dir)) return [];
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...listSources(full));
    else if (entry.name.endsWith(".sol")) found.push(full);
  }
  return found.sort();
}

function findImport(importPath) {
  const candidates = [path.join(nodeModules, importPath), path.join(root, importPath)];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `import not found: ${importPath} (run npm ci in contracts/)` };
}

function compile() {
  const sources = {};
  for (const file of listSources(srcDir)) {
    const name = path.relative(root, file).split(path.sep).join("/");
    sources[name] = { content: fs.readFileSync(file, "utf8") };
  }
  if (Object.keys(sources).length === 0) return new Map();
  const input = {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      viaIR: true,
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "storageLayout"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  for (const diagnostic of output.errors ?? []) console.error(diagnostic.formattedMessage);
  if (errors.length > 0) {
    throw new Error(`solc ${solc.version()} reported ${errors.length} error(s)`);
  }

  const artifacts = new Map();
  for (const [sourceName, contracts] of Object.entries(output.contracts ?? {})) {
    if (!sourceName.startsWith("src/")) continue;
    for (const [contractName, compiled] of Object.entries(contracts)) {
      if (artifacts.has(contractName)) {
        throw new Error(
          `two contracts are named ${contractName} (${artifacts.get(contractName).sourceName} and ${sourceName}); artifact names must be unique`,
        );
      }
      artifacts.set(contractName, {
        contractName,
        sourceName,
        abi: compiled.abi,
        bytecode: "0x" + compiled.evm.bytecode.object,
        deployedBytecode: "0x" + compiled.evm.deployedBytecode.object,
        storageLayout: compiled.storageLayout,
      });
    }
  }
  for (const [name, extensionName] of Object.entries(EXTENSIONS)) {
    mergeExtension(artifacts.get(name), artifacts.get(extensionName));
  }
  for (const artifact of artifacts.values()) delete artifact.storageLayout;
  const rendered = new Map();
  for (const name of [...artifacts.keys()].sort()) {
    rendered.set(`${name}.json`, JSON.stringify(artifacts.get(name), null, 2) + "\n");
  }
  return rendered;
}

// The signature of an ABI entry, to tell which extension entries the contract already has.
function entryKey(entry) {
  const types = (entry.inputs ?? []).map((input) => input.type).join(",");
  return `${entry.type} ${entry.name ?? ""}(${types})`;
}

// The storage slots a contract declares, without the AST ids that differ between contracts.
function layoutOf(artifact) {
  return artifact.storageLayout.storage.map(({ label, slot, offset, type }) => ({
    label,
    slot,
    offset,
    type: type.replace(/\)\d+(_storage)?/g, ")$1"),
  }));
}

function mergeExtension(main, extension) {
  if (!main || !extension) throw new Error("EXTENSIONS names a contract that does not exist");
  const mainLayout = JSON.stringify(layoutOf(main));
  if (mainLayout !== JSON.stringify(layoutOf(extension))) {
    throw new Error(
      `${main.contractName} and its extension ${extension.contractName} must have the same storage layout ` +
        "(declare state only in their common base)",
    );
  }
  const own = new Set(main.abi.map(entryKey));
  const added = extension.abi.filter(
    (entry) => entry.type !== "constructor" && !own.has(entryKey(entry)),
  );
  main.abi = [...main.abi, ...added];
}

function committedArtifacts() {
  if (!fs.existsSync(outDir)) return new Map();
  const files = new Map();
  for (const name of fs.readdirSync(outDir).filter((n) => n.endsWith(".json")).sort()) {
    files.set(name, fs.readFileSync(path.join(outDir, name), "utf8"));
  }
  return files;
}

function main() {
  const check = process.argv.includes("--check");
  const fresh = compile();
  if (check) {
    const committed = committedArtifacts();
    const problems = [];
    for (const [name, text] of fresh) {
      if (!committed.has(name)) problems.push(`missing: out/${name}`);
      else if (committed.get(name) !== text) problems.push(`stale:   out/${name}`);
    }
    for (const name of committed.keys()) {
      if (!fresh.has(name)) problems.push(`extra:   out/${name} (no contract of that name in src/)`);
    }
    if (problems.length > 0) {
      console.error(`contracts/out does not match a fresh build with solc ${solc.version()}:`);
      for (const p of problems) console.error(`  ${p}`);
      console.error("run `npm run build` in contracts/ and commit the result");
      process.exit(1);
    }
    console.log(`contracts/out is up to date (${fresh.size} artifacts, solc ${solc.version()})`);
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of committedArtifacts().keys()) {
    if (!fresh.has(name)) fs.rmSync(path.join(outDir, name));
  }
  for (const [name, text] of fresh) fs.writeFileSync(path.join(outDir, name), text);
  console.log(`wrote ${fresh.size} artifacts to contracts/out (solc ${solc.version()})`);
}

main();
