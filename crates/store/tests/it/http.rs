//! Plain HTTP against a real TCP server on 127.0.0.1: success, progress, and every failure a
//! download can meet (404, truncation, wrong bytes, refused connection).

use std::sync::{Mutex, atomic::Ordering};

use aik_store::{
    ChunkManifest, ContentId, Error, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri,
};

use crate::common::{RawHttpServer, Route, free_port, temp_files, test_bytes};

async fn setup() -> (tempfile::TempDir, LocalStore, Fetcher) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    (dir, store, Fetcher::new(&FetchConfig::default()).unwrap())
}

#[tokio::test]
async fn downloads_verify_report_progress_and_are_not_repeated() {
    let (dir, store, fetcher) = setup().await;
    let data = test_bytes(3 << 20, 10);
    let id = ContentId::of(&data);
    let server = RawHttpServer::start(vec![("/model.bin", Route::Ok(data.clone()))]).await;
    let uri: Uri = server.url("/model.bin").parse().unwrap();

    let updates = Mutex::new(Vec::new());
    let progress = |done: u64, total: Option<u64>| updates.lock().unwrap().push((done, total));
    let manifest = ChunkManifest::from_bytes(&data, 1 << 20).unwrap();
    let expected = Expected::with_manifest(manifest);
    assert_eq!(fetcher.fetch_into(&store, &uri, &expected, &progress).await.unwrap(), id);
    assert_eq!(store.get(&id).await.unwrap(), data);

    let updates = updates.into_inner().unwrap();
    assert_eq!(updates.first(), Some(&(0, Some(data.len() as u64))));
    assert_eq!(updates.last(), Some(&(data.len() as u64, Some(data.len() as u64))));
    assert!(updates.windows(2).all(|w| w[0].0 <= w[1].0), "progress never goes back");
    assert!(updates.len() > 2, "progress is reported during the transfer, not only at the end");

    // Already stored: no second request.
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    fetcher.fetch_into(&store, &uri, &Expected::id(id), &NoProgress).await.unwrap();
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    assert!(temp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn every_failure_is_a_clear_error_and_keeps_nothing() {
    let (dir, store, fetcher) = setup().await;
    let data = test_bytes(500_000, 11);
    let id = ContentId::of(&data);
    let server = RawHttpServer::start(vec![
        ("/gone", Route::Status(404, "no such model")),
        ("/cut", Route::Truncated { body: data.clone(), sent: 200_000 }),
        ("/wrong", Route::Ok(test_bytes(500_000, 12))),
        ("/short", Route::Ok(data[..1000].to_vec())),
    ])
    .await;
    let fetch = |path: &str| {
        let uri: Uri = if path.starts_with("http") {
            path.parse().unwrap()
        } else {
            server.url(path).parse().unwrap()
        };
        let (fetcher, store) = (&fetcher, &store);
        async move {
            fetcher
                .fetch_into(store, &uri, &Expected::id(id).with_size(500_000), &NoProgress)
                .await
                .unwrap_err()
        }
    };

    let error = fetch("/gone").await;
    let message = error.to_string();
    assert!(matches!(error, Error::HttpStatus { status: 404, .. }), "{message}");
    assert!(message.contains("/gone") && message.contains("no such model"), "{message}");

    let error = fetch("/cut").await;
    let message = error.to_string();
    assert!(matches!(error, Error::Truncated { announced: 500_000, .. }), "{message}");
    assert!(message.contains("/cut") && message.contains("truncated"), "{message}");

    let error = fetch("/wrong").await;
    let message = error.to_string();
    assert!(matches!(error, Error::HashMismatch { .. }), "{message}");
    assert!(message.contains(&id.to_hex()), "names the expected hash: {message}");
    assert!(
        message.contains(&ContentId::of(&test_bytes(500_000, 12)).to_hex()),
        "names the actual hash: {message}"
    );

    let error = fetch("/short").await;
    assert!(
        matches!(error, Error::SizeMismatch { expected: 500_000, actual: 1000, .. }),
        "{error}"
    );

    let refused = format!("http://127.0.0.1:{}/model", free_port());
    let error = fetch(&refused).await;
    let message = error.to_string();
    assert!(matches!(error, Error::Request { .. }), "{message}");
    assert!(message.contains(&refused), "{message}");
    assert!(message.to_lowercase().contains("connection refused"), "{message}");

    assert!(!store.has(&id));
    assert!(temp_files(dir.path()).is_empty(), "{:?}", temp_files(dir.path()));
}

#[tokio::test]
async fn a_bad_chunk_stops_the_download_and_the_next_mirror_is_tried() {
    let (_dir, store, fetcher) = setup().await;
    let data = test_bytes(4 << 20, 20);
    let mut corrupt = data.clone();
    corrupt[(1 << 20) + 5] ^= 1;
    let server = RawHttpServer::start(vec![
        ("/bad", Route::Ok(corrupt)),
        ("/good", Route::Ok(data.clone())),
    ])
    .await;
    let expected = Expected::with_manifest(ChunkManifest::from_bytes(&data, 1 << 20).unwrap());

    let bad: Uri = server.url("/bad").parse().unwrap();
    let error = fetcher.fetch_into(&store, &bad, &expected, &NoProgress).await.unwrap_err();
    assert!(matches!(error, Error::ChunkMismatch { index: 1, .. }), "{error}");

    let uris = [
        format!("http://127.0.0.1:{}/x", free_port()).parse().unwrap(),
        bad,
        server.url("/good").parse().unwrap(),
    ];
    let id = fetcher.fetch_first(&store, &uris, &expected, &NoProgress).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), data);

    let error = fetcher
        .fetch_first(&store, &uris[..2], &Expected::id(ContentId::of(b"other")), &NoProgress)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("all 2 sources failed") && message.contains("/bad"), "{message}");
}

/// A file stored in parts (`concat://`): the parts' bytes in order make the file, checked
/// against its sha256 and size; each part's announced length counts from the parts before it;
/// a part in the wrong order, a missing or truncated part, or parts longer than the file are
/// refused and nothing is kept.
#[tokio::test]
async fn a_file_in_parts_is_the_concatenation_of_its_parts() {
    let (_dir, store, fetcher) = setup().await;
    let data = test_bytes(700_000, 12);
    let (a, b, c) = (&data[..300_000], &data[300_000..650_000], &data[650_000..]);
    let server = RawHttpServer::start(vec![
        ("/p0", Route::Ok(a.to_vec())),
        ("/p1", Route::Ok(b.to_vec())),
        ("/p2", Route::Ok(c.to_vec())),
        ("/cut", Route::Truncated { body: b.to_vec(), sent: 1000 }),
    ])
    .await;
    let concat = |parts: &[&str]| -> Uri {
        let urls: Vec<String> = parts.iter().map(|p| server.url(p)).collect();
        format!("concat://{}", urls.join("|")).parse().unwrap()
    };
    let id = ContentId::of(&data);
    let expected = Expected::id(id).with_size(data.len() as u64);
    let whole = concat(&["/p0", "/p1", "/p2"]);
    assert_eq!(
        whole.to_string(),
        format!("concat://{}|{}|{}", server.url("/p0"), server.url("/p1"), server.url("/p2"))
    );
    assert_eq!(fetcher.fetch_into(&store, &whole, &expected, &NoProgress).await.unwrap(), id);
    assert_eq!(store.get(&id).await.unwrap(), data);
    store.remove(&id).await.unwrap();

    for (parts, what) in [
        (vec!["/p1", "/p0", "/p2"], "hash"),
        (vec!["/p0", "/p1"], "expected 700000"),
        (vec!["/p0", "/cut", "/p2"], "truncated"),
        (vec!["/p0", "/p1", "/p2", "/p2"], "sent 750000 bytes, expected 700000"),
        (vec!["/p0", "/missing", "/p2"], "404"),
    ] {
        let error = fetcher.fetch_into(&store, &concat(&parts), &expected, &NoProgress).await;
        let message = error.unwrap_err().to_string().to_lowercase();
        assert!(message.contains(what), "{parts:?}: {message}");
        assert!(!store.has(&id) && temp_files(store.root()).is_empty(), "{parts:?}");
    }
}
