// Hardhat is used only as a second, independent chain for the kernel SDK tests
// (crates/kernel/tests/it/hardhat.rs): no compilation here, the artifacts come from ../out.
module.exports = {
  paths: { sources: "./no-sources" },
  networks: {
    hardhat: { chainId: 31337, hardfork: "prague", allowUnlimitedContractSize: false },
  },
};
