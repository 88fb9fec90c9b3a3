//! The on-disk vector cache: content hash → embedding, one append-only file per model.
//!
//! File layout (`vectors.bin`, little-endian):
//! - header, [`HEADER_LEN`] bytes: magic `LOCUSVEC`, format version (u32), dimension (u32),
//!   sha256 of the model id (32 bytes);
//! - records, [`RECORD_LEN`] bytes each: key (32 bytes), [`DIM`] f32, then the first
//!   8 bytes of sha256(key ‖ floats) as a checksum.
//!
//! Opening reads every record into a map and stops at the first short or failing
//! record; the file is cut there, so a crash mid-write (or any damage) costs the
//! records from that point on and is never read back as a vector. A header that does
//! not match (other format, dimension or model) starts the file afresh: it is a cache.
//!
//! One process writes at a time: `open` takes an exclusive advisory lock on the file.
//! A second process (another editor on the same workspace) gets the vectors present
//! at open, and keeps the ones it computes in memory only.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::EmbedError;
use crate::DIM;

const MAGIC: &[u8; 8] = b"LOCUSVEC";
const FORMAT_VERSION: u32 = 1;
/// magic + version + dimension + sha256(model id).
pub const HEADER_LEN: usize = 8 + 4 + 4 + 32;
const KEY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 8;
/// key + vector + checksum.
pub const RECORD_LEN: usize = KEY_LEN + DIM * 4 + CHECKSUM_LEN;
/// The file name inside the directory given to [`VectorStore::open`].
pub const FILE_NAME: &str = "vectors.bin";

/// A thread-safe map from a 32-byte content hash to a [`DIM`]-float vector, persisted on disk.
pub struct VectorStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    map: HashMap<[u8; 32], Box<[f32]>>,
    /// `None` when another process holds the write lock: vectors stay in memory.
    file: Option<File>,
    /// Where the next record goes: the end of the last good record.
    end: u64,
    /// Bytes cut from a damaged or unfinished tail when the file was opened.
    dropped_bytes: u64,
}

impl VectorStore {
    /// Opens (or creates) `dir/vectors.bin` for vectors of `model_id`.
    /// Callers pass a folder per model, e.g. `<cache>/vectors/<model_id>/`.
    pub fn open(dir: &Path, model_id: &str) -> Result<VectorStore, EmbedError> {
        std::fs::create_dir_all(dir).map_err(|e| EmbedError::io(dir, e))?;
        let path = dir.join(FILE_NAME);
        let io = |e| EmbedError::io(&path, e);
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        let writable = match file.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        };

        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let header = header(model_id);
        let (map, good_len) = if bytes.len() >= HEADER_LEN && bytes[..HEADER_LEN] == header {
            let (map, records) = read_records(&bytes[HEADER_LEN..]);
            (map, (HEADER_LEN + records * RECORD_LEN) as u64)
        } else {
            (HashMap::new(), 0)
        };
        let dropped_bytes = bytes.len() as u64 - good_len;

        let mut end = good_len;
        if writable {
            if good_len == 0 {
                file.set_len(0).map_err(io)?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                file.write_all(&header).map_err(io)?;
                end = HEADER_LEN as u64;
            } else if dropped_bytes > 0 {
                file.set_len(good_len).map_err(io)?;
            }
        }
        Ok(VectorStore {
            path,
            inner: Mutex::new(Inner { map, file: writable.then_some(file), end, dropped_bytes }),
        })
    }

    /// The vector stored under `key`, if any.
    pub fn get(&self, key: &[u8; 32]) -> Option<Vec<f32>> {
        self.lock().map.get(key).map(|v| v.to_vec())
    }

    /// Stores vectors; keys already present are kept as they are. Each vector must have
    /// [`DIM`] floats. Written with one append; on a write error nothing of this call is
    /// kept on disk (the file is cut back), the vectors stay available in memory.
    pub fn put_many(&self, items: &[([u8; 32], Vec<f32>)]) -> Result<(), EmbedError> {
        if let Some((_, v)) = items.iter().find(|(_, v)| v.len() != DIM) {
            return Err(EmbedError::Config(format!(
                "a vector of {} floats cannot be stored; {DIM} expected",
                v.len()
            )));
        }
        let mut inner = self.lock();
        let mut buf = Vec::new();
        for (key, v) in items {
            if inner.map.contains_key(key) {
                continue;
            }
            let start = buf.len();
            buf.extend_from_slice(key);
            for x in v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            let sum = checksum(&buf[start..]);
            buf.extend_from_slice(&sum);
            inner.map.insert(*key, v.clone().into_boxed_slice());
        }
        if buf.is_empty() {
            return Ok(());
        }
        let end = inner.end;
        let Some(file) = inner.file.as_mut() else {
            return Ok(());
        };
        let written = file.seek(SeekFrom::Start(end)).and_then(|_| file.write_all(&buf));
        match written {
            Ok(()) => {
                inner.end = end + buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut back to the last whole record, so later appends stay aligned.
                let _ = file.set_len(end);
                Err(EmbedError::io(&self.path, e))
            }
        }
    }

    /// How many vectors the store holds.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes cut from the end of the file when it was opened (damaged or unfinished records).
    pub fn dropped_bytes(&self) -> u64 {
        self.lock().dropped_bytes
    }

    /// False when another process writes this store: new vectors are then kept in memory only.
    pub fn is_writable(&self) -> bool {
        self.lock().file.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn header(model_id: &str) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(DIM as u32).to_le_bytes());
    h[16..].copy_from_slice(&Sha256::digest(model_id.as_bytes()));
    h
}

fn checksum(record_body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(record_body);
    let mut sum = [0u8; CHECKSUM_LEN];
    sum.copy_from_slice(&digest[..CHECKSUM_LEN]);
    sum
}

/// The records of `body` up to the first short or damaged one, and how many were good.
fn read_records(body: &[u8]) -> (HashMap<[u8; 32], Box<[f32]>>, usize) {
    let mut map = HashMap::new();
    let mut good = 0;
    for record in body.chunks_exact(RECORD_LEN) {
        let (content, sum) = record.split_at(RECORD_LEN - CHECKSUM_LEN);
        if checksum(content) != sum {
            break;
        }
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&content[..KEY_LEN]);
        let v: Box<[f32]> = content[KEY_LEN..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        map.entry(key).or_insert(v);
        good += 1;
    }
    (map, good)
}
