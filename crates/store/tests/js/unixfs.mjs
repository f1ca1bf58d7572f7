// Reference UnixFS ids and CAR checks from js-ipfs's own importer and exporter, for
// aik-store's tests (crates/store/tests/it/unixfs.rs). Offline, no daemon.
//
//   node unixfs.mjs cid FILE...          one line per file: the CID `ipfs add --cid-version 1`
//                                        prints (js-ipfs's defaults for CIDv1, Kubo's too)
//   node unixfs.mjs car-check CAR FILE   checks that CAR has one root, that every block hashes to
//                                        its CID, and that the root exports to FILE's bytes;
//                                        prints the root and the block count
import fs from "node:fs";
import { importer } from "ipfs-unixfs-importer";
import { exporter } from "ipfs-unixfs-exporter";
import { MemoryBlockstore } from "blockstore-core/memory";
import { CarReader } from "@ipld/car";
import { sha256 } from "multiformats/hashes/sha2";

// What js-ipfs's `add` passes for `--cid-version 1`: raw leaves, 256 KiB fixed chunks,
// balanced layout of at most 174 links, a one-chunk file reduced to its leaf.
const ADD_OPTIONS = {
  cidVersion: 1,
  rawLeaves: true,
  chunker: "fixed",
  maxChunkSize: 262144,
  strategy: "balanced",
  maxChildrenPerNode: 174,
  reduceSingleLeafToSelf: true,
};

async function cidOf(path) {
  const blockstore = new MemoryBlockstore();
  let root;
  for await (const entry of importer([{ content: fs.createReadStream(path) }], blockstore, ADD_OPTIONS)) {
    root = entry.cid;
  }
  return root.toString();
}

async function carCheck(carPath, filePath) {
  const reader = await CarReader.fromBytes(fs.readFileSync(carPath));
  const roots = await reader.getRoots();
  if (roots.length !== 1) throw new Error(`expected one root, got ${roots.length}`);
  const blockstore = new MemoryBlockstore();
  let count = 0;
  for await (const { cid, bytes } of reader.blocks()) {
    const digest = await sha256.digest(bytes);
    if (Buffer.compare(Buffer.from(digest.bytes), Buffer.from(cid.multihash.bytes)) !== 0) {
      throw new Error(`block ${cid} does not hash to its CID`);
    }
    await blockstore.put(cid, bytes);
    count += 1;
  }
  const entry = await exporter(roots[0], blockstore);
  const parts = [];
  for await (const chunk of entry.content()) parts.push(Buffer.from(chunk));
  if (Buffer.compare(Buffer.concat(parts), fs.readFileSync(filePath)) !== 0) {
    throw new Error("the CAR's root does not export to the file's bytes");
  }
  console.log(`${roots[0]} ${count}`);
}

const [command, ...args] = process.argv.slice(2);
if (command === "cid") {
  for (const path of args) console.log(await cidOf(path));
} else if (command === "car-check") {
  await carCheck(args[0], args[1]);
} else {
  console.error("usage: node unixfs.mjs cid FILE... | car-check CAR FILE");
  process.exit(2);
}
