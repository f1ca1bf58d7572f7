// Compiles the test contracts with the pinned npm solc, for the Rust fixtures and the ethers test.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures");

/** Compiles fixtures/<name>.sol; returns { abi, bytecode } of contract <name>. */
export function compileFixture(name) {
  const source = fs.readFileSync(path.join(FIXTURES, `${name}.sol`), "utf8");
  const input = {
    language: "Solidity",
    sources: { [`${name}.sol`]: { content: source } },
    settings: {
      evmVersion: "prague",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  }
  const compiled = output.contracts[`${name}.sol`][name];
  return { abi: compiled.abi, bytecode: `0x${compiled.evm.bytecode.object}` };
}
