//! Dense retrieval over an index snapshot: entity texts embedded with the ONNX encoder, cached
//! on disk by content hash, searched exactly (a dot product per vector; vectors are unit length).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use locus_embed::{EmbedConfig, EmbedError, Embedder, VectorStore, BATCH_SIZE, DIM};
use locus_index::{EntityId, Index};
use locus_search::tools::Semantic;
use rustc_hash::FxHashMap;

/// Characters of an entity's body put into its text; the encoder reads 256 tokens at most.
const MAX_BODY_CHARS: usize = 1600;

/// The encoder and its on-disk vector cache.
pub struct Encoder {
    pub embedder: Embedder,
    pub store: VectorStore,
}

impl Encoder {
    /// Loads the model and runtime (settings, then environment, then the cache directory) and
    /// opens the vector cache. The error says how to install what is missing.
    pub fn load(cfg: &EmbedConfig) -> Result<Encoder, EmbedError> {
        let embedder = Embedder::load(cfg)?;
        let dir = locus_embed::cache_dir().join("vectors").join(embedder.model_id().replace([':', '/'], "-"));
        let store = VectorStore::open(&dir, embedder.model_id())?;
        Ok(Encoder { embedder, store })
    }

    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }
}

/// Vectors for the entities of one index snapshot.
pub struct DenseIndex {
    /// The entity of each row of `vecs`.
    ids: Vec<EntityId>,
    vecs: Vec<f32>,
    /// Entity id -> its row in `vecs`.
    row: FxHashMap<EntityId, u32>,
    /// The last query embedded and its vector: the tail ranking (and a feature dump) asks for
    /// the vector again after the semantic tool's call (`similarity` of the candidates).
    last: Mutex<Option<(String, Vec<f32>)>>,
    encoder: Arc<Encoder>,
    /// Entities that should have a vector (ready = all of them).
    pub wanted: usize,
}

/// What is embedded: function-level entities and files.
fn wanted(ix: &Index, id: EntityId) -> bool {
    let k = ix.entity(id).kind;
    k.is_item() || k == locus_syntax::Kind::File
}

/// The text the encoder sees for an entity: where it is, what it is called, its header, its doc
/// and the start of its body.
pub fn entity_text(ix: &Index, id: EntityId) -> String {
    let e = ix.entity(id);
    let unit = &ix.file_of(id).unit;
    let body = unit.text.get(e.span.start_byte as usize..e.span.end_byte as usize).unwrap_or("");
    let mut end = body.len().min(MAX_BODY_CHARS);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} {}\n{}\n{}\n{}", unit.path, e.qual, e.signature, e.doc, &body[..end])
}

fn key(model: &str, text: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(model.as_bytes());
    h.update(&[0]);
    h.update(text.as_bytes());
    *h.finalize().as_bytes()
}

impl DenseIndex {
    /// Builds the vectors of `ix`: cached ones are read, missing ones embedded in batches
    /// (`progress(done, total)` after each) unless `embed_missing` is false. Stops early, with
    /// what is ready, when `cancel` is set.
    pub fn build(
        ix: &Index,
        encoder: Arc<Encoder>,
        embed_missing: bool,
        cancel: &AtomicBool,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<DenseIndex, EmbedError> {
        let model = encoder.model_id().to_string();
        let mut ids = Vec::new();
        let mut vecs = Vec::new();
        let mut missing: Vec<(EntityId, String, [u8; 32])> = Vec::new();
        let mut wanted_n = 0;
        for id in (0..ix.n_entities() as u32).map(EntityId) {
            if !wanted(ix, id) {
                continue;
            }
            wanted_n += 1;
            let text = entity_text(ix, id);
            let k = key(&model, &text);
            match encoder.store.get(&k) {
                Some(v) if v.len() == DIM => {
                    ids.push(id);
                    vecs.extend_from_slice(&v);
                }
                _ => missing.push((id, text, k)),
            }
        }
        let total = missing.len();
        if embed_missing {
            // Batches of similar length waste the least padding.
            missing.sort_by_key(|m| m.1.len());
            let mut done = 0;
            for chunk in missing.chunks(BATCH_SIZE * 4) {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let texts: Vec<&str> = chunk.iter().map(|m| m.1.as_str()).collect();
                let out = encoder.embedder.embed(&texts)?;
                let mut items = Vec::with_capacity(chunk.len());
                for (m, v) in chunk.iter().zip(out) {
                    ids.push(m.0);
                    vecs.extend_from_slice(&v);
                    items.push((m.2, v));
                }
                encoder.store.put_many(&items)?;
                done += chunk.len();
                progress(done, total);
            }
        }
        let row = ids.iter().enumerate().map(|(r, &id)| (id, r as u32)).collect();
        Ok(DenseIndex { ids, vecs, row, last: Mutex::new(None), encoder, wanted: wanted_n })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn model_id(&self) -> &str {
        self.encoder.model_id()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The query's vector, from the one-entry cache or the encoder.
    fn query_vector(&self, query: &str) -> Option<Vec<f32>> {
        if let Some((q, v)) = self.last.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if q == query {
                return Some(v.clone());
            }
        }
        let v = self.encoder.embedder.embed(&[query]).ok()?.pop()?;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((query.to_string(), v.clone()));
        Some(v)
    }
}

impl Semantic for DenseIndex {
    fn nearest(&self, query: &str, k: usize) -> Vec<(EntityId, f32)> {
        let Some(q) = self.query_vector(query) else { return Vec::new() };
        let mut scored: Vec<(EntityId, f32)> = self
            .vecs
            .chunks_exact(DIM)
            .zip(&self.ids)
            .map(|(v, &id)| (id, v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>()))
            .collect();
        let by = |a: &(EntityId, f32), b: &(EntityId, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > k {
            scored.select_nth_unstable_by(k, by);
            scored.truncate(k);
        }
        scored.sort_by(by);
        scored
    }

    fn similarity(&self, query: &str, ids: &[EntityId]) -> Vec<f32> {
        let Some(q) = self.query_vector(query) else { return vec![0.0; ids.len()] };
        ids.iter()
            .map(|id| match self.row.get(id) {
                Some(&r) => {
                    let v = &self.vecs[r as usize * DIM..(r as usize + 1) * DIM];
                    v.iter().zip(&q).map(|(a, b)| a * b).sum()
                }
                None => 0.0,
            })
            .collect()
    }

    fn ready(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use locus_embed::{EmbedConfig, Embedder, VectorStore};
    use locus_index::{EntityId, FileUnit, Index, Skipped};
    use locus_search::tools::Semantic;

    use super::{DenseIndex, Encoder};

    #[test]
    fn similarity_is_the_cosine_nearest_ranks_by() {
        let embedder = match Embedder::load(&EmbedConfig::default()) {
            Ok(e) => e,
            Err(e) => return crate::testing::missing(&format!("the encoder ({e})")),
        };
        let dir = tempfile::tempdir().unwrap();
        let store = VectorStore::open(dir.path(), embedder.model_id()).unwrap();
        let text = "def parse_date(s):\n    return s.split('-')\n\nclass Invoice:\n    def total(self):\n        return 0\n";
        let unit = FileUnit::build("a.py".into(), locus_syntax::Lang::Python, Arc::from(text));
        let ix = Index::from_units(PathBuf::from("/ws"), vec![Arc::new(unit)], Skipped::default());
        let enc = Arc::new(Encoder { embedder, store });
        let dense = DenseIndex::build(&ix, enc, true, &AtomicBool::new(false), |_, _| {}).unwrap();
        let query = "dates are parsed wrong";
        let near = dense.nearest(query, 10);
        assert!(!near.is_empty());
        let ids: Vec<EntityId> = near.iter().map(|n| n.0).collect();
        let sims = dense.similarity(query, &ids);
        for (n, s) in near.iter().zip(&sims) {
            assert!((n.1 - s).abs() < 1e-6, "{n:?} vs {s}");
        }
        // An id without a vector reads 0.
        assert_eq!(dense.similarity(query, &[EntityId(ix.n_entities() as u32)]), vec![0.0]);
    }
}
