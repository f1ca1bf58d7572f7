// Posts one file as an Arweave transaction to a local arlocal gateway and mines it, using the
// real `arweave` client; prints the transaction id. Used by aik-store's integration tests.
//
//   node arweave-post.mjs <port> <file>
import { readFileSync } from 'node:fs';
import Arweave from 'arweave';

const [port, file] = process.argv.slice(2);
if (!port || !file) {
  console.error('usage: node arweave-post.mjs <port> <file>');
  process.exit(2);
}
const arweave = Arweave.init({ host: '127.0.0.1', port: Number(port), protocol: 'http' });
const wallet = await arweave.wallets.generate();
const address = await arweave.wallets.jwkToAddress(wallet);
// arlocal's faucet: credit the new wallet so it can pay for the upload.
await arweave.api.get(`mint/${address}/1000000000000000`);
const tx = await arweave.createTransaction({ data: readFileSync(file) }, wallet);
await arweave.transactions.sign(tx, wallet);
const uploader = await arweave.transactions.getUploader(tx);
while (!uploader.isComplete) {
  await uploader.uploadChunk();
}
await arweave.api.get('mine');
console.log(tx.id);
