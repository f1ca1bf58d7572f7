// viem v2 against a running dev chain: deploy a solc-compiled contract from a local account,
// simulate and write, read events, decode a custom-error revert, send from an unlocked node
// account (JSON-RPC account), and batch reads over HTTP. Exits non-zero on any wrong answer.
// Usage: node viem-client.mjs http://127.0.0.1:PORT
import assert from "node:assert/strict";
import {
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  parseEther,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { compileFixture } from "./compile.mjs";

const url = process.argv[2];
if (!url) {
  console.error("usage: node viem-client.mjs <rpc url>");
  process.exit(2);
}

const chain = defineChain({
  id: 31337,
  name: "aik devnet",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const transport = http(url, { batch: true });
const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 });
// Account 2 of the test mnemonic.
const account = privateKeyToAccount(
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
);
assert.equal(account.address, "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
const wallet = createWalletClient({ account, chain, transport });

assert.equal(await publicClient.getChainId(), 31337);
const [balance, blockNumber] = await Promise.all([
  publicClient.getBalance({ address: account.address }),
  publicClient.getBlockNumber(),
]);
assert.equal(balance, parseEther("10000"));
assert.equal(blockNumber, 0n);

const { abi, bytecode } = compileFixture("Counter");
const deployHash = await wallet.deployContract({ abi, bytecode, args: [7n] });
const deployReceipt = await publicClient.waitForTransactionReceipt({ hash: deployHash });
assert.equal(deployReceipt.status, "success");
const address = deployReceipt.contractAddress;
assert.equal(await publicClient.readContract({ address, abi, functionName: "count" }), 7n);

const { request } = await publicClient.simulateContract({
  account,
  address,
  abi,
  functionName: "increment",
});
const hash = await wallet.writeContract(request);
const receipt = await publicClient.waitForTransactionReceipt({ hash });
assert.equal(receipt.status, "success");
assert.equal(receipt.blockNumber, 2n);
assert.equal(await publicClient.readContract({ address, abi, functionName: "count" }), 8n);

const events = await publicClient.getContractEvents({
  address,
  abi,
  eventName: "Incremented",
  fromBlock: 0n,
});
assert.equal(events.length, 1);
assert.equal(events[0].args.by, account.address);
assert.equal(events[0].args.newCount, 8n);

await assert.rejects(
  publicClient.simulateContract({ account, address, abi, functionName: "add", args: [5000n] }),
  (err) => {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
    assert.ok(revert, `expected a contract revert, got ${err}`);
    assert.equal(revert.data?.errorName, "CounterTooHigh");
    assert.deepEqual(revert.data.args, [5008n, 1000n]);
    return true;
  },
);

// A JSON-RPC account: the node signs (eth_sendTransaction).
const nodeWallet = createWalletClient({
  account: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  chain,
  transport,
});
const recipient = "0x000000000000000000000000000000000000cafE";
const sendHash = await nodeWallet.sendTransaction({ to: recipient, value: 4242n });
const sendReceipt = await publicClient.waitForTransactionReceipt({ hash: sendHash });
assert.equal(sendReceipt.from, "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
assert.equal(await publicClient.getBalance({ address: recipient }), 4242n);

const block = await publicClient.getBlock({ blockTag: "latest", includeTransactions: true });
assert.equal(block.transactions[0].hash, sendHash);
assert.ok(block.baseFeePerGas > 0n);

console.log("viem client: all checks passed");
