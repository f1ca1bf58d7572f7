// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IModelFileSystem, ModelTerms, SchedulingPolicy} from "../interfaces/IKernelComponents.sol";

/// @notice How a model is prompted: through its chat template (an instruction-tuned model) or as plain text (a
/// base model), laid out by the protocol's rule so every worker and verifier runs the same tokens.
enum PromptLayout {
    Chat,
    PlainText
}

/// @notice A model as registered: what to fetch, how to check it, and the terms of serving it.
/// @param name Human-readable name (e.g. "SmolLM2-135M-Instruct Q4_1").
/// @param driver Versioned driver id that runs it (e.g. "llama-gguf/1").
/// @param fileSha256 sha256 of the whole model file.
/// @param fileSize Size of the model file in bytes.
/// @param chunkSize Bytes per chunk for the Merkle tree of chunk hashes.
/// @param layout How prompts are rendered for it: chat template, or plain text for a base model.
/// @param merkleRoot Root of the Merkle tree of the chunks' sha256 hashes.
/// @param uris Where the file can be fetched (ipfs://, ar://, https://, pypi://package/version/path).
/// @param terms Price, committee size, policy, minimum memory, retired flag.
struct Model {
    string name;
    string driver;
    bytes32 fileSha256;
    uint64 fileSize;
    uint32 chunkSize;
    PromptLayout layout;
    bytes32 merkleRoot;
    string[] uris;
    ModelTerms terms;
}

/// @title ModelFileSystem
/// @notice The registry of models the kernel serves: file identity (sha256, size, chunk Merkle root), where
/// to fetch it, the driver that runs it and the terms of serving it. Owner-governed.
contract ModelFileSystem is IModelFileSystem, Ownable {
    /// @notice Largest committee a model may ask for (the kernel packs per-member bits in 16-bit masks).
    uint8 public constant MAX_COMMITTEE_SIZE = 16;
    /// @notice Most storage URIs per model.
    uint256 public constant MAX_URIS = 8;

    uint256 private _modelCount;
    mapping(uint256 modelId => Model) private _models;

    /// @notice A model was registered.
    event ModelRegistered(
        uint256 indexed modelId, string name, string driver, bytes32 fileSha256, uint64 fileSize, PromptLayout layout
    );
    /// @notice A model's price, committee size, policy or minimum memory changed.
    event ModelTermsUpdated(
        uint256 indexed modelId,
        uint128 pricePerToken,
        uint8 committeeSize,
        SchedulingPolicy policy,
        uint64 minMemoryMb
    );
    /// @notice A model's storage URIs changed.
    event ModelUrisUpdated(uint256 indexed modelId, string[] uris);
    /// @notice A model was retired.
    event ModelRetired(uint256 indexed modelId);

    /// @notice No model has this id.
    error ModelFileSystemUnknownModel(uint256 modelId);
    /// @notice The model is already retired.
    error ModelFileSystemModelRetired(uint256 modelId);
    /// @notice A required text field (name or driver) is empty.
    error ModelFileSystemEmptyField(string field);
    /// @notice The file description is inconsistent (zero hash, size, chunk size or Merkle root).
    error ModelFileSystemInvalidFile(bytes32 fileSha256, uint64 fileSize, uint32 chunkSize, bytes32 merkleRoot);
    /// @notice The committee size is zero or above {MAX_COMMITTEE_SIZE}.
    error ModelFileSystemInvalidCommitteeSize(uint8 committeeSize);
    /// @notice There must be 1..={MAX_URIS} URIs, none empty.
    error ModelFileSystemInvalidUris(uint256 count);

    /// @param initialOwner Governs the registry.
    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Registers a model; ids are sequential from 1.
    /// @dev `model.terms.retired` is ignored: a model starts serving. A `layout` outside the enum reverts in ABI
    /// decoding, before any check.
    function registerModel(Model calldata model) external onlyOwner returns (uint256 modelId) {
        if (bytes(model.name).length == 0) revert ModelFileSystemEmptyField("name");
        if (bytes(model.driver).length == 0) revert ModelFileSystemEmptyField("driver");
        if (
            model.fileSha256 == bytes32(0) || model.fileSize == 0 || model.chunkSize == 0
                || model.merkleRoot == bytes32(0)
        ) {
            revert ModelFileSystemInvalidFile(model.fileSha256, model.fileSize, model.chunkSize, model.merkleRoot);
        }
        _checkUris(model.uris);
        _checkCommitteeSize(model.terms.committeeSize);
        modelId = ++_modelCount;
        Model storage stored = _models[modelId];
        stored.name = model.name;
        stored.driver = model.driver;
        stored.fileSha256 = model.fileSha256;
        stored.fileSize = model.fileSize;
        stored.chunkSize = model.chunkSize;
        stored.layout = model.layout;
        stored.merkleRoot = model.merkleRoot;
        stored.uris = model.uris;
        stored.terms = ModelTerms({
            pricePerToken: model.terms.pricePerToken,
            committeeSize: model.terms.committeeSize,
            policy: model.terms.policy,
            minMemoryMb: model.terms.minMemoryMb,
            retired: false
        });
        emit ModelRegistered(modelId, model.name, model.driver, model.fileSha256, model.fileSize, model.layout);
        emit ModelTermsUpdated(
            modelId, model.terms.pricePerToken, model.terms.committeeSize, model.terms.policy, model.terms.minMemoryMb
        );
        emit ModelUrisUpdated(modelId, model.uris);
    }

    /// @notice Changes a live model's terms. Prompts already submitted keep the terms they were submitted under;
    /// a higher minimum memory applies to workers registering from now on.
    function setModelTerms(
        uint256 modelId,
        uint128 pricePerToken,
        uint8 committeeSize,
        SchedulingPolicy policy,
        uint64 minMemoryMb
    ) external onlyOwner {
        ModelTerms storage terms = _liveTerms(modelId);
        _checkCommitteeSize(committeeSize);
        terms.pricePerToken = pricePerToken;
        terms.committeeSize = committeeSize;
        terms.policy = policy;
        terms.minMemoryMb = minMemoryMb;
        emit ModelTermsUpdated(modelId, pricePerToken, committeeSize, policy, minMemoryMb);
    }

    /// @notice Replaces a live model's storage URIs.
    function setModelUris(uint256 modelId, string[] calldata uris) external onlyOwner {
        _liveTerms(modelId);
        _checkUris(uris);
        _models[modelId].uris = uris;
        emit ModelUrisUpdated(modelId, uris);
    }

    /// @notice Retires a model: it takes no new prompts and no new workers. Prompts in flight finish.
    function retireModel(uint256 modelId) external onlyOwner {
        _liveTerms(modelId).retired = true;
        emit ModelRetired(modelId);
    }

    /// @inheritdoc IModelFileSystem
    function modelTerms(uint256 modelId) external view returns (ModelTerms memory) {
        if (modelId == 0 || modelId > _modelCount) revert ModelFileSystemUnknownModel(modelId);
        return _models[modelId].terms;
    }

    /// @notice The full record of a model.
    function getModel(uint256 modelId) external view returns (Model memory) {
        if (modelId == 0 || modelId > _modelCount) revert ModelFileSystemUnknownModel(modelId);
        return _models[modelId];
    }

    /// @notice Number of models ever registered (the highest id).
    function modelCount() external view returns (uint256) {
        return _modelCount;
    }

    function _liveTerms(uint256 modelId) private view returns (ModelTerms storage terms) {
        if (modelId == 0 || modelId > _modelCount) revert ModelFileSystemUnknownModel(modelId);
        terms = _models[modelId].terms;
        if (terms.retired) revert ModelFileSystemModelRetired(modelId);
    }

    function _checkCommitteeSize(uint8 committeeSize) private pure {
        if (committeeSize == 0 || committeeSize > MAX_COMMITTEE_SIZE) {
            revert ModelFileSystemInvalidCommitteeSize(committeeSize);
        }
    }

    function _checkUris(string[] calldata uris) private pure {
        if (uris.length == 0 || uris.length > MAX_URIS) revert ModelFileSystemInvalidUris(uris.length);
        for (uint256 i = 0; i < uris.length; ++i) {
            if (bytes(uris[i]).length == 0) revert ModelFileSystemInvalidUris(uris.length);
        }
    }
}
