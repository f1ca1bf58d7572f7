// The real `arweave` JS client as the oracle for aik-store's Arweave uploads. Used by the
// integration tests:
//
//   node arweave.mjs wallet <port> <out.json>   new wallet, credited by arlocal's faucet (not for port 0); prints its address
//   node arweave.mjs tree <file>                data root and chunk proofs, as JSON
//   node arweave.mjs check <port> <txid> <file> the posted transaction as the client reads it back:
//                                               {"verified", "data_root", "owner_address"}
import { readFileSync, writeFileSync } from 'node:fs';
import Arweave from 'arweave';
import { generateTransactionChunks } from 'arweave/node/lib/merkle.js';

const [command, ...args] = process.argv.slice(2);
const client = (port) => Arweave.init({ host: '127.0.0.1', port: Number(port), protocol: 'http' });
const b64 = (bytes) => Arweave.utils.bufferTob64Url(bytes);

if (command === 'wallet') {
  const [port, out] = args;
  const arweave = client(port);
  const wallet = await arweave.wallets.generate();
  const address = await arweave.wallets.jwkToAddress(wallet);
  // Port 0: a wallet nobody credited.
  if (Number(port) > 0) await arweave.api.get(`mint/${address}/1000000000000000`);
  writeFileSync(out, JSON.stringify(wallet));
  console.log(address);
} else if (command === 'tree') {
  const data = readFileSync(args[0]);
  if (data.length === 0) {
    console.log(JSON.stringify({ data_root: '', proofs: [] }));
  } else {
    const tree = await generateTransactionChunks(data);
    console.log(JSON.stringify({
      data_root: b64(tree.data_root),
      proofs: tree.proofs.map((p) => ({ offset: p.offset, proof: b64(p.proof) })),
    }));
  }
} else if (command === 'check') {
  const [port, txid, file] = args;
  const arweave = client(port);
  const response = await arweave.api.get(`tx/${txid}`);
  if (response.status !== 200) {
    console.error(`GET tx/${txid}: ${response.status}`);
    process.exit(1);
  }
  const tx = arweave.transactions.fromRaw(response.data);
  const verified = await arweave.transactions.verify(tx);
  const tree = await generateTransactionChunks(readFileSync(file));
  console.log(JSON.stringify({
    verified,
    data_root: tx.data_root,
    expected_data_root: readFileSync(file).length === 0 ? '' : b64(tree.data_root),
    owner_address: await arweave.wallets.ownerToAddress(tx.owner),
  }));
} else {
  console.error('usage: node arweave.mjs wallet|tree|check …');
  process.exit(2);
}
