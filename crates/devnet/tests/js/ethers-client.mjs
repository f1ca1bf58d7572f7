// ethers.js v6 against a running dev chain: deploy a solc-compiled contract, send transactions
// from a local wallet and from an unlocked node account (getSigner), wait for receipts, query
// events, decode reverts, and use the provider's JSON-RPC batching. Exits non-zero on any wrong
// answer.  Usage: node ethers-client.mjs http://127.0.0.1:PORT
import assert from "node:assert/strict";
import { ContractFactory, JsonRpcProvider, Wallet, parseEther } from "ethers";
import { compileFixture } from "./compile.mjs";

const url = process.argv[2];
if (!url) {
  console.error("usage: node ethers-client.mjs <rpc url>");
  process.exit(2);
}

// Account 1 of the test mnemonic (account 0 signs through the node below).
const KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

// Batching is on by default in ethers v6; count the batches to prove the server answered them.
// cacheTimeout -1: ethers otherwise answers identical calls within 250 ms from a cache, which
// returns stale nonces when transactions are mined faster than that (as they are here).
const provider = new JsonRpcProvider(url, undefined, {
  batchMaxCount: 50,
  batchStallTime: 5,
  cacheTimeout: -1,
});
provider.pollingInterval = 100;
let batches = 0;
const send = provider._send.bind(provider);
provider._send = async (payload) => {
  if (Array.isArray(payload) && payload.length > 1) batches += 1;
  return send(payload);
};

const network = await provider.getNetwork();
assert.equal(network.chainId, 31337n);

const wallet = new Wallet(KEY_1, provider);
assert.equal(wallet.address, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const nodeSigner = await provider.getSigner(0);
assert.equal(await nodeSigner.getAddress(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

// Several reads at once: ethers sends them as one JSON-RPC batch.
const [balance, blockNumber, nonce] = await Promise.all([
  provider.getBalance(wallet.address),
  provider.getBlockNumber(),
  provider.getTransactionCount(wallet.address),
]);
assert.equal(balance, parseEther("10000"));
assert.equal(blockNumber, 0);
assert.equal(nonce, 0);
assert.ok(batches >= 1, "ethers batched the parallel reads");

// Deploy a contract compiled by the npm solc, from the local wallet.
const { abi, bytecode } = compileFixture("Counter");
const factory = new ContractFactory(abi, bytecode, wallet);
const counter = await factory.deploy(5n);
await counter.waitForDeployment();
const address = await counter.getAddress();
assert.ok((await provider.getCode(address)).length > 2);
assert.equal(await counter.count(), 5n);
assert.equal(await counter.owner(), wallet.address);

// A transaction from the wallet, its receipt and its event.
const tx = await counter.increment();
const receipt = await tx.wait();
assert.equal(receipt.status, 1);
assert.equal(receipt.blockNumber, 2);
assert.equal(receipt.logs.length, 1);
const parsed = counter.interface.parseLog(receipt.logs[0]);
assert.equal(parsed.name, "Incremented");
assert.equal(parsed.args.by, wallet.address);
assert.equal(parsed.args.newCount, 6n);
assert.equal(await counter.count(), 6n);

// The unlocked account signs on the node (eth_sendTransaction).
const fromNode = counter.connect(nodeSigner);
const nodeReceipt = await (await fromNode.add(10n)).wait();
assert.equal(nodeReceipt.status, 1);
assert.equal(nodeReceipt.from, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
assert.equal(await counter.count(), 16n);
const recipient = "0x000000000000000000000000000000000000bEEF";
await (await nodeSigner.sendTransaction({ to: recipient, value: 12345n })).wait();
assert.equal(await provider.getBalance(recipient), 12345n);

// A legacy (type 0) transaction from the wallet.
const legacy = await wallet.sendTransaction({ to: recipient, value: 5n, type: 0, gasPrice: 3_000_000_000n });
const legacyReceipt = await legacy.wait();
assert.equal(legacyReceipt.type, 0);
assert.equal(await provider.getBalance(recipient), 12350n);

// Events by query.
const events = await counter.queryFilter(counter.filters.Incremented(), 0, "latest");
assert.deepEqual(
  events.map((e) => e.args.newCount),
  [6n, 16n],
);
assert.equal(events[1].args.by, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

// Reverts: a custom error decoded by ethers from the revert data (a static call), the same
// data on a send (ethers estimates gas first and gets the revert there), and a reason string.
await assert.rejects(counter.add.staticCall(5000n), (err) => {
  assert.equal(err.code, "CALL_EXCEPTION");
  assert.equal(err.revert?.name, "CounterTooHigh");
  assert.equal(err.revert.args[0], 5016n);
  assert.equal(err.revert.args[1], 1000n);
  return true;
});
await assert.rejects(counter.add(5000n), (err) => {
  assert.equal(err.code, "CALL_EXCEPTION");
  const decoded = counter.interface.parseError(err.data);
  assert.equal(decoded?.name, "CounterTooHigh");
  assert.equal(decoded.args[0], 5016n);
  return true;
});
await assert.rejects(counter.failWithReason(), (err) => {
  assert.equal(err.code, "CALL_EXCEPTION");
  assert.equal(err.reason, "counter says no");
  return true;
});

// Nonce errors come back as ethers' NONCE_EXPIRED.
await assert.rejects(
  wallet.sendTransaction({ to: recipient, value: 1n, nonce: 0 }),
  (err) => err.code === "NONCE_EXPIRED",
);

const block = await provider.getBlock("latest", true);
assert.equal(block.number, await provider.getBlockNumber());
assert.ok(block.baseFeePerGas > 0n);
assert.equal(block.prefetchedTransactions.length, 1);

provider.destroy();
console.log("ethers client: all checks passed");
