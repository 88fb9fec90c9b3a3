//! The vector cache on disk: round trip, and recovery from cut or damaged files.

use std::fs::OpenOptions;

use locus_embed::{VectorStore, DIM};

fn key(i: u8) -> [u8; 32] {
    [i; 32]
}

fn vector(i: u8) -> Vec<f32> {
    (0..DIM).map(|j| f32::from(i) + j as f32 / 1000.0).collect()
}

const MODEL: &str = "all-minilm-l6-v2-int8:0123456789ab";

#[test]
fn round_trip_through_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = VectorStore::open(dir.path(), MODEL).unwrap();
        assert!(s.is_empty() && s.is_writable());
        s.put_many(&[(key(1), vector(1)), (key(2), vector(2))]).unwrap();
        s.put_many(&[(key(2), vector(9)), (key(3), vector(3))]).unwrap(); // key 2 kept as first stored
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(&key(2)), Some(vector(2)));
    }
    let s = VectorStore::open(dir.path(), MODEL).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.dropped_bytes(), 0);
    for i in 1..=3 {
        assert_eq!(s.get(&key(i)), Some(vector(i)));
    }
    assert_eq!(s.get(&key(4)), None);
}

#[test]
fn a_cut_tail_is_dropped_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let s = VectorStore::open(dir.path(), MODEL).unwrap();
        s.put_many(&[(key(1), vector(1)), (key(2), vector(2)), (key(3), vector(3))]).unwrap();
        s.path().to_path_buf()
    };
    // A crash in the middle of writing the third record.
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 100).unwrap();

    {
        let s = VectorStore::open(dir.path(), MODEL).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.dropped_bytes() > 0);
        assert_eq!(s.get(&key(3)), None);
        s.put_many(&[(key(4), vector(4))]).unwrap();
    }
    let s = VectorStore::open(dir.path(), MODEL).unwrap();
    assert_eq!(s.dropped_bytes(), 0, "the cut record was removed, the new one is whole");
    assert_eq!(s.len(), 3);
    assert_eq!(s.get(&key(4)), Some(vector(4)));
}

#[test]
fn a_damaged_record_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let s = VectorStore::open(dir.path(), MODEL).unwrap();
        s.put_many(&[(key(1), vector(1)), (key(2), vector(2)), (key(3), vector(3))]).unwrap();
        s.path().to_path_buf()
    };
    // Flip one byte inside the second record's vector.
    let mut bytes = std::fs::read(&path).unwrap();
    let second = bytes.len() - 2 * (32 + DIM * 4 + 8);
    bytes[second + 40] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let s = VectorStore::open(dir.path(), MODEL).unwrap();
    assert_eq!(s.get(&key(1)), Some(vector(1)));
    assert_eq!(s.get(&key(2)), None, "a record that fails its checksum is never returned");
    assert_eq!(s.len(), 1);
}

#[test]
fn another_model_or_garbage_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = VectorStore::open(dir.path(), MODEL).unwrap();
        s.put_many(&[(key(1), vector(1))]).unwrap();
    }
    let s = VectorStore::open(dir.path(), "some-other-model:000000000000").unwrap();
    assert!(s.is_empty());
    drop(s);

    let garbage = tempfile::tempdir().unwrap();
    std::fs::write(garbage.path().join("vectors.bin"), b"not a vector file at all").unwrap();
    let s = VectorStore::open(garbage.path(), MODEL).unwrap();
    assert!(s.is_empty());
    s.put_many(&[(key(5), vector(5))]).unwrap();
    drop(s);
    assert_eq!(VectorStore::open(garbage.path(), MODEL).unwrap().get(&key(5)), Some(vector(5)));
}

#[test]
fn a_second_writer_reads_but_keeps_new_vectors_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let first = VectorStore::open(dir.path(), MODEL).unwrap();
    first.put_many(&[(key(1), vector(1))]).unwrap();

    let second = VectorStore::open(dir.path(), MODEL).unwrap();
    assert!(!second.is_writable());
    assert_eq!(second.get(&key(1)), Some(vector(1)));
    second.put_many(&[(key(2), vector(2))]).unwrap();
    assert_eq!(second.get(&key(2)), Some(vector(2)));
    drop(second);
    drop(first);
    let again = VectorStore::open(dir.path(), MODEL).unwrap();
    assert_eq!(again.len(), 1, "only the lock holder wrote to the file");
}

#[test]
fn wrong_dimension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = VectorStore::open(dir.path(), MODEL).unwrap();
    assert!(s.put_many(&[(key(1), vec![0.0; 3])]).is_err());
    assert!(s.is_empty());
}

#[test]
fn a_record_damaged_after_opening_is_forgotten_and_stored_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = VectorStore::open(dir.path(), MODEL).unwrap();
    s.put_many(&[(key(1), vector(1)), (key(2), vector(2))]).unwrap();
    // Vectors are read from disk when asked for: damage the second record's floats now.
    let path = s.path().to_path_buf();
    let mut bytes = std::fs::read(&path).unwrap();
    // The header is 48 bytes, a record 32 (key) + 4 × DIM + 8 (checksum).
    let at = 48 + (32 + 4 * DIM + 8) + 40;
    bytes[at] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(s.get(&key(1)), Some(vector(1)));
    assert_eq!(s.get(&key(2)), None, "a record failing its checksum is never a vector");
    assert_eq!(s.len(), 1);
    s.put_many(&[(key(2), vector(2))]).unwrap();
    assert_eq!(s.get(&key(2)), Some(vector(2)));
    drop(s);
    // Reopened: the damaged record ends the good part; the tail after it (the re-stored
    // vector) is cut with it, and the first record stays.
    let s = VectorStore::open(dir.path(), MODEL).unwrap();
    assert_eq!(s.get(&key(1)), Some(vector(1)));
    assert_eq!(s.get(&key(2)), None);
}
