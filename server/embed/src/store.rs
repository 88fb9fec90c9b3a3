//! The on-disk vector cache: content hash → embedding, one append-only file per model.
//!
//! File layout (`vectors.bin`, little-endian):
//! - header, [`HEADER_LEN`] bytes: magic `LOCUSVEC`, format version (u32), dimension (u32),
//!   sha256 of the model id (32 bytes);
//! - records, [`RECORD_LEN`] bytes each: key (32 bytes), [`DIM`] f32, then the first
//!   8 bytes of sha256(key ‖ floats) as a checksum.
//!
//! Opening reads the records one by one, keeping only each key's position (the vectors stay on
//! disk: a cache that grew over many workspaces costs 40 bytes a vector in memory, not 1.5 KB),
//! and stops at the first short or failing record; the file is cut there, so a crash mid-write
//! (or any damage) costs the records from that point on and is never read back as a vector.
//! A vector is read from its position when asked for, and its checksum checked again. A
//! header that does not match (other format, dimension or model) starts the file afresh: it
//! is a cache.
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
    /// Where each stored vector's record starts in the file.
    offsets: HashMap<[u8; 32], u64>,
    /// Vectors not on disk: computed while another process writes the file, or whose write
    /// failed.
    memory: HashMap<[u8; 32], Box<[f32]>>,
    /// Reads records (and writes them, when `writable`).
    file: File,
    /// `false` when another process holds the write lock: new vectors stay in `memory`.
    writable: bool,
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
        let file_len = file.metadata().map_err(io)?.len();
        let header = header(model_id);
        let mut head = [0u8; HEADER_LEN];
        let header_ok = file_len >= HEADER_LEN as u64 && file.read_exact(&mut head).is_ok() && head == header;
        let (offsets, good_len) = if header_ok {
            let mut reader = std::io::BufReader::with_capacity(1 << 20, &file);
            read_offsets(&mut reader)
        } else {
            (HashMap::new(), 0)
        };
        let dropped_bytes = file_len - good_len;

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
            inner: Mutex::new(Inner { offsets, memory: HashMap::new(), file, writable, end, dropped_bytes }),
        })
    }

    /// The vector stored under `key`, if any (a record that no longer reads back whole is
    /// forgotten: the vector is then computed and stored again).
    pub fn get(&self, key: &[u8; 32]) -> Option<Vec<f32>> {
        let mut inner = self.lock();
        if let Some(v) = inner.memory.get(key) {
            return Some(v.to_vec());
        }
        let at = *inner.offsets.get(key)?;
        let mut record = vec![0u8; RECORD_LEN];
        let read = inner.file.seek(SeekFrom::Start(at)).and_then(|_| inner.file.read_exact(&mut record));
        match read.ok().and_then(|_| decode(&record)) {
            Some((k, v)) if k == *key => Some(v.into_vec()),
            _ => {
                inner.offsets.remove(key);
                None
            }
        }
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
        let mut fresh: Vec<&([u8; 32], Vec<f32>)> = Vec::new();
        for item in items {
            let key = &item.0;
            if inner.offsets.contains_key(key)
                || inner.memory.contains_key(key)
                || fresh.iter().any(|f| f.0 == *key)
            {
                continue;
            }
            let start = buf.len();
            buf.extend_from_slice(key);
            for x in &item.1 {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            let sum = checksum(&buf[start..]);
            buf.extend_from_slice(&sum);
            fresh.push(item);
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let end = inner.end;
        let written = if inner.writable {
            inner.file.seek(SeekFrom::Start(end)).and_then(|_| inner.file.write_all(&buf)).map_err(Some)
        } else {
            Err(None)
        };
        match written {
            Ok(()) => {
                for (i, (key, _)) in fresh.iter().enumerate() {
                    inner.offsets.insert(*key, end + (i * RECORD_LEN) as u64);
                }
                inner.end = end + buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Kept in memory for this process; on a write error the file is cut back to the
                // last whole record, so later appends stay aligned.
                for (key, v) in fresh {
                    inner.memory.insert(*key, v.clone().into_boxed_slice());
                }
                match e {
                    None => Ok(()),
                    Some(e) => {
                        let _ = inner.file.set_len(end);
                        Err(EmbedError::io(&self.path, e))
                    }
                }
            }
        }
    }

    /// How many vectors the store holds.
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.offsets.len() + inner.memory.len()
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
        self.lock().writable
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

/// The key of a whole record whose checksum holds.
fn checked_key(record: &[u8]) -> Option<[u8; 32]> {
    let (content, sum) = record.split_at(RECORD_LEN - CHECKSUM_LEN);
    if checksum(content) != sum {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&content[..KEY_LEN]);
    Some(key)
}

/// The key and vector of a whole record whose checksum holds.
fn decode(record: &[u8]) -> Option<([u8; 32], Box<[f32]>)> {
    let key = checked_key(record)?;
    let floats = &record[KEY_LEN..RECORD_LEN - CHECKSUM_LEN];
    Some((key, floats.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
}

/// The position of every record after the header up to the first short or damaged one, and
/// the length of the good part of the file.
fn read_offsets(reader: &mut impl Read) -> (HashMap<[u8; 32], u64>, u64) {
    let mut offsets = HashMap::new();
    let mut at = HEADER_LEN as u64;
    let mut record = vec![0u8; RECORD_LEN];
    while reader.read_exact(&mut record).is_ok() {
        let Some(key) = checked_key(&record) else { break };
        offsets.entry(key).or_insert(at);
        at += RECORD_LEN as u64;
    }
    (offsets, at)
}
