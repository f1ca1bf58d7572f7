// Writes fixtures/Counter.json ({ abi, bytecode }) for the Rust tests' `sol!` bindings.
//   node build-fixtures.mjs          write
//   node build-fixtures.mjs --check  fail if the committed file differs from a fresh compile
import fs from "node:fs";
import path from "node:path";
import { compileFixture, FIXTURES } from "./compile.mjs";

const check = process.argv.includes("--check");
let stale = 0;
for (const name of ["Counter"]) {
  const file = path.join(FIXTURES, `${name}.json`);
  const text = `${JSON.stringify(compileFixture(name), null, 2)}\n`;
  if (check) {
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) {
      console.error(`${file} is stale: run node crates/devnet/tests/js/build-fixtures.mjs`);
      stale += 1;
    }
  } else {
    fs.writeFileSync(file, text);
  }
}
process.exit(stale === 0 ? 0 : 1);
