//! UnixFS ids and CAR exports against js-ipfs's own importer and exporter (offline, through
//! `tests/js/unixfs.mjs`): the sizes where the DAG changes shape, and a ~60 MB file.

use std::{path::Path, process::Command};

use aik_store::{Codec, UnixFsFile, unixfs::CHUNK_SIZE, write_car};

use crate::common::{js_dir, js_servers_available};

/// Deterministic bytes (xorshift), different in every chunk, so no two leaves coincide.
fn file_of(dir: &Path, len: usize) -> std::path::PathBuf {
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ len as u64;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    let path = dir.join(format!("{len}.bin"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn node(args: &[&Path]) -> String {
    let output = Command::new("node")
        .arg(js_dir().join("unixfs.mjs"))
        .args(args)
        .output()
        .expect("node runs");
    assert!(output.status.success(), "unixfs.mjs: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn our_ids_equal_js_ipfs_at_every_shape() {
    if !js_servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sizes = [
        0,
        1,
        CHUNK_SIZE,          // one chunk: a raw leaf
        CHUNK_SIZE + 1,      // two leaves under one node
        174 * CHUNK_SIZE,    // one full node
        175 * CHUNK_SIZE,    // two levels: a full node and a node of one leaf under the root
        60_000_000 + 12_345, // ~60 MB: 229 leaves
    ];
    let files: Vec<_> = sizes.iter().map(|&len| file_of(dir.path(), len)).collect();
    let ours: Vec<UnixFsFile> = files.iter().map(|f| UnixFsFile::of_file(f).unwrap()).collect();
    let mut args: Vec<&Path> = vec![Path::new("cid")];
    args.extend(files.iter().map(|f| f.as_path()));
    let theirs: Vec<String> = node(&args).lines().map(str::to_owned).collect();
    for ((dag, expected), len) in ours.iter().zip(&theirs).zip(sizes) {
        assert_eq!(dag.root.to_string(), *expected, "{len} bytes");
        assert_eq!(dag.size, len as u64);
        let codec = if len <= CHUNK_SIZE { Codec::Raw } else { Codec::DagPb };
        assert_eq!(dag.root.codec(), codec, "{len} bytes");
        assert_eq!(*expected, dag.root.to_string().parse::<aik_store::Cid>().unwrap().to_string());
    }
    assert_eq!(theirs.len(), sizes.len());
}

#[test]
fn our_car_exports_import_into_js_ipfs_with_the_same_root() {
    if !js_servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for len in [CHUNK_SIZE / 2, 175 * CHUNK_SIZE + 99] {
        let file = file_of(dir.path(), len);
        let dag = UnixFsFile::of_file(&file).unwrap();
        let car = dir.path().join(format!("{len}.car"));
        let mut out = std::fs::File::create(&car).unwrap();
        let written = write_car(&dag, &file, &mut out).unwrap();
        assert_eq!(written, std::fs::metadata(&car).unwrap().len());
        let report = node(&[Path::new("car-check"), &car, &file]);
        assert_eq!(report.trim(), format!("{} {}", dag.root, dag.blocks().len()), "{len} bytes");
    }
}

#[tokio::test]
async fn the_store_finds_a_file_by_its_unixfs_id_and_keeps_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = aik_store::LocalStore::open(dir.path().join("store")).await.unwrap();
    let file = file_of(dir.path(), 3 * CHUNK_SIZE + 1);
    let dag = store.add_unixfs(&file).await.unwrap();
    assert_eq!(dag.root.codec(), Codec::DagPb);
    assert_eq!(store.resolve(&dag.root).await.unwrap(), Some(dag.sha256));
    assert_eq!(store.resolve(&aik_store::Cid::raw(dag.sha256)).await.unwrap(), Some(dag.sha256));
    let (found, path) = store.unixfs(&dag.root).await.unwrap().unwrap();
    assert_eq!(found, dag);
    assert_eq!(std::fs::read(path).unwrap(), std::fs::read(&file).unwrap());
    // The file is kept once, under its sha256; the index holds only the mapping.
    let stored: Vec<_> = std::fs::read_dir(store.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&dag.sha256.to_string()) && stored.contains(&"unixfs".to_string()));
    // Content stored by sha256 alone (as stores did before the index existed: the file under
    // its sha256 id and no index entry) is found once indexed.
    let old = file_of(dir.path(), 2 * CHUNK_SIZE + 11);
    let old_dag = UnixFsFile::of_file(&old).unwrap();
    std::fs::copy(&old, store.root().join(old_dag.sha256.to_string())).unwrap();
    assert_eq!(store.resolve(&old_dag.root).await.unwrap(), None);
    assert_eq!(store.index_all_unixfs().await.unwrap(), 2, "both multi-block files");
    assert_eq!(store.resolve(&old_dag.root).await.unwrap(), Some(old_dag.sha256));
    // An id nobody indexed is not there; a tampered index entry is refused, not served.
    let other = UnixFsFile::of(&vec![1u8; 2 * CHUNK_SIZE]).root;
    assert_eq!(store.resolve(&other).await.unwrap(), None);
    std::fs::write(store.root().join("unixfs").join(other.to_string()), dag.sha256.to_string())
        .unwrap();
    let err = store.unixfs(&other).await.unwrap_err().to_string();
    assert!(err.contains(&format!("whose UnixFS root is {}", dag.root)), "{err}");
}

/// A trustless gateway answers `GET /ipfs/<root>?format=car` with a CAR: a good one is read and
/// kept; a wrong, missing, extra or huge block is refused with the reason, and nothing is kept.
#[tokio::test]
async fn a_trustless_gateway_is_checked_block_by_block() {
    use aik_store::{Error, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};

    use crate::common::{RawHttpServer, Route, temp_files};

    let dir = tempfile::tempdir().unwrap();
    let file = file_of(dir.path(), 3 * CHUNK_SIZE + 5);
    let bytes = std::fs::read(&file).unwrap();
    let dag = UnixFsFile::of_file(&file).unwrap();
    let mut car = Vec::new();
    write_car(&dag, &file, &mut car).unwrap();
    let path = format!("/ipfs/{}?format=car", dag.root);
    let path: &'static str = Box::leak(path.into_boxed_str());
    let uri: Uri = format!("ipfs://{}", dag.root).parse().unwrap();

    let fetch = |name: &str, body: Vec<u8>| {
        let uri = uri.clone();
        let store_dir = dir.path().join(format!("store-{name}"));
        async move {
            let server = RawHttpServer::start(vec![(path, Route::Car(body))]).await;
            let config = FetchConfig {
                ipfs_gateways: vec![server.base.parse().unwrap()],
                ..FetchConfig::default()
            };
            let store = LocalStore::open(&store_dir).await.unwrap();
            let result = Fetcher::new(&config)
                .unwrap()
                .fetch_into(&store, &uri, &Expected::id(dag.sha256), &NoProgress)
                .await;
            (result, store)
        }
    };
    let (result, store) = fetch("good", car.clone()).await;
    assert_eq!(result.unwrap(), dag.sha256);
    assert_eq!(store.get(&dag.sha256).await.unwrap(), bytes);

    let mut wrong = car.clone();
    let at = car.len() - 1;
    wrong[at] ^= 0xff;
    // The last section is the 5-byte leaf: one length byte, its CID, its bytes.
    let last = 1 + 36 + 5;
    let truncated = car[..car.len() - last].to_vec();
    // A block the file does not hold after the whole file (its own last leaf again would be a
    // harmless duplicate, which `dups=y` allows).
    let mut extra = car.clone();
    let stray = UnixFsFile::of(b"stray");
    extra.push((36 + 5) as u8);
    extra.extend_from_slice(&stray.root.to_bytes());
    extra.extend_from_slice(b"stray");
    let mut huge = car[..60].to_vec();
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    for (body, reason) in [
        (wrong, "does not hash to its id"),
        (truncated, "never came"),
        (extra, "extra block"),
        (huge, "larger than"),
    ] {
        let (result, store) = fetch(reason, body).await;
        let error = result.unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::Car { .. }), "{message}");
        assert!(message.contains(reason) && message.contains("format=car"), "{message}");
        assert!(!store.has(&dag.sha256), "nothing kept after: {message}");
        assert!(temp_files(store.root()).is_empty(), "no partial file after: {message}");
    }

    // By its UnixFS id alone (no sha256 known): the verified DAG is the check, and the store
    // then knows the file by both ids.
    let server = RawHttpServer::start(vec![(path, Route::Car(car.clone()))]).await;
    let config =
        FetchConfig { ipfs_gateways: vec![server.base.parse().unwrap()], ..FetchConfig::default() };
    let fetcher = Fetcher::new(&config).unwrap();
    let store = LocalStore::open(dir.path().join("by-root")).await.unwrap();
    assert_eq!(fetcher.fetch_unixfs(&store, dag.root, &NoProgress).await.unwrap(), dag.sha256);
    assert_eq!(store.get(&dag.sha256).await.unwrap(), bytes);
    assert_eq!(store.resolve(&dag.root).await.unwrap(), Some(dag.sha256));
    // A gateway that answers with plain bytes cannot be checked without the sha256: refused.
    let plain = RawHttpServer::start(vec![(path, Route::Ok(bytes.clone()))]).await;
    let config =
        FetchConfig { ipfs_gateways: vec![plain.base.parse().unwrap()], ..FetchConfig::default() };
    let store = LocalStore::open(dir.path().join("plain")).await.unwrap();
    let error = Fetcher::new(&config)
        .unwrap()
        .fetch_unixfs(&store, dag.root, &NoProgress)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("plain bytes, not a CAR"), "{error}");
    assert!(!store.has(&dag.sha256) && temp_files(store.root()).is_empty());
    // With the sha256 known, the same plain bytes are accepted (checked against it).
    let id = Fetcher::new(&config)
        .unwrap()
        .fetch_into(&store, &uri, &Expected::id(dag.sha256), &NoProgress)
        .await
        .unwrap();
    assert_eq!(id, dag.sha256);
    let partial = store.root().join("partial").join(format!("{}.car", dag.root));
    assert!(!partial.exists(), "a whole file came as plain bytes: no resume state is left");
}

/// A store served as a trustless gateway: another store fetches its files by UnixFS id (as a
/// CAR, checked block by block) or by raw id (the bytes), and nothing else is served.
#[tokio::test]
async fn a_store_serves_its_files_to_another_store() {
    use aik_store::{Error, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri, gateway};

    let dir = tempfile::tempdir().unwrap();
    let served = LocalStore::open(dir.path().join("served")).await.unwrap();
    let large = served.add_unixfs(file_of(dir.path(), 2 * CHUNK_SIZE + 3)).await.unwrap();
    let small = served.add_unixfs(file_of(dir.path(), 1000)).await.unwrap();
    let (address, server) =
        gateway::serve(served.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = FetchConfig {
        ipfs_gateways: vec![format!("http://{address}").parse().unwrap()],
        ..FetchConfig::default()
    };
    let fetcher = Fetcher::new(&config).unwrap();
    let store = LocalStore::open(dir.path().join("fetching")).await.unwrap();

    assert_eq!(fetcher.fetch_unixfs(&store, large.root, &NoProgress).await.unwrap(), large.sha256);
    assert_eq!(store.get(&large.sha256).await.unwrap(), served.get(&large.sha256).await.unwrap());
    let uri: Uri = format!("ipfs://{}", small.root).parse().unwrap();
    let id = fetcher.fetch_into(&store, &uri, &Expected::id(small.sha256), &NoProgress).await;
    assert_eq!(id.unwrap(), small.sha256);

    let client = reqwest::Client::new();
    let status = |path: String| {
        let client = client.clone();
        async move {
            client.get(format!("http://{address}{path}")).send().await.unwrap().status().as_u16()
        }
    };
    let unknown = UnixFsFile::of(&vec![5u8; 2 * CHUNK_SIZE]).root;
    assert_eq!(status(format!("/ipfs/{unknown}?format=car")).await, 404);
    // The raw id of the large file names no block (IPFS would never serve it).
    assert_eq!(status(format!("/ipfs/{}", large.sha256)).await, 404);
    assert_eq!(status(format!("/ipfs/{}?format=tar", large.root)).await, 400);
    assert_eq!(status("/ipfs/QmNotACid".to_string()).await, 400);
    let writes = client.post(format!("http://{address}/ipfs/{}", large.root)).send().await.unwrap();
    assert_eq!(writes.status().as_u16(), 405, "read-only");
    let missing = fetcher
        .fetch_unixfs(&LocalStore::open(dir.path().join("x")).await.unwrap(), unknown, &NoProgress)
        .await;
    assert!(matches!(missing, Err(Error::HttpStatus { status: 404, .. })), "{missing:?}");
    server.abort();
}

/// `fil://` is retrieved over trustless HTTP from the configured Filecoin retrieval endpoints,
/// in order (Filecoin itself is not reachable offline: the endpoints here are a dead port and a
/// store served as a trustless gateway, the protocol storage providers' HTTP retrieval speaks).
#[tokio::test]
async fn filecoin_uris_go_through_the_retrieval_endpoints_in_order() {
    use aik_store::{Error, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri, gateway};

    let dir = tempfile::tempdir().unwrap();
    let provider = LocalStore::open(dir.path().join("provider")).await.unwrap();
    let dag = provider.add_unixfs(file_of(dir.path(), 4 * CHUNK_SIZE + 9)).await.unwrap();
    let (address, server) =
        gateway::serve(provider.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let uri: Uri = format!("fil://{}", dag.root).parse().unwrap();
    assert_eq!(uri.to_string(), format!("fil://{}", dag.root));
    let dead = format!("http://127.0.0.1:{}", crate::common::free_port());
    let config = FetchConfig {
        filecoin_retrieval: vec![
            dead.parse().unwrap(),
            format!("http://{address}").parse().unwrap(),
        ],
        ..FetchConfig::default()
    };
    let store = LocalStore::open(dir.path().join("client")).await.unwrap();
    let expected = Expected::id(dag.sha256);
    let id = Fetcher::new(&config).unwrap().fetch_into(&store, &uri, &expected, &NoProgress).await;
    assert_eq!(id.unwrap(), dag.sha256);
    assert_eq!(store.get(&dag.sha256).await.unwrap(), provider.get(&dag.sha256).await.unwrap());

    // No endpoint configured: a clear error, nothing fetched.
    let store = LocalStore::open(dir.path().join("none")).await.unwrap();
    let error = Fetcher::new(&FetchConfig::default())
        .unwrap()
        .fetch_into(&store, &uri, &expected, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::UnsupportedUri { .. }), "{error}");
    assert!(error.to_string().contains("no endpoint configured"), "{error}");
    for bad in ["fil://QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "fil://bafynotacid"] {
        assert!(bad.parse::<Uri>().is_err(), "{bad}");
    }
    server.abort();
}

/// Our trustless gateway over `store`, recording the path and query of every request.
async fn logged_gateway(
    store: aik_store::LocalStore,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    use std::sync::{Arc, Mutex};

    use axum::{extract::Request, middleware::Next};

    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let app = aik_store::gateway::router(store).layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(request.uri().to_string());
                next.run(request).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, log, task)
}

/// A download cut off (a truncated CAR, a peer that stalls and a process killed meanwhile, a
/// peer lying about one block) resumes from what it verified: the next attempt, from another
/// source and another store handle, asks only for the blocks still missing, one by one.
#[tokio::test]
async fn a_cut_off_download_resumes_without_fetching_verified_blocks_again() {
    use aik_store::{Error, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};

    use crate::common::{RawHttpServer, Route, temp_files};

    let dir = tempfile::tempdir().unwrap();
    let provider = LocalStore::open(dir.path().join("provider")).await.unwrap();
    let dag = provider.add_unixfs(file_of(dir.path(), 5 * CHUNK_SIZE + 9)).await.unwrap();
    let bytes = provider.get(&dag.sha256).await.unwrap();
    let path = provider.path_of(&dag.sha256).await.unwrap().unwrap();
    let mut car = Vec::new();
    write_car(&dag, &path, &mut car).unwrap();
    // Root, then six distinct leaves: where each section of the CAR ends.
    let order = dag.blocks();
    assert_eq!(order.len(), 7);
    let header_len = car.len() - order.iter().map(|cid| section_len(&dag, cid)).sum::<usize>();
    let ends: Vec<usize> = order
        .iter()
        .scan(header_len, |at, cid| {
            *at += section_len(&dag, cid);
            Some(*at)
        })
        .collect();
    let car_path: &'static str = Box::leak(format!("/ipfs/{}?format=car", dag.root).into());
    let uri: Uri = format!("ipfs://{}", dag.root).parse().unwrap();
    let expected = Expected::id(dag.sha256);
    let client_dir = dir.path().join("client");
    let partial = client_dir.join("partial").join(format!("{}.car", dag.root));
    let fetcher = |base: &str| {
        Fetcher::new(&FetchConfig {
            ipfs_gateways: vec![base.parse().unwrap()],
            ..Default::default()
        })
        .unwrap()
    };

    // 1. A CAR that ends after the root and two leaves (and a few bytes of the third).
    let cut =
        RawHttpServer::start(vec![(car_path, Route::Car(car[..ends[2] + 100].to_vec()))]).await;
    let store = LocalStore::open(&client_dir).await.unwrap();
    let error = fetcher(&cut.base).fetch_into(&store, &uri, &expected, &NoProgress).await;
    let error = error.unwrap_err();
    assert!(matches!(error, Error::Car { .. }), "{error}");
    assert!(!store.has(&dag.sha256) && temp_files(store.root()).is_empty());
    assert!(partial.exists(), "what was verified is kept for the next attempt");
    drop(store);

    // 2. A peer that sends the next leaf and then stalls; the process is killed meanwhile (the
    // transfer's task dropped mid-read, no cleanup code runs).
    let stall = RawHttpServer::start(vec![(
        car_path,
        Route::StalledCar { body: car.clone(), sent: ends[3] + 10 },
    )])
    .await;
    // The stalling peer is asked for the whole CAR only by a fresh download; this store already
    // holds blocks, so it is a second client that starts over and gets killed.
    let second_dir = dir.path().join("second");
    let second_partial = second_dir.join("partial").join(format!("{}.car", dag.root));
    let task = {
        let (uri, expected, fetcher) = (uri.clone(), expected.clone(), fetcher(&stall.base));
        let second_dir = second_dir.clone();
        tokio::spawn(async move {
            let store = LocalStore::open(&second_dir).await.unwrap();
            fetcher.fetch_into(&store, &uri, &expected, &NoProgress).await
        })
    };
    let held = section_len(&dag, &order[0]) + 3 * section_len(&dag, &order[1]);
    for _ in 0..200 {
        if std::fs::metadata(&second_partial).is_ok_and(|m| m.len() as usize >= held) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    // 3. A peer that serves the next leaf right and the one after it wrong.
    let (third, fourth) = (order[3], order[4]);
    let raw = |cid: aik_store::Cid| -> &'static str {
        Box::leak(format!("/ipfs/{cid}?format=raw").into())
    };
    let block = |cid: &aik_store::Cid| {
        let (offset, len) = dag.leaves[cid];
        bytes[offset as usize..offset as usize + len].to_vec()
    };
    let mut wrong = block(&fourth);
    wrong[0] ^= 1;
    let liar = RawHttpServer::start(vec![
        (raw(third), Route::Ok(block(&third))),
        (raw(fourth), Route::Ok(wrong)),
    ])
    .await;
    let store = LocalStore::open(&client_dir).await.unwrap();
    let error = fetcher(&liar.base).fetch_into(&store, &uri, &expected, &NoProgress).await;
    let message = error.unwrap_err().to_string();
    assert!(message.contains(&format!("block {fourth} does not hash to its id")), "{message}");
    assert_eq!(liar.requests.load(std::sync::atomic::Ordering::SeqCst), 2, "no CAR asked for");
    assert!(!store.has(&dag.sha256) && temp_files(store.root()).is_empty());
    drop(store);

    // 4. An honest gateway, after a "restart" (a new store handle): only the three leaves never
    // verified are asked for, each once, as single blocks.
    let (base, log, server) = logged_gateway(provider.clone()).await;
    let store = LocalStore::open(&client_dir).await.unwrap();
    let id = fetcher(&base).fetch_into(&store, &uri, &expected, &NoProgress).await.unwrap();
    assert_eq!(id, dag.sha256);
    assert_eq!(store.get(&id).await.unwrap(), bytes);
    let wanted: Vec<String> =
        order[4..].iter().map(|cid| format!("/ipfs/{cid}?format=raw")).collect();
    assert_eq!(*log.lock().unwrap(), wanted);
    assert!(!partial.exists(), "the resume state goes once the file is complete");

    // The killed second client resumes too, from the root and the three leaves it had.
    log.lock().unwrap().clear();
    let store = LocalStore::open(&second_dir).await.unwrap();
    assert_eq!(
        fetcher(&base).fetch_into(&store, &uri, &expected, &NoProgress).await.unwrap(),
        dag.sha256
    );
    let wanted: Vec<String> =
        order[4..].iter().map(|cid| format!("/ipfs/{cid}?format=raw")).collect();
    assert_eq!(*log.lock().unwrap(), wanted);
    assert!(!second_partial.exists());
    server.abort();
}

/// The bytes a block's CAR section takes: length prefix, CID, block.
fn section_len(dag: &UnixFsFile, cid: &aik_store::Cid) -> usize {
    let block = dag.nodes.get(cid).map_or_else(|| dag.leaves[cid].1, |node| node.bytes.len());
    let len = 36 + block;
    let prefix = if len < 1 << 7 {
        1
    } else if len < 1 << 14 {
        2
    } else {
        3
    };
    prefix + len
}

/// Several IPFS sources are tried in order: a gateway whose CAR carries a wrong block is refused
/// and the same download goes on from the next one, asking it only for the blocks the liar did
/// not already deliver verified; by sha256 and by UnixFS id alone alike.
#[tokio::test]
async fn a_wrong_block_from_one_gateway_moves_the_download_to_the_next() {
    use aik_store::{Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};

    use crate::common::{RawHttpServer, Route};

    let dir = tempfile::tempdir().unwrap();
    let honest = LocalStore::open(dir.path().join("honest")).await.unwrap();
    let dag = honest.add_unixfs(file_of(dir.path(), 3 * CHUNK_SIZE + 5)).await.unwrap();
    let file = honest.path_of(&dag.sha256).await.unwrap().unwrap();
    let mut car = Vec::new();
    write_car(&dag, &file, &mut car).unwrap();
    // Corrupt one byte of the second leaf: its section starts after the header, the root's
    // section and the first leaf's.
    let blocks = dag.blocks();
    let header_len = car.len() - blocks.iter().map(|c| section_len(&dag, c)).sum::<usize>();
    let second_leaf = header_len + section_len(&dag, &blocks[0]) + section_len(&dag, &blocks[1]);
    let mut lying = car.clone();
    lying[second_leaf + 100] ^= 1;
    let path: &'static str = Box::leak(format!("/ipfs/{}?format=car", dag.root).into_boxed_str());
    let liar = RawHttpServer::start(vec![(path, Route::Car(lying))]).await;
    let (good, log, task) = logged_gateway(honest.clone()).await;
    let config = FetchConfig {
        ipfs_gateways: vec![liar.base.parse().unwrap(), good.parse().unwrap()],
        ..FetchConfig::default()
    };
    let fetcher = Fetcher::new(&config).unwrap();
    let uri: Uri = format!("ipfs://{}", dag.root).parse().unwrap();

    for by_root in [false, true] {
        let store = LocalStore::open(dir.path().join(format!("client-{by_root}"))).await.unwrap();
        log.lock().unwrap().clear();
        let asked_before = liar.requests.load(std::sync::atomic::Ordering::SeqCst);
        let id = if by_root {
            fetcher.fetch_unixfs(&store, dag.root, &NoProgress).await
        } else {
            fetcher.fetch_into(&store, &uri, &Expected::id(dag.sha256), &NoProgress).await
        };
        assert_eq!(id.unwrap(), dag.sha256, "by root: {by_root}");
        assert_eq!(store.get(&dag.sha256).await.unwrap(), honest.get(&dag.sha256).await.unwrap());
        assert_eq!(liar.requests.load(std::sync::atomic::Ordering::SeqCst), asked_before + 1);
        // The root and the first leaf came verified from the liar: the honest gateway is asked
        // for the rest, block by block.
        let mut asked = log.lock().unwrap().clone();
        asked.sort();
        let mut rest: Vec<String> =
            blocks[2..].iter().map(|cid| format!("/ipfs/{cid}?format=raw")).collect();
        rest.sort();
        assert_eq!(asked, rest, "by root: {by_root}");
        // Kept once, found by both ids.
        assert_eq!(store.resolve(&dag.root).await.unwrap(), Some(dag.sha256));
    }
    task.abort();
}

/// Whatever way a file larger than one block enters a store (a download by sha256 as plain
/// bytes, a copy from disk), the store indexes it by its UnixFS id at once, so a worker serves
/// what it downloaded to the next one by that id without `aik store index`.
#[tokio::test]
async fn every_stored_file_is_found_and_served_by_its_unixfs_id() {
    use aik_store::{Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};

    use crate::common::{RawHttpServer, Route};

    let dir = tempfile::tempdir().unwrap();
    let file = file_of(dir.path(), 2 * CHUNK_SIZE + 77);
    let bytes = std::fs::read(&file).unwrap();
    let dag = UnixFsFile::of(&bytes);
    let server = RawHttpServer::start(vec![("/model.bin", Route::Ok(bytes.clone()))]).await;
    let first = LocalStore::open(dir.path().join("first")).await.unwrap();
    let uri: Uri = server.url("/model.bin").parse().unwrap();
    let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
    let id = fetcher.fetch_into(&first, &uri, &Expected::id(dag.sha256), &NoProgress).await;
    assert_eq!(id.unwrap(), dag.sha256);
    assert_eq!(first.resolve(&dag.root).await.unwrap(), Some(dag.sha256));

    // The next worker fetches it from the first one's gateway by its UnixFS id, as a CAR
    // checked block by block, and can serve it on in turn.
    let (address, task) =
        aik_store::gateway::serve(first.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = FetchConfig {
        ipfs_gateways: vec![format!("http://{address}").parse().unwrap()],
        ..FetchConfig::default()
    };
    let second = LocalStore::open(dir.path().join("second")).await.unwrap();
    let id = Fetcher::new(&config).unwrap().fetch_unixfs(&second, dag.root, &NoProgress).await;
    assert_eq!(id.unwrap(), dag.sha256);
    assert_eq!(second.resolve(&dag.root).await.unwrap(), Some(dag.sha256));
    task.abort();

    let third = LocalStore::open(dir.path().join("third")).await.unwrap();
    assert_eq!(third.put_file(&file).await.unwrap(), dag.sha256);
    assert_eq!(third.resolve(&dag.root).await.unwrap(), Some(dag.sha256));
    // One file per content: the index holds a name, not a second copy.
    let files = std::fs::read_dir(third.root())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(files, 1);
}

/// A download by UnixFS id alone has no size to start from: the root block, once verified,
/// tells it, so progress has a total from the first block on.
#[tokio::test]
async fn a_car_download_reports_the_size_its_root_records() {
    use std::sync::Mutex;

    use aik_store::{FetchConfig, Fetcher, LocalStore, Progress};

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(u64, Option<u64>)>>);
    impl Progress for Recorded {
        fn update(&self, done: u64, total: Option<u64>) {
            self.0.lock().unwrap().push((done, total));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let served = LocalStore::open(dir.path().join("served")).await.unwrap();
    let dag = served.add_unixfs(file_of(dir.path(), 5 * CHUNK_SIZE + 1)).await.unwrap();
    let (address, task) =
        aik_store::gateway::serve(served, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = FetchConfig {
        ipfs_gateways: vec![format!("http://{address}").parse().unwrap()],
        ..FetchConfig::default()
    };
    let store = LocalStore::open(dir.path().join("client")).await.unwrap();
    let recorded = Recorded::default();
    let id = Fetcher::new(&config).unwrap().fetch_unixfs(&store, dag.root, &recorded).await;
    assert_eq!(id.unwrap(), dag.sha256);
    let updates = recorded.0.into_inner().unwrap();
    assert_eq!(updates.first(), Some(&(0, Some(dag.size))), "announced before any file byte");
    assert_eq!(updates.last(), Some(&(dag.size, Some(dag.size))));
    assert!(updates.iter().all(|&(_, total)| total == Some(dag.size)));
    task.abort();
}

/// A trustless gateway run by a real IPFS implementation: Helia adds a file of 176 leaves (a
/// two-level DAG) with Kubo's parameters, must name it by our UnixFS id, and serves its CAR as
/// its own export writes it (breadth-first, each block once: `order=unk`), which our client
/// reads block by block into the same bytes, by UnixFS id alone and by sha256. The same file
/// added with 1 MiB chunks and 1024-link nodes has another id, and is fetched by that one too
/// (every block checked against it; the store knows the file by our id afterwards).
#[tokio::test]
async fn a_two_level_file_comes_from_a_helia_gateway() {
    use aik_store::{Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};

    use crate::common::{Daemon, free_port, helia_available, helia_dir};

    if !helia_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = file_of(dir.path(), 175 * CHUNK_SIZE + 1);
    let dag = UnixFsFile::of_file(&file).unwrap();
    assert_eq!(dag.nodes.len(), 3, "a root over two nodes of leaves");
    let port = free_port();
    let mut command = Command::new("node");
    let wide = dir.path().join("wide.bin");
    std::fs::copy(&file, &wide).unwrap();
    command
        .arg(helia_dir().join("gateway.mjs"))
        .arg(port.to_string())
        .arg(&file)
        .arg(format!("wide:{}", wide.display()));
    let mut helia = Daemon::spawn("helia", command, dir.path().join("helia.log"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let probe = format!("{base}/ipfs/{}?format=raw", dag.root);
    helia.wait_ready(&client, reqwest::Method::GET, &probe).await;
    let added = format!("added {} {}", file.display(), dag.root);
    assert!(helia.log().contains(&added), "Helia names the file otherwise:\n{}", helia.log());

    let config =
        FetchConfig { ipfs_gateways: vec![base.parse().unwrap()], ..FetchConfig::default() };
    let fetcher = Fetcher::new(&config).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let store = LocalStore::open(dir.path().join("by-root")).await.unwrap();
    let id = fetcher.fetch_unixfs(&store, dag.root, &NoProgress).await;
    assert_eq!(id.unwrap_or_else(|e| panic!("{e}\n{}", helia.log())), dag.sha256);
    assert!(store.get(&dag.sha256).await.unwrap() == bytes);
    let store = LocalStore::open(dir.path().join("by-sha256")).await.unwrap();
    let uri: Uri = format!("ipfs://{}", dag.root).parse().unwrap();
    let id = fetcher.fetch_into(&store, &uri, &Expected::id(dag.sha256), &NoProgress).await;
    assert_eq!(id.unwrap(), dag.sha256);
    assert_eq!(store.resolve(&dag.root).await.unwrap(), Some(dag.sha256));

    let log = helia.log();
    let prefix = format!("added wide:{} ", wide.display());
    let wide_root: aik_store::Cid = log
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no wide root in:\n{log}"))
        .parse()
        .unwrap();
    assert_ne!(wide_root, dag.root);
    let store = LocalStore::open(dir.path().join("wide")).await.unwrap();
    let id = fetcher.fetch_unixfs(&store, wide_root, &NoProgress).await;
    assert_eq!(id.unwrap_or_else(|e| panic!("{e}\n{}", helia.log())), dag.sha256);
    assert!(store.get(&dag.sha256).await.unwrap() == bytes);
    assert_eq!(store.resolve(&dag.root).await.unwrap(), Some(dag.sha256));
}

/// A `concat://` file whose second part is a UnixFS DAG with a repeated chunk: the part's CAR
/// sends that block once and the reader writes it again from what the part already wrote (its
/// offsets count from the part's start, not the file's).
#[tokio::test]
async fn a_repeated_chunk_in_a_later_concat_part_is_written_from_that_part() {
    use aik_store::{
        ContentId, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri, gateway,
    };

    let dir = tempfile::tempdir().unwrap();
    let served = LocalStore::open(dir.path().join("served")).await.unwrap();
    let first = std::fs::read(file_of(dir.path(), CHUNK_SIZE + 100)).unwrap();
    let (a, b) = (vec![1u8; CHUNK_SIZE], vec![2u8; CHUNK_SIZE]);
    let second = [a.clone(), b, a, vec![3u8; 7]].concat();
    let mut roots = Vec::new();
    for (name, bytes) in [("first", &first), ("second", &second)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        roots.push(served.add_unixfs(&path).await.unwrap().root);
    }
    let (address, task) = gateway::serve(served, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = FetchConfig {
        ipfs_gateways: vec![format!("http://{address}").parse().unwrap()],
        ..FetchConfig::default()
    };
    let whole = [first, second].concat();
    let uri: Uri = format!("concat://ipfs://{}|ipfs://{}", roots[0], roots[1]).parse().unwrap();
    let store = LocalStore::open(dir.path().join("client")).await.unwrap();
    let expected = Expected::id(ContentId::of(&whole));
    let id = Fetcher::new(&config).unwrap().fetch_into(&store, &uri, &expected, &NoProgress).await;
    assert_eq!(id.unwrap(), ContentId::of(&whole));
    assert!(store.get(&ContentId::of(&whole)).await.unwrap() == whole);
    task.abort();
}
