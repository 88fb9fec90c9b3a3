//! The parsed workspace kept on disk between runs (issue 21): a reopened workspace re-parses only
//! the files whose content changed.
//!
//! One snapshot per workspace root, `<cache>/index/<root hash>.units`: every [`FileUnit`] of the
//! last build without its text (the text is read from the workspace anyway, and a unit is reused
//! only when the text's blake3 hash equals the stored one). The snapshot belongs to the binary
//! that wrote it: parsing changes between builds of Locus, so a snapshot written by another build
//! (version, size or modification time of the executable) is ignored, as is one that is truncated,
//! corrupt or unreadable. A snapshot is only ever an optimisation: any problem falls back to
//! parsing, counted in [`Reuse`].
//!
//! Writes go to a temporary file renamed over the old one, so a reader never sees half a
//! snapshot and concurrent writers (two editors on one workspace) leave one whole snapshot.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bincode::Options;
use locus_syntax::{Entity, Import, Lang};
use serde::{Deserialize, Serialize};

use crate::unit::{Calls, FileUnit, TermCounts};

const MAGIC: &[u8; 8] = b"LOCUSIX\x01";

/// What a build took from the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reuse {
    /// Files whose parsed unit came from the snapshot.
    pub reused: usize,
    /// Files parsed (new, changed, or no usable snapshot).
    pub parsed: usize,
    /// Units of the snapshot no file matched any more (changed or removed files).
    pub dropped: usize,
    /// Why a snapshot that existed could not be used (another build of Locus, corrupt).
    pub rejected: Option<String>,
}

impl Reuse {
    /// Whether the snapshot differs from what was built (then it is worth writing again).
    pub fn changed(&self) -> bool {
        self.parsed > 0 || self.dropped > 0 || self.rejected.is_some()
    }
}

/// Where a workspace's snapshot lives under `cache` (`<cache>/index/<hash of the root>.units`).
pub fn snapshot_path(cache: &Path, root: &Path) -> PathBuf {
    let h = blake3::hash(root.as_os_str().as_encoded_bytes());
    cache.join("index").join(format!("{}.units", &h.to_hex()[..24]))
}

/// The units of a snapshot by path, or `None` when there is none usable. `Err` only carries
/// the reason a present snapshot was rejected (for the log); callers parse instead.
pub fn load(path: &Path) -> Result<Option<HashMap<String, Stored>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let size = file.metadata().map_err(|e| format!("reading {}: {e}", path.display()))?.len();
    // Decoded as it is read: the whole file is never in memory beside its units. Hashed in the
    // buffer's chunks, below the decoder's many small reads.
    let mut file = file;
    let build = build_id();
    let mut head = [0u8; MAGIC.len() + 8 + 32];
    if size < (head.len() + 32) as u64 || file.read_exact(&mut head).is_err() || &head[..MAGIC.len()] != MAGIC
    {
        return Err(format!("{} is not a Locus index snapshot", path.display()));
    }
    let n = u64::from_le_bytes(head[MAGIC.len()..MAGIC.len() + 8].try_into().unwrap_or_default());
    if head[MAGIC.len() + 8..] != build[..] {
        return Err(format!("{} was written by another build of Locus", path.display()));
    }
    let corrupt = || format!("{} is truncated or corrupt", path.display());
    if n.checked_add(head.len() as u64 + 32) != Some(size) {
        return Err(corrupt());
    }
    let mut body = BufReader::with_capacity(
        1 << 16,
        Hashing { inner: file.take(n), hasher: blake3::Hasher::new(), len: 0 },
    );
    // The limit makes a damaged length fail before it is allocated (the hash is known only at
    // the end); the encoding is `bincode::serialize`'s.
    let units: Vec<Stored> = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(n)
        .deserialize_from(&mut body)
        .map_err(|e| format!("{} is truncated or corrupt (decoding: {e})", path.display()))?;
    let unread = body.buffer().len();
    let Hashing { inner, hasher, len } = body.into_inner();
    let mut sum = [0u8; 32];
    if unread != 0
        || len != n
        || inner.into_inner().read_exact(&mut sum).is_err()
        || hasher.finalize().as_bytes() != &sum
    {
        return Err(corrupt());
    }
    // Marks the snapshot as recently used, for the pruning in `save`.
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    Ok(Some(units.into_iter().map(|u| (u.path.clone(), u)).collect()))
}

/// A reader or writer that hashes (blake3) and counts the bytes passing through it.
struct Hashing<T> {
    inner: T,
    hasher: blake3::Hasher,
    len: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.hasher.update(&buf[..k]);
        self.len += k as u64;
        Ok(k)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hasher.update(&buf[..k]);
        self.len += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the snapshot of `units` (atomically: a temporary file renamed into place), then
/// deletes the least recently used snapshots beyond 32 workspaces or 1 GiB.
pub fn save(path: &Path, units: &[Arc<FileUnit>]) -> std::io::Result<()> {
    save_with_limits(path, units, KEEP_SNAPSHOTS, KEEP_BYTES)
}

/// [`save`] with other limits on what is kept.
pub fn save_with_limits(
    path: &Path,
    units: &[Arc<FileUnit>],
    keep: usize,
    keep_bytes: u64,
) -> std::io::Result<()> {
    let stored: Vec<StoredRef<'_>> = units.iter().map(|u| StoredRef::of(u)).collect();
    let dir = path.parent().ok_or_else(|| std::io::Error::other("snapshot path has no folder"))?;
    std::fs::create_dir_all(dir)?;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("units");
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        // The body's length is written once it is known, at the end.
        f.write_all(&[&MAGIC[..], &0u64.to_le_bytes(), &build_id()].concat())?;
        // Encoded as it is written (no second copy of the workspace's units in memory), hashed
        // in the buffer's chunks.
        let mut body =
            BufWriter::with_capacity(1 << 16, Hashing { inner: f, hasher: blake3::Hasher::new(), len: 0 });
        bincode::serialize_into(&mut body, &stored).map_err(std::io::Error::other)?;
        let Hashing { inner: mut f, hasher, len } = body.into_inner().map_err(|e| e.into_error())?;
        f.write_all(hasher.finalize().as_bytes())?;
        f.seek(SeekFrom::Start(MAGIC.len() as u64))?;
        f.write_all(&len.to_le_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    prune(dir, keep, keep_bytes);
    r
}

/// At most this many workspaces' snapshots are kept (the least recently used go first)...
const KEEP_SNAPSHOTS: usize = 32;
/// ... and at most this many bytes of them (a sympy-size workspace takes ~50 MB).
const KEEP_BYTES: u64 = 1 << 30;

/// Deletes the least recently used snapshots in `dir` beyond `keep` files or `keep_bytes`.
fn prune(dir: &Path, keep: usize, keep_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut snaps: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "units"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    snaps.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut total = 0u64;
    for (i, (_, len, path)) in snaps.into_iter().enumerate() {
        total += len;
        if i >= keep || (i > 0 && total > keep_bytes) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// 32 bytes naming the running build: its version and its executable's size and modification
/// time (a rebuilt binary may parse differently, so it never trusts an older build's units).
fn build_id() -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    if let Some(meta) = std::env::current_exe().ok().and_then(|p| std::fs::metadata(p).ok()) {
        h.update(&meta.len().to_le_bytes());
        if let Ok(t) = meta.modified().map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default()) {
            h.update(&t.as_nanos().to_le_bytes());
        }
    }
    *h.finalize().as_bytes()
}

/// A unit as stored: everything but the text.
#[derive(Deserialize)]
pub struct Stored {
    path: String,
    lang: Lang,
    hash: [u8; 32],
    entities: Vec<Entity>,
    imports: Vec<Import>,
    calls: Calls,
    syntax_errors: u32,
    docs: Vec<TermCounts>,
    doc_lens: Vec<u32>,
    is_test: bool,
}

impl Stored {
    /// Whether this is the unit of a text of `lang` with blake3 `hash` ([`Stored::unit`]).
    pub fn matches(&self, lang: Lang, hash: [u8; 32]) -> bool {
        self.lang == lang && self.hash == hash && self.entities.len() == self.docs.len()
    }

    /// The unit again, when `text` is what it was built from (same language and hash).
    pub fn unit(self, lang: Lang, text: Arc<str>, hash: [u8; 32]) -> Option<FileUnit> {
        if !self.matches(lang, hash) {
            return None;
        }
        Some(FileUnit {
            path: self.path,
            lang: self.lang,
            text,
            hash: self.hash,
            entities: self.entities,
            imports: self.imports,
            calls: self.calls,
            syntax_errors: self.syntax_errors,
            docs: self.docs,
            doc_lens: self.doc_lens,
            is_test: self.is_test,
        })
    }
}

/// The same fields as [`Stored`], borrowed for writing.
#[derive(Serialize)]
struct StoredRef<'a> {
    path: &'a str,
    lang: Lang,
    hash: [u8; 32],
    entities: &'a [Entity],
    imports: &'a [Import],
    calls: &'a Calls,
    syntax_errors: u32,
    docs: &'a [TermCounts],
    doc_lens: &'a [u32],
    is_test: bool,
}

impl<'a> StoredRef<'a> {
    fn of(u: &'a FileUnit) -> Self {
        StoredRef {
            path: &u.path,
            lang: u.lang,
            hash: u.hash,
            entities: &u.entities,
            imports: &u.imports,
            calls: &u.calls,
            syntax_errors: u.syntax_errors,
            docs: &u.docs,
            doc_lens: &u.doc_lens,
            is_test: u.is_test,
        }
    }
}
