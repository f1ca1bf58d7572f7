// Assembles the npm package @ai-kernel/contracts in npm/ (run by its `prepack`, so `npm pack`
// in npm/ makes the tarball): the consumer base and the interfaces a dapp imports, as
// `@ai-kernel/contracts/AIKernelConsumer.sol` and `@ai-kernel/contracts/interfaces/IAIKernel.sol`,
// the examples, and the ABI of every contract in out/ (test contracts aside) as abi/<Name>.json.
//
// Sources are copied from src/ and ABIs from the committed artifacts, so the package is always
// what `node scripts/build.mjs --check` vouches for; the copies are git-ignored.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const src = path.join(root, "src");
const pkg = path.join(root, "npm");

// What a dapp imports (sources under src/, kept at the same relative paths).
const SOURCES = ["AIKernelConsumer.sol", "interfaces", "examples"];

function copy(from, to) {
  if (fs.statSync(from).isDirectory()) {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from).sort()) copy(path.join(from, entry), path.join(to, entry));
  } else if (from.endsWith(".sol")) {
    fs.copyFileSync(from, to);
  }
}

// Imports must stay inside the package: a relative import of a file it does not ship would
// compile here and fail for every user.
function checkImports(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      checkImports(full);
      continue;
    }
    if (!entry.name.endsWith(".sol")) continue;
    for (const [, target] of fs.readFileSync(full, "utf8").matchAll(/^import\s[^"]*"([^"]+)"/gm)) {
      const resolved = path.resolve(path.dirname(full), target);
      if (!target.startsWith(".") || !fs.existsSync(resolved)) {
        throw new Error(`${path.relative(pkg, full)} imports ${target}, which the package does not ship`);
      }
    }
  }
}

for (const generated of [...SOURCES, "abi"]) {
  fs.rmSync(path.join(pkg, generated), { recursive: true, force: true });
}
for (const source of SOURCES) copy(path.join(src, source), path.join(pkg, source));
checkImports(pkg);

const abiDir = path.join(pkg, "abi");
fs.mkdirSync(abiDir);
let count = 0;
for (const file of fs.readdirSync(path.join(root, "out")).sort()) {
  if (!file.endsWith(".json")) continue;
  const artifact = JSON.parse(fs.readFileSync(path.join(root, "out", file), "utf8"));
  if (artifact.sourceName.startsWith("src/test/")) continue;
  fs.writeFileSync(path.join(abiDir, file), JSON.stringify(artifact.abi, null, 2) + "\n");
  count += 1;
}
console.error(`@ai-kernel/contracts: ${SOURCES.join(", ")} and ${count} ABIs in ${path.relative(process.cwd(), pkg) || "."}`);
