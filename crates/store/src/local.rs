//! The local directory store: one file per content id, written atomically.
//!
//! Layout: `<root>/<cid>` holds the bytes whose sha256 is `cid`. Writes go to
//! `<root>/.incoming-<n>.tmp` in the same directory, are fsynced, checked against the expected
//! hash and only then renamed to their final name (and the directory fsynced). A rename is
//! atomic on POSIX file systems, so a reader sees either no file or the whole verified file;
//! a process killed mid-write leaves only a temp file that no lookup ever returns.
//!
//! A file larger than one IPFS block is also known by its [UnixFS](crate::unixfs) root
//! (`bafybei…`): `<root>/unixfs/<root cid>` holds the file's sha256 id. The file itself is kept
//! once, under its sha256; its blocks are recomputed from it when needed (a CAR export).

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime},
};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use crate::{
    ChunkHasher, ChunkManifest, Cid, Codec, ContentHasher, ContentId, Error, Hash32, Progress,
    Result, UnixFsFile,
    merkle::chunk_count,
    partial::{PARTIAL_DIR, PartialDag},
    unixfs::FileDag,
};

/// Prefix of temp files; final names are CIDs (`b…`), so the two can never collide.
const TEMP_PREFIX: &str = ".incoming-";
const COPY_BUFFER: usize = 256 * 1024;
/// Subdirectory mapping UnixFS roots to the sha256 ids of their files.
const UNIXFS_INDEX: &str = "unixfs";

/// The UnixFS DAG of a file, built on a blocking thread.
async fn dag_of(path: PathBuf) -> Result<UnixFsFile> {
    let read = path.clone();
    tokio::task::spawn_blocking(move || UnixFsFile::of_file(&read))
        .await
        .map_err(|e| Error::Io {
            action: "build the UnixFS DAG of".into(),
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(Error::io("read", &path))
}

/// Makes temp names unique across tasks of this process; the pid separates processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory of content-addressed files.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    verify_on_read: bool,
}

/// What a download must hash to before it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// sha256 of the whole content.
    pub id: ContentId,
    /// Exact size, when known (a registry records it): longer or shorter content is refused,
    /// and a stream that runs past it is cut off early.
    pub size: Option<u64>,
    /// Chunk-level check, when known.
    pub chunks: Option<ChunkCheck>,
}

/// How to check a download's chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkCheck {
    /// Only the root is known (as on chain): checked once the last byte is in.
    Root {
        /// Chunk size the root was computed with.
        chunk_size: u64,
        /// Expected Merkle root.
        root: Hash32,
    },
    /// Every chunk hash is known: each chunk is checked as soon as it is complete, so a bad
    /// source is dropped after at most one chunk of wasted transfer.
    Manifest(ChunkManifest),
}

impl Expected {
    /// Expect content with this sha256; nothing else is checked.
    pub const fn id(id: ContentId) -> Self {
        Self { id, size: None, chunks: None }
    }

    /// Also require this exact size.
    pub const fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Also require this Merkle root over chunks of `chunk_size`.
    pub fn with_merkle_root(mut self, chunk_size: u64, root: Hash32) -> Self {
        self.chunks = Some(ChunkCheck::Root { chunk_size, root });
        self
    }

    /// Check every chunk against `manifest` as it streams in (implies its size and id).
    pub fn with_manifest(manifest: ChunkManifest) -> Self {
        Self {
            id: manifest.content_id,
            size: Some(manifest.size),
            chunks: Some(ChunkCheck::Manifest(manifest)),
        }
    }
}

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(Error::io("create store directory", &root))?;
        Ok(Self { root, verify_on_read: false })
    }

    /// `$AIK_STORE_DIR`, else `$AIK_HOME/store`, else `~/.cache/aik/store` (the same home the
    /// model cache of the command line uses), else `.aik/store` when no home directory is known.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("AIK_STORE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        if let Some(home) = std::env::var_os("AIK_HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(home).join("store");
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => PathBuf::from(home).join(".cache").join("aik").join("store"),
            None => PathBuf::from(".aik").join("store"),
        }
    }

    /// Re-hash files on every [`get`](Self::get) and [`path_of`](Self::path_of), turning silent
    /// disk corruption into an [`Error::Corrupt`]. Costs one read of the file per call.
    pub const fn with_verify_on_read(mut self, verify: bool) -> Self {
        self.verify_on_read = verify;
        self
    }

    /// Whether reads re-hash (see [`with_verify_on_read`](Self::with_verify_on_read)).
    pub const fn verifies_on_read(&self) -> bool {
        self.verify_on_read
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn final_path(&self, id: &ContentId) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// Whether the content is stored (complete: temp files never count).
    pub fn has(&self, id: &ContentId) -> bool {
        self.final_path(id).is_file()
    }

    /// Path of the stored file, for callers that map or stream it themselves (a model loader).
    /// `Ok(None)` when absent; with verify-on-read the file is hashed first.
    pub async fn path_of(&self, id: &ContentId) -> Result<Option<PathBuf>> {
        let path = self.final_path(id);
        if !path.is_file() {
            return Ok(None);
        }
        if self.verify_on_read {
            self.verify(id).await?;
        }
        Ok(Some(path))
    }

    /// Reads the whole content into memory.
    pub async fn get(&self, id: &ContentId) -> Result<Vec<u8>> {
        let path = self.final_path(id);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { id: id.to_string(), root: self.root.clone() });
            }
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        if self.verify_on_read {
            let actual = ContentId::of(&bytes);
            if actual != *id {
                return Err(Error::Corrupt {
                    path,
                    expected: id.to_hex(),
                    actual: actual.to_hex(),
                });
            }
        }
        Ok(bytes)
    }

    /// Re-hashes a stored file and fails with [`Error::Corrupt`] if it changed.
    pub async fn verify(&self, id: &ContentId) -> Result<()> {
        let path = self.final_path(id);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { id: id.to_string(), root: self.root.clone() });
            }
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let actual = hash_reader(file, &path).await?;
        if actual != *id {
            return Err(Error::Corrupt { path, expected: id.to_hex(), actual: actual.to_hex() });
        }
        Ok(())
    }

    /// Keeps the file at `path` and indexes its UnixFS root, so that it is found by the id
    /// `ipfs add --cid-version 1` gives it as well as by its sha256. Returns its DAG.
    pub async fn add_unixfs(&self, path: impl AsRef<Path>) -> Result<UnixFsFile> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path).await.map_err(Error::io("open", path))?;
        self.put_reader_named(file, &path.display().to_string()).await
    }

    /// Builds the UnixFS DAG of stored content `id` and records its root in the index (content
    /// stored before the index existed is indexed this way).
    pub async fn index_unixfs(&self, id: &ContentId) -> Result<UnixFsFile> {
        let path = self
            .path_of(id)
            .await?
            .ok_or_else(|| Error::NotFound { id: id.to_string(), root: self.root.clone() })?;
        let dag = dag_of(path).await?;
        self.record_unixfs(dag.root, id).await?;
        Ok(dag)
    }

    /// Indexes the UnixFS root of every stored file larger than one block (files stored before
    /// the index existed, or by a download by sha256); returns how many roots were recorded.
    pub async fn index_all_unixfs(&self) -> Result<usize> {
        let mut ids = Vec::new();
        let mut entries =
            tokio::fs::read_dir(&self.root).await.map_err(Error::io("list", &self.root))?;
        while let Some(entry) = entries.next_entry().await.map_err(Error::io("list", &self.root))? {
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.parse::<ContentId>().ok())
                && entry.path().is_file()
            {
                ids.push(id);
            }
        }
        ids.sort();
        let mut indexed = 0;
        for id in ids {
            if self.index_unixfs(&id).await?.root.codec() == Codec::DagPb {
                indexed += 1;
            }
        }
        Ok(indexed)
    }

    /// The stored content a CID names: a raw CID's own sha256 when stored, or the file a
    /// UnixFS root was indexed for.
    pub async fn resolve(&self, cid: &Cid) -> Result<Option<ContentId>> {
        if let Some(id) = cid.as_content_id() {
            return Ok(self.has(&id).then_some(id));
        }
        let entry = self.root.join(UNIXFS_INDEX).join(cid.to_string());
        let text = match tokio::fs::read_to_string(&entry).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &entry)(e)),
        };
        let id: ContentId = text.trim().parse()?;
        Ok(self.has(&id).then_some(id))
    }

    /// Every UnixFS root the store's index records (files it may hold by that id).
    pub async fn unixfs_roots(&self) -> Result<Vec<Cid>> {
        let dir = self.root.join(UNIXFS_INDEX);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir)(e)),
        };
        let mut roots = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(Error::io("list", &dir))? {
            if let Some(cid) = entry.file_name().to_str().and_then(|n| n.parse::<Cid>().ok()) {
                roots.push(cid);
            }
        }
        roots.sort();
        Ok(roots)
    }

    /// The DAG and the path of the stored file whose UnixFS id is `cid`, rebuilt from the file
    /// and checked against `cid`; `Ok(None)` when the store does not hold it.
    pub async fn unixfs(&self, cid: &Cid) -> Result<Option<(UnixFsFile, PathBuf)>> {
        let Some(id) = self.resolve(cid).await? else { return Ok(None) };
        let path = self
            .path_of(&id)
            .await?
            .ok_or_else(|| Error::NotFound { id: id.to_string(), root: self.root.clone() })?;
        let dag = dag_of(path.clone()).await?;
        if dag.root != *cid {
            return Err(Error::UnixFsIndex {
                cid: cid.to_string(),
                path,
                found: dag.root.to_string(),
            });
        }
        Ok(Some((dag, path)))
    }

    /// Deletes stored content; `Ok(false)` if it was not there.
    pub async fn remove(&self, id: &ContentId) -> Result<bool> {
        let path = self.final_path(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path)(e)),
        }
    }

    /// Stores bytes; returns their id. Storing present content is a cheap no-op.
    pub async fn put(&self, bytes: &[u8]) -> Result<ContentId> {
        let id = ContentId::of(bytes);
        if self.has(&id) {
            return Ok(id);
        }
        let mut staged = self.stage(Expected::id(id), "memory", &crate::NoProgress).await?;
        staged.write(bytes).await?;
        staged.finish().await
    }

    /// Copies a file into the store; returns its id. (Like everything stored, it is indexed by
    /// its UnixFS id too.)
    pub async fn put_file(&self, path: impl AsRef<Path>) -> Result<ContentId> {
        Ok(self.add_unixfs(path).await?.sha256)
    }

    /// Stores everything `reader` yields; returns its id.
    pub async fn put_reader(&self, reader: impl AsyncRead + Unpin) -> Result<ContentId> {
        Ok(self.put_reader_named(reader, "reader").await?.sha256)
    }

    /// Stores what `reader` yields and indexes its UnixFS root; returns its DAG.
    async fn put_reader_named(
        &self,
        mut reader: impl AsyncRead + Unpin,
        source: &str,
    ) -> Result<UnixFsFile> {
        let (mut file, temp) = self.create_temp().await?;
        let guard = TempGuard(Some(temp.clone()));
        let mut hasher = FileDag::new();
        let mut buffer = vec![0u8; COPY_BUFFER];
        loop {
            let n = reader.read(&mut buffer).await.map_err(Error::io("read", source))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).await.map_err(Error::io("write", &temp))?;
        }
        let dag = hasher.finish();
        self.publish(file, guard, &dag.sha256).await?;
        self.record_unixfs(dag.root, &dag.sha256).await?;
        Ok(dag)
    }

    /// Starts an incoming transfer that will be kept only if it matches `expected`.
    ///
    /// `source` names where the bytes come from, for error messages. Dropping the returned
    /// [`Incoming`] without [`finish`](Incoming::finish)ing it deletes the partial file.
    pub async fn stage<'a>(
        &self,
        expected: Expected,
        source: &str,
        progress: &'a dyn Progress,
    ) -> Result<Incoming<'a>> {
        let (file, temp) = self.create_temp().await?;
        let chunks = match &expected.chunks {
            Some(ChunkCheck::Root { chunk_size, .. }) => Some(ChunkHasher::new(*chunk_size)?),
            Some(ChunkCheck::Manifest(manifest)) => {
                let leaves = chunk_count(manifest.size, manifest.chunk_size);
                if leaves != manifest.chunks.len() as u64 {
                    return Err(Error::InvalidManifest {
                        source_uri: source.to_string(),
                        reason: format!(
                            "manifest lists {} chunks but {} bytes in chunks of {} make {leaves}",
                            manifest.chunks.len(),
                            manifest.size,
                            manifest.chunk_size
                        ),
                    });
                }
                Some(ChunkHasher::new(manifest.chunk_size)?)
            }
            None => None,
        };
        Ok(Incoming {
            store: self.clone(),
            source: source.to_string(),
            expected,
            file: Some(file),
            guard: TempGuard(Some(temp)),
            whole: FileDag::new(),
            chunks,
            checked_chunks: 0,
            announced: None,
            progress,
            dag: None,
            part_base: None,
        })
    }

    /// Stages the UnixFS file whose id is `root` when its sha256 is not known: only a CAR
    /// verified block by block against `root` may fill it (see [`Incoming::dag`]), and its
    /// sha256 is what the verified bytes hash to. Record the result with
    /// [`LocalStore::record_unixfs`].
    pub async fn stage_dag<'a>(
        &self,
        root: Cid,
        source: &str,
        progress: &'a dyn Progress,
    ) -> Result<Incoming<'a>> {
        let mut incoming =
            self.stage(Expected::id(ContentId::from_digest([0; 32])), source, progress).await?;
        incoming.dag = Some(root);
        Ok(incoming)
    }

    /// Records that stored content `id` is the file whose UnixFS id is `root` (a DAG verified
    /// on the way in).
    pub async fn record_unixfs(&self, root: Cid, id: &ContentId) -> Result<()> {
        if root.codec() != Codec::DagPb {
            return Ok(());
        }
        let dir = self.root.join(UNIXFS_INDEX);
        tokio::fs::create_dir_all(&dir).await.map_err(Error::io("create", &dir))?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}.tmp", std::process::id()));
        let entry = dir.join(root.to_string());
        tokio::fs::write(&temp, id.to_string()).await.map_err(Error::io("write", &temp))?;
        tokio::fs::rename(&temp, &entry).await.map_err(Error::io("rename", &entry))
    }

    /// The resume state of a download of the UnixFS file `root` (see [`crate::partial`]);
    /// `Ok(None)` while another transfer of the same file holds it.
    pub(crate) fn partial(&self, root: Cid) -> Result<Option<PartialDag>> {
        PartialDag::open(&self.root, root)
    }

    /// Deletes temp files, and the resume state of downloads, older than `age` left by killed
    /// processes or abandoned transfers. Younger ones may belong to a transfer still running
    /// in another process, so they are kept.
    pub async fn remove_stale_temp_files(&self, age: Duration) -> Result<usize> {
        let mut removed = 0;
        let partial = self.root.join(PARTIAL_DIR);
        for (dir, prefix) in [(&self.root, TEMP_PREFIX), (&partial, "")] {
            let mut entries = match tokio::fs::read_dir(dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("list", dir)(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(Error::io("list", dir))? {
                if !entry.file_name().to_string_lossy().starts_with(prefix) {
                    continue;
                }
                let modified = entry.metadata().await.and_then(|m| m.modified()).ok();
                let old = modified
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|d| d >= age);
                if old && tokio::fs::remove_file(entry.path()).await.is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn create_temp(&self) -> Result<(tokio::fs::File, PathBuf)> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = self.root.join(format!("{TEMP_PREFIX}{}-{n}.tmp", std::process::id()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .map_err(Error::io("create", &temp))?;
        Ok((file, temp))
    }

    /// fsync the temp file, rename it to its id, fsync the directory so the rename survives a
    /// power cut.
    async fn publish(
        &self,
        mut file: tokio::fs::File,
        mut guard: TempGuard,
        id: &ContentId,
    ) -> Result<PathBuf> {
        let temp = guard.0.clone().expect("guard holds the temp path until publish");
        file.flush().await.map_err(Error::io("flush", &temp))?;
        file.sync_all().await.map_err(Error::io("fsync", &temp))?;
        drop(file);
        let target = self.final_path(id);
        tokio::fs::rename(&temp, &target)
            .await
            .map_err(Error::io(format!("rename {} to", temp.display()), &target))?;
        guard.0 = None;
        if let Ok(dir) = tokio::fs::File::open(&self.root).await {
            // Directory fsync is not supported everywhere; the data itself is already durable.
            let _ = dir.sync_all().await;
        }
        debug!(%id, path = %target.display(), "stored");
        Ok(target)
    }
}

/// An incoming transfer into a [`LocalStore`]: bytes are hashed and written to a temp file as
/// they arrive; [`finish`](Self::finish) keeps them only if they match the [`Expected`] values.
///
/// Backends implementing [`Fetch`](crate::Fetch) write into this and never see the store.
pub struct Incoming<'a> {
    store: LocalStore,
    source: String,
    expected: Expected,
    file: Option<tokio::fs::File>,
    guard: TempGuard,
    /// sha256 and UnixFS DAG of the bytes received, built as they arrive.
    whole: FileDag,
    chunks: Option<ChunkHasher>,
    checked_chunks: usize,
    announced: Option<u64>,
    progress: &'a dyn Progress,
    /// Set for a UnixFS file fetched by its id alone: the bytes are trusted because every block
    /// of its DAG was verified ([`crate::CarFileReader`]), and only a CAR may fill this sink.
    dag: Option<Cid>,
    /// Bytes received before the part being fetched (a `concat://` file), when in one.
    part_base: Option<u64>,
}

impl std::fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("source", &self.source)
            .field("expected", &self.expected.id)
            .field("received", &self.whole.len())
            .field("announced", &self.announced)
            .finish_non_exhaustive()
    }
}

impl Incoming<'_> {
    /// Where the bytes come from, as given to [`LocalStore::stage`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The store this transfer goes into (for the resume state of a DAG download).
    pub(crate) const fn store(&self) -> &LocalStore {
        &self.store
    }

    /// Replaces the source name (a backend knows the exact URL it requested).
    pub fn set_source(&mut self, source: impl Into<String>) {
        self.source = source.into();
    }

    /// The total the sender announced ([`announce_total`](Self::announce_total)), if any.
    pub const fn announced(&self) -> Option<u64> {
        self.announced
    }

    /// Bytes received so far.
    pub const fn received(&self) -> u64 {
        self.whole.len()
    }

    /// What follows is the next part of a file stored in parts: lengths announced from now on
    /// are the part's, counted after the bytes received so far.
    pub fn begin_part(&mut self) {
        self.part_base = Some(self.whole.len());
        self.announced = None;
    }

    /// The sender announced `total` bytes (Content-Length, a zip entry's size; in a part, the
    /// part's). A total that contradicts the expected size fails at once, before any transfer.
    pub fn announce_total(&mut self, total: u64) -> Result<()> {
        if let Some(base) = self.part_base {
            let end = base + total;
            if let Some(size) = self.expected.size
                && end > size
            {
                return Err(Error::SizeMismatch {
                    source_uri: self.source.clone(),
                    expected: size,
                    actual: end,
                });
            }
            self.announced = Some(end);
            self.progress.update(self.whole.len(), self.expected.size.or(Some(end)));
            return Ok(());
        }
        if let Some(size) = self.expected.size
            && size != total
        {
            return Err(Error::SizeMismatch {
                source_uri: self.source.clone(),
                expected: size,
                actual: total,
            });
        }
        self.announced = Some(total);
        self.progress.update(self.whole.len(), Some(total));
        Ok(())
    }

    /// Takes the next bytes. Fails as soon as the content provably cannot match: more bytes
    /// than the expected size, or a complete chunk whose hash differs from the manifest.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let after = self.whole.len() + bytes.len() as u64;
        if let Some(size) = self.expected.size.or(self.announced)
            && after > size
        {
            return Err(Error::SizeMismatch {
                source_uri: self.source.clone(),
                expected: size,
                actual: after,
            });
        }
        self.whole.update(bytes);
        if let Some(chunks) = &mut self.chunks {
            chunks.update(bytes);
            if let Some(ChunkCheck::Manifest(manifest)) = &self.expected.chunks {
                let done = chunks.completed();
                while self.checked_chunks < done.len() {
                    let index = self.checked_chunks;
                    if done[index] != manifest.chunks[index] {
                        return Err(Error::ChunkMismatch {
                            source_uri: self.source.clone(),
                            index,
                            expected: hex(&manifest.chunks[index]),
                            actual: hex(&done[index]),
                        });
                    }
                    self.checked_chunks += 1;
                }
            }
        }
        let file = self.file.as_mut().expect("file present until finish");
        let temp = self.guard.0.as_deref().unwrap_or_else(|| Path::new(""));
        file.write_all(bytes).await.map_err(Error::io("write", temp))?;
        self.progress.update(after, self.expected.size.or(self.announced));
        Ok(())
    }

    /// The UnixFS root this sink was staged for by [`LocalStore::stage_dag`]: its bytes have no
    /// known sha256, so only a CAR verified against this root may fill it.
    pub const fn dag(&self) -> Option<Cid> {
        self.dag
    }

    /// Writes again the `len` bytes this transfer already wrote at `offset`: a block that a
    /// CAR sends once but the file holds twice.
    ///
    /// `offset` counts from the start of the part being fetched (a `concat://` file's part is
    /// its own DAG), else of the file.
    pub async fn repeat(&mut self, offset: u64, len: u64) -> Result<()> {
        use tokio::io::AsyncSeekExt;
        let offset = self.part_base.unwrap_or(0) + offset;
        if offset + len > self.whole.len() {
            return Err(Error::Car {
                source_uri: self.source.clone(),
                reason: format!("bytes {offset}..{} were never written", offset + len),
            });
        }
        let temp = self.guard.0.clone().expect("the temp file exists until finish");
        let file = self.file.as_mut().expect("file present until finish");
        file.flush().await.map_err(Error::io("flush", &temp))?;
        let mut reader = tokio::fs::File::open(&temp).await.map_err(Error::io("open", &temp))?;
        reader.seek(std::io::SeekFrom::Start(offset)).await.map_err(Error::io("seek", &temp))?;
        let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        reader.read_exact(&mut bytes).await.map_err(Error::io("read", &temp))?;
        self.write(&bytes).await
    }

    /// Checks the complete content and, if it matches, moves it to its final name. On any
    /// mismatch the temp file is deleted and the error names both hashes.
    pub async fn finish(mut self) -> Result<ContentId> {
        let received = self.whole.len();
        if let Some(announced) = self.announced
            && received < announced
        {
            return Err(Error::Truncated {
                source_uri: self.source.clone(),
                received,
                announced,
                reason: "the stream ended early".into(),
            });
        }
        if let Some(size) = self.expected.size
            && received != size
        {
            return Err(Error::SizeMismatch {
                source_uri: self.source.clone(),
                expected: size,
                actual: received,
            });
        }
        let dag = std::mem::take(&mut self.whole).finish();
        let actual = dag.sha256;
        if let Some(root) = self.dag
            && dag.root != root
        {
            // Every block was checked against `root`: the file was built with other parameters
            // (larger chunks, wider nodes, a trickle DAG). It is kept; the store knows it by
            // the id it would have under ours.
            tracing::info!(%root, ours = %dag.root, "a UnixFS file built with other parameters than Kubo's defaults");
        }
        if self.dag.is_none() && actual != self.expected.id {
            return Err(Error::HashMismatch {
                source_uri: self.source.clone(),
                expected: self.expected.id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        if let (Some(chunks), Some(check)) = (self.chunks.take(), &self.expected.chunks) {
            let manifest = chunks.finish();
            let expected_root = match check {
                ChunkCheck::Root { root, .. } => *root,
                ChunkCheck::Manifest(expected) => expected.root,
            };
            if manifest.root != expected_root {
                return Err(Error::MerkleMismatch {
                    source_uri: self.source.clone(),
                    chunk_size: manifest.chunk_size,
                    expected: hex(&expected_root),
                    actual: hex(&manifest.root),
                });
            }
        }
        let file = self.file.take().expect("file present until finish");
        let guard = TempGuard(self.guard.0.take());
        self.store.publish(file, guard, &actual).await?;
        self.store.record_unixfs(dag.root, &actual).await?;
        Ok(actual)
    }
}

/// Deletes the temp file unless it was renamed into place.
#[derive(Debug)]
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn hash_reader(mut reader: impl AsyncRead + Unpin, path: &Path) -> Result<ContentId> {
    let mut hasher = ContentHasher::new();
    let mut buffer = vec![0u8; COPY_BUFFER];
    loop {
        let n = reader.read(&mut buffer).await.map_err(Error::io("read", path))?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..n]);
    }
}

fn hex(hash: &Hash32) -> String {
    data_encoding::HEXLOWER.encode(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("store")).await.unwrap();
        (dir, store)
    }

    fn temp_files(store: &LocalStore) -> Vec<String> {
        std::fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[tokio::test]
    async fn put_get_has_path_of() {
        let (_dir, store) = store().await;
        let id = store.put(b"hello world").await.unwrap();
        assert_eq!(id, ContentId::of(b"hello world"));
        assert!(store.has(&id));
        assert_eq!(store.get(&id).await.unwrap(), b"hello world");
        let path = store.path_of(&id).await.unwrap().unwrap();
        assert_eq!(path.file_name().unwrap().to_string_lossy(), id.to_string());
        assert_eq!(store.put_reader(&b"hello world"[..]).await.unwrap(), id);
        assert!(temp_files(&store).is_empty());

        let missing = ContentId::of(b"nope");
        assert!(!store.has(&missing));
        assert!(store.path_of(&missing).await.unwrap().is_none());
        let message = store.get(&missing).await.unwrap_err().to_string();
        assert!(message.contains(&missing.to_string()), "{message}");
        assert!(store.remove(&id).await.unwrap());
        assert!(!store.remove(&id).await.unwrap());
    }

    #[tokio::test]
    async fn mismatch_keeps_nothing_and_names_both_hashes() {
        let (_dir, store) = store().await;
        let expected = ContentId::of(b"right");
        let mut incoming =
            store.stage(Expected::id(expected), "test://source", &crate::NoProgress).await.unwrap();
        incoming.write(b"wrong").await.unwrap();
        let message = incoming.finish().await.unwrap_err().to_string();
        assert!(message.contains(&expected.to_hex()), "{message}");
        assert!(message.contains(&ContentId::of(b"wrong").to_hex()), "{message}");
        assert!(message.contains("test://source"), "{message}");
        assert!(!store.has(&expected) && !store.has(&ContentId::of(b"wrong")));
        assert!(temp_files(&store).is_empty());
    }

    #[tokio::test]
    async fn size_and_announced_length_are_enforced() {
        let (_dir, store) = store().await;
        let id = ContentId::of(b"12345");
        let mut incoming =
            store.stage(Expected::id(id).with_size(5), "s", &crate::NoProgress).await.unwrap();
        assert!(matches!(
            incoming.announce_total(6),
            Err(Error::SizeMismatch { expected: 5, actual: 6, .. })
        ));
        incoming.write(b"1234").await.unwrap();
        assert!(matches!(
            incoming.write(b"56").await,
            Err(Error::SizeMismatch { expected: 5, actual: 6, .. })
        ));
        drop(incoming);

        let mut incoming = store.stage(Expected::id(id), "s", &crate::NoProgress).await.unwrap();
        incoming.announce_total(5).unwrap();
        incoming.write(b"123").await.unwrap();
        let error = incoming.finish().await.unwrap_err();
        assert!(matches!(error, Error::Truncated { received: 3, announced: 5, .. }), "{error}");
        assert!(temp_files(&store).is_empty());
    }

    #[tokio::test]
    async fn chunk_manifest_stops_at_the_first_bad_chunk() {
        let (_dir, store) = store().await;
        let good: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let manifest = ChunkManifest::from_bytes(&good, 100).unwrap();
        let mut bad = good.clone();
        bad[350] ^= 0xff;
        let mut incoming = store
            .stage(Expected::with_manifest(manifest.clone()), "s", &crate::NoProgress)
            .await
            .unwrap();
        incoming.write(&bad[..300]).await.unwrap();
        let error = incoming.write(&bad[300..450]).await.unwrap_err();
        assert!(matches!(error, Error::ChunkMismatch { index: 3, .. }), "{error}");

        let mut incoming = store
            .stage(Expected::with_manifest(manifest.clone()), "s", &crate::NoProgress)
            .await
            .unwrap();
        for piece in good.chunks(33) {
            incoming.write(piece).await.unwrap();
        }
        assert_eq!(incoming.finish().await.unwrap(), manifest.content_id);
    }

    #[tokio::test]
    async fn merkle_root_is_checked_at_the_end() {
        let (_dir, store) = store().await;
        let data = vec![7u8; 300];
        let manifest = ChunkManifest::from_bytes(&data, 100).unwrap();
        let expected = Expected::id(manifest.content_id).with_merkle_root(100, [0u8; 32]);
        let mut incoming = store.stage(expected, "s", &crate::NoProgress).await.unwrap();
        incoming.write(&data).await.unwrap();
        let message = incoming.finish().await.unwrap_err().to_string();
        assert!(
            message.contains("Merkle root mismatch") && message.contains(&hex(&manifest.root)),
            "{message}"
        );
        let expected = Expected::id(manifest.content_id).with_merkle_root(100, manifest.root);
        let mut incoming = store.stage(expected, "s", &crate::NoProgress).await.unwrap();
        incoming.write(&data).await.unwrap();
        incoming.finish().await.unwrap();
    }

    #[tokio::test]
    async fn verify_on_read_detects_corruption() {
        let (_dir, store) = store().await;
        let id = store.put(b"precious").await.unwrap();
        std::fs::write(store.root().join(id.to_string()), b"tampered").unwrap();
        assert_eq!(store.get(&id).await.unwrap(), b"tampered");
        let store = store.with_verify_on_read(true);
        let message = store.get(&id).await.unwrap_err().to_string();
        assert!(message.contains("corrupt") && message.contains(&id.to_hex()), "{message}");
        assert!(matches!(store.path_of(&id).await, Err(Error::Corrupt { .. })));
    }

    #[tokio::test]
    async fn progress_reports_done_and_total() {
        let (_dir, store) = store().await;
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |done: u64, total: Option<u64>| seen.lock().unwrap().push((done, total));
        let data = b"0123456789";
        let mut incoming =
            store.stage(Expected::id(ContentId::of(data)), "s", &progress).await.unwrap();
        incoming.announce_total(10).unwrap();
        incoming.write(&data[..4]).await.unwrap();
        incoming.write(&data[4..]).await.unwrap();
        incoming.finish().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![(0, Some(10)), (4, Some(10)), (10, Some(10))]);
    }
}
