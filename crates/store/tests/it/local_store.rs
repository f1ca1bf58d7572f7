//! The local store's atomicity: concurrent writers, readers that never see a partial file, and
//! temp files left by a crash that are never served.

use std::sync::Arc;

use aik_store::{ContentId, Expected, FetchConfig, Fetcher, LocalStore, NoProgress};

use crate::common::{RawHttpServer, Route, temp_files, test_bytes};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_of_the_same_content_store_it_once_and_readers_never_see_part_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).await.unwrap());
    let data = Arc::new(test_bytes(2 << 20, 1));
    let id = ContentId::of(&data);

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, data) = (store.clone(), data.clone());
        tasks.push(tokio::spawn(async move { store.put(&data).await.unwrap() }));
    }
    for _ in 0..8 {
        let (store, data) = (store.clone(), data.clone());
        tasks.push(tokio::spawn(async move { store.put_reader(&data[..]).await.unwrap() }));
    }
    // Readers racing the writers: whenever the id is visible, its file is complete.
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (store, data) = (store.clone(), data.clone());
        readers.push(tokio::spawn(async move {
            let mut complete_reads = 0;
            for _ in 0..200 {
                if store.has(&id) {
                    assert_eq!(store.get(&id).await.unwrap().len(), data.len());
                    complete_reads += 1;
                }
                tokio::task::yield_now().await;
            }
            complete_reads
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), id);
    }
    for reader in readers {
        reader.await.unwrap();
    }
    assert_eq!(*store.get(&id).await.unwrap(), *data);
    store.verify(&id).await.unwrap();
    assert!(temp_files(dir.path()).is_empty(), "{:?}", temp_files(dir.path()));
    // One file; beside it only the UnixFS index (a name per multi-block file, not a copy).
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .collect();
    assert_eq!(files.len(), 1);
}

#[tokio::test]
async fn a_temp_file_left_by_a_crash_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let data = test_bytes(100_000, 2);
    let id = ContentId::of(&data);

    // What a process killed mid-download leaves behind: a partial temp file.
    let leftover = dir.path().join(".incoming-4242-0.tmp");
    std::fs::write(&leftover, &data[..50_000]).unwrap();
    assert!(!store.has(&id));
    assert!(store.path_of(&id).await.unwrap().is_none());
    assert!(matches!(store.get(&id).await, Err(aik_store::Error::NotFound { .. })));

    // A new download ignores the leftover and stores the whole, verified file.
    let server = RawHttpServer::start(vec![("/blob", Route::Ok(data.clone()))]).await;
    let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
    let uri = server.url("/blob").parse().unwrap();
    fetcher.fetch_into(&store, &uri, &Expected::id(id), &NoProgress).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), data);

    // Fresh temp files may belong to a live download elsewhere; only old ones are removed.
    assert_eq!(
        store.remove_stale_temp_files(std::time::Duration::from_secs(3600)).await.unwrap(),
        0
    );
    assert_eq!(store.remove_stale_temp_files(std::time::Duration::ZERO).await.unwrap(), 1);
    assert!(!leftover.exists());
}

#[tokio::test]
async fn put_file_streams_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).await.unwrap();
    let data = test_bytes(700_000, 3);
    let source = dir.path().join("input.bin");
    std::fs::write(&source, &data).unwrap();
    let id = store.put_file(&source).await.unwrap();
    assert_eq!(id, ContentId::of(&data));
    let stored = store.path_of(&id).await.unwrap().unwrap();
    assert_eq!(std::fs::read(stored).unwrap(), data);

    let missing = dir.path().join("missing.bin");
    let message = store.put_file(&missing).await.unwrap_err().to_string();
    assert!(message.contains("missing.bin"), "{message}");
}

#[tokio::test]
async fn a_corrupt_copy_is_downloaded_again_when_the_store_verifies_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap().with_verify_on_read(true);
    let data = test_bytes(10_000, 4);
    let id = store.put(&data).await.unwrap();
    std::fs::write(dir.path().join(id.to_string()), b"bit rot").unwrap();

    let server = RawHttpServer::start(vec![("/blob", Route::Ok(data.clone()))]).await;
    let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
    let uri = server.url("/blob").parse().unwrap();
    fetcher.fetch_into(&store, &uri, &Expected::id(id), &NoProgress).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), data);
    assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}
