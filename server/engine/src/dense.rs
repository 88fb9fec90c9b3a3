//! Dense retrieval over an index snapshot: entity texts embedded with the ONNX encoder, cached
//! on disk by content hash, searched exactly (a dot product per vector; vectors are unit length).
//! In memory a vector is kept in half precision (768 bytes instead of 1,536: 34 MB less for
//! sympy's 44k entities); the query stays in single precision.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use half::f16;
use half::slice::HalfFloatSliceExt;
use locus_embed::{EmbedConfig, EmbedError, Embedder, VectorStore, BATCH_SIZE, DIM};
use locus_index::{EntityId, Index};
use locus_search::tools::Semantic;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Characters of an entity's body put into its text; the encoder reads 256 tokens at most.
const MAX_BODY_CHARS: usize = 1600;

/// The encoder and its on-disk vector cache.
pub struct Encoder {
    pub embedder: Embedder,
    /// Shared by [`Encoder::sibling`]s: one process writes the cache file.
    pub store: Arc<VectorStore>,
    /// Searches embedding their candidates now: a whole-tree build waits between its batches
    /// while any does, so an answer never queues behind the background's work.
    urgent: AtomicUsize,
}

impl Encoder {
    /// Loads the model and runtime (settings, then environment, then the cache directory) and
    /// opens the vector cache. The error says how to install what is missing.
    pub fn load(cfg: &EmbedConfig) -> Result<Encoder, EmbedError> {
        let embedder = Embedder::load(cfg)?;
        let dir = locus_embed::cache_dir().join("vectors").join(embedder.model_id().replace([':', '/'], "-"));
        let store = VectorStore::open(&dir, embedder.model_id())?;
        Ok(Encoder::new(embedder, store))
    }

    pub fn new(embedder: Embedder, store: VectorStore) -> Encoder {
        Encoder { embedder, store: Arc::new(store), urgent: AtomicUsize::new(0) }
    }

    /// An encoder with its own model session over this one's vector cache: a session runs one
    /// batch at a time, so threads that embed at once (`locus eval --jobs`) need one each. A
    /// sibling's whole-tree builds do not yield to the other siblings' searches.
    pub fn sibling(&self, cfg: &EmbedConfig) -> Result<Encoder, EmbedError> {
        Ok(Encoder { embedder: Embedder::load(cfg)?, store: self.store.clone(), urgent: AtomicUsize::new(0) })
    }

    /// Waits while a search embeds its candidates (at most a second at a time, so a stuck
    /// flag cannot stop a build).
    fn yield_to_searches(&self) {
        let t = Instant::now();
        while self.urgent.load(Ordering::SeqCst) > 0 && t.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }
}

/// Vectors for the entities of one index snapshot, in one block per file: a snapshot patched by
/// an edit shares every unchanged file's block with its predecessor's vectors.
pub struct DenseIndex {
    /// Per file ([`locus_index::FileId`] order): its embedded entities and their vectors.
    blocks: Vec<Arc<Block>>,
    /// Entity id -> (its file, its row in that file's block).
    row: FxHashMap<EntityId, (u32, u32)>,
    /// The last query embedded and its vector: the tail ranking (and a feature dump) asks for
    /// the vector again after the semantic tool's call (`similarity` of the candidates).
    last: Mutex<Option<(String, Vec<f32>)>>,
    encoder: Arc<Encoder>,
    /// Entities that should have a vector (ready = all of them).
    pub wanted: usize,
    /// On demand: the snapshot whose entities' texts are embedded when a search asks for a
    /// vector the blocks lack ([`DenseIndex::on_demand`]); `None`: the blocks are all there is.
    source: Option<Arc<Index>>,
    /// Vectors made on demand, by entity.
    extra: RwLock<FxHashMap<EntityId, Box<[f16]>>>,
    /// The snapshot the vectors are of, without its indexes (which a holder of these vectors
    /// would otherwise keep alive beside its successor's): what [`DenseIndex::patched`] compares.
    made: Made,
    /// Nanoseconds spent making them.
    demand_ns: AtomicU64,
}

/// What vectors need to know of their snapshot: its ids' layout and its files' units (shared
/// with its successors, but for the files an edit changed).
#[derive(Clone)]
struct Made {
    layout: u64,
    n_entities: usize,
    units: Vec<Arc<locus_index::FileUnit>>,
}

impl Made {
    fn of(ix: &Index) -> Made {
        Made {
            layout: ix.layout,
            n_entities: ix.n_entities(),
            units: ix.files.iter().map(|f| f.unit.clone()).collect(),
        }
    }
}

/// One file's vectors: `vecs[r * DIM..(r + 1) * DIM]` is `ids[r]`'s. The vectors are shared
/// with the block of the same file in a snapshot whose ids moved ([`DenseIndex::reshaped`]).
#[derive(Default)]
struct Block {
    ids: Vec<EntityId>,
    vecs: Arc<Vec<f16>>,
}

impl Block {
    fn push(&mut self, id: EntityId, v: &[f32]) {
        self.ids.push(id);
        push_half(Arc::make_mut(&mut self.vecs), v);
    }
}

/// Appends `v` narrowed to half precision (F16C where the CPU has it).
fn push_half(dst: &mut Vec<f16>, v: &[f32]) {
    let at = dst.len();
    dst.resize(at + v.len(), f16::ZERO);
    dst[at..].convert_from_f32_slice(v);
}

/// `q · v` for a vector kept in half precision (widened a vector at a time: F16C where the
/// CPU has it), summed in eight lanes so that the compiler vectorises it (a single running sum
/// cannot be reordered: it took most of a search's time over a whole tree's vectors).
fn dot(q: &[f32], v: &[f16]) -> f32 {
    let mut wide = [0.0f32; DIM];
    v.convert_to_f32_slice(&mut wide[..v.len().min(DIM)]);
    let mut lanes = [0.0f32; 8];
    for (a, b) in wide.chunks_exact(8).zip(q.chunks_exact(8)) {
        for ((l, x), y) in lanes.iter_mut().zip(a).zip(b) {
            *l += x * y;
        }
    }
    lanes.iter().sum()
}

/// An entity whose text has no vector in the cache yet.
struct Missing {
    id: EntityId,
    text: String,
    key: [u8; 32],
}

/// File `fi`'s block with the vectors the cache holds for its entities, the entities it lacks,
/// and how many entities the file should have vectors for.
fn cached_block(encoder: &Encoder, ix: &Index, fi: usize) -> (Block, Vec<Missing>, usize) {
    let ids: Vec<EntityId> =
        ix.entities_of_file(locus_index::FileId(fi as u32)).filter(|&id| wanted(ix, id)).collect();
    let mut block =
        Block { ids: Vec::with_capacity(ids.len()), vecs: Arc::new(Vec::with_capacity(ids.len() * DIM)) };
    let mut missing = Vec::new();
    let n = ids.len();
    for id in ids {
        let text = entity_text(ix, id);
        let key = key(encoder.model_id(), &text);
        match encoder.store.get(&key) {
            Some(v) if v.len() == DIM => block.push(id, &v),
            _ => missing.push(Missing { id, text, key }),
        }
    }
    (block, missing, n)
}

/// Where each entity of `blocks` is.
fn rows_of(blocks: &[Arc<Block>]) -> FxHashMap<EntityId, (u32, u32)> {
    let mut row = FxHashMap::default();
    for (f, b) in blocks.iter().enumerate() {
        for (r, &id) in b.ids.iter().enumerate() {
            row.insert(id, (f as u32, r as u32));
        }
    }
    row
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
        // Each file's block is sized once: grown by doubling, vectors would hold up to twice
        // their size.
        let mut blocks: Vec<Block> = Vec::with_capacity(ix.files.len());
        let mut missing: Vec<(usize, Missing)> = Vec::new();
        let mut wanted_n = 0;
        for fi in 0..ix.files.len() {
            let (block, lacking, n) = cached_block(&encoder, ix, fi);
            wanted_n += n;
            missing.extend(lacking.into_iter().map(|m| (fi, m)));
            blocks.push(block);
        }
        let total = missing.len();
        if embed_missing {
            // Batches of similar length waste the least padding.
            missing.sort_by_key(|m| m.1.text.len());
            let mut done = 0;
            for chunk in missing.chunks(BATCH_SIZE * 4) {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                encoder.yield_to_searches();
                let texts: Vec<&str> = chunk.iter().map(|m| m.1.text.as_str()).collect();
                let out = encoder.embedder.embed(&texts)?;
                let mut items = Vec::with_capacity(chunk.len());
                for ((fi, m), v) in chunk.iter().zip(out) {
                    blocks[*fi].push(m.id, &v);
                    items.push((m.key, v));
                }
                encoder.store.put_many(&items)?;
                done += chunk.len();
                progress(done, total);
            }
        }
        let blocks: Vec<Arc<Block>> = blocks.into_iter().map(Arc::new).collect();
        let row = rows_of(&blocks);
        Ok(DenseIndex::assemble(blocks, row, Mutex::new(None), encoder, wanted_n, None, Made::of(ix)))
    }

    fn assemble(
        blocks: Vec<Arc<Block>>,
        row: FxHashMap<EntityId, (u32, u32)>,
        last: Mutex<Option<(String, Vec<f32>)>>,
        encoder: Arc<Encoder>,
        wanted: usize,
        source: Option<Arc<Index>>,
        made: Made,
    ) -> DenseIndex {
        DenseIndex {
            blocks,
            row,
            last,
            encoder,
            wanted,
            source,
            extra: RwLock::default(),
            demand_ns: AtomicU64::new(0),
            made,
        }
    }

    /// The [`Index::layout`] of the snapshot these vectors were made for: they serve every
    /// snapshot of that layout (the same entity ids).
    pub fn layout(&self) -> u64 {
        self.made.layout
    }

    /// Vectors of `ix` made as searches need them: a search embeds its candidates first
    /// ([`DenseIndex::ensure`], `Workspace::locate`), and a similarity asked for an entity
    /// without a vector embeds it. With `cached`, the vectors the cache already holds are
    /// there from the start (read, nothing embedded); without, none are, so what a search sees
    /// depends on its own candidates alone, as on a tree never embedded.
    pub fn on_demand(ix: Arc<Index>, encoder: Arc<Encoder>, cached: bool) -> DenseIndex {
        let mut blocks = Vec::with_capacity(ix.files.len());
        let mut wanted_n = 0;
        for fi in 0..ix.files.len() {
            if cached {
                let (block, _, n) = cached_block(&encoder, &ix, fi);
                wanted_n += n;
                blocks.push(Arc::new(block));
            } else {
                wanted_n +=
                    ix.entities_of_file(locus_index::FileId(fi as u32)).filter(|&id| wanted(&ix, id)).count();
                blocks.push(Arc::new(Block::default()));
            }
        }
        let row = rows_of(&blocks);
        let made = Made::of(&ix);
        DenseIndex::assemble(blocks, row, Mutex::new(None), encoder, wanted_n, Some(ix), made)
    }

    /// Whether vectors are made on demand ([`DenseIndex::on_demand`]).
    pub fn is_on_demand(&self) -> bool {
        self.source.is_some()
    }

    /// Whether every entity that should have a vector has one.
    pub fn is_complete(&self) -> bool {
        self.len() >= self.wanted
    }

    /// Vectors made on demand so far, and the milliseconds they took.
    pub fn on_demand_made(&self) -> (usize, f64) {
        let n = self.extra.read().unwrap_or_else(|p| p.into_inner()).len();
        (n, self.demand_ns.load(Ordering::Relaxed) as f64 / 1e6)
    }

    /// Makes the vectors of those of `ids` that should have one and lack it (from the cache, or
    /// embedded now), when this index is on demand. Returns how many it made.
    pub fn ensure(&self, ids: &[EntityId]) -> Result<usize, EmbedError> {
        let Some(ix) = &self.source else { return Ok(0) };
        let t = Instant::now();
        let mut todo: Vec<EntityId> = {
            let extra = self.extra.read().unwrap_or_else(|p| p.into_inner());
            ids.iter()
                .copied()
                .filter(|id| (id.0 as usize) < ix.n_entities() && wanted(ix, *id))
                .filter(|id| !self.row.contains_key(id) && !extra.contains_key(id))
                .collect()
        };
        todo.sort_unstable();
        todo.dedup();
        if todo.is_empty() {
            return Ok(0);
        }
        let enc = &self.encoder;
        let mut made: Vec<(EntityId, Vec<f32>)> = Vec::with_capacity(todo.len());
        let mut missing = Vec::new();
        for id in todo {
            let text = entity_text(ix, id);
            let key = key(enc.model_id(), &text);
            match enc.store.get(&key) {
                Some(v) if v.len() == DIM => made.push((id, v)),
                _ => missing.push(Missing { id, text, key }),
            }
        }
        if !missing.is_empty() {
            enc.urgent.fetch_add(1, Ordering::SeqCst);
            missing.sort_by_key(|m| m.text.len());
            let texts: Vec<&str> = missing.iter().map(|m| m.text.as_str()).collect();
            let out = enc.embedder.embed(&texts);
            enc.urgent.fetch_sub(1, Ordering::SeqCst);
            let out = out?;
            let items: Vec<([u8; 32], Vec<f32>)> =
                missing.iter().zip(&out).map(|(m, v)| (m.key, v.clone())).collect();
            enc.store.put_many(&items)?;
            made.extend(missing.iter().map(|m| m.id).zip(out));
        }
        let n = made.len();
        let mut extra = self.extra.write().unwrap_or_else(|p| p.into_inner());
        for (id, v) in made {
            extra.entry(id).or_insert_with(|| {
                let mut h = Vec::with_capacity(DIM);
                push_half(&mut h, &v);
                h.into_boxed_slice()
            });
        }
        drop(extra);
        self.demand_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// The vectors of `new`, an index patched from the one these vectors are for by an edit
    /// that kept every name ([`Index::layout`] equal): blocks of unchanged files are
    /// shared, the changed files' entities get the vectors of their new text (from the cache, or
    /// embedded now: a few). `None` when `new` does not share the entity ids of the snapshot
    /// these vectors were made for.
    pub fn patched(&self, new: &Index) -> Result<Option<DenseIndex>, EmbedError> {
        self.patch(new, true)
    }

    /// [`DenseIndex::patched`] from the cache alone: an edited entity whose text the cache
    /// lacks (a definition just typed) has no vector. For the one search that cannot wait for
    /// the encoder; the refresh after it embeds the rest.
    pub fn patched_from_cache(&self, new: &Index) -> Option<DenseIndex> {
        self.patch(new, false).ok().flatten()
    }

    fn patch(&self, new: &Index, embed: bool) -> Result<Option<DenseIndex>, EmbedError> {
        let old = &self.made;
        if old.layout != new.layout
            || old.n_entities != new.n_entities()
            || old.units.len() != new.files.len()
        {
            return Ok(None);
        }
        // Unchanged files' blocks are shared; each changed file's is made anew: the vectors its
        // entities' texts have in the cache, then those embedded now (a few).
        let mut blocks = self.blocks.clone();
        let mut row = self.row.clone();
        let mut items = Vec::new();
        for (fi, (a, b)) in old.units.iter().zip(&new.files).enumerate() {
            if Arc::ptr_eq(a, &b.unit) {
                continue;
            }
            let (mut block, missing, _) = cached_block(&self.encoder, new, fi);
            if embed && !missing.is_empty() {
                let texts: Vec<&str> = missing.iter().map(|m| m.text.as_str()).collect();
                let vectors = self.encoder.embedder.embed(&texts)?;
                for (m, v) in missing.into_iter().zip(vectors) {
                    block.push(m.id, &v);
                    items.push((m.key, v));
                }
            }
            for id in &blocks[fi].ids {
                row.remove(id);
            }
            for (r, &id) in block.ids.iter().enumerate() {
                row.insert(id, (fi as u32, r as u32));
            }
            blocks[fi] = Arc::new(block);
        }
        self.encoder.store.put_many(&items)?;
        let last = Mutex::new(self.last.lock().unwrap_or_else(|p| p.into_inner()).clone());
        Ok(Some(DenseIndex::assemble(
            blocks,
            row,
            last,
            self.encoder.clone(),
            self.wanted,
            None,
            Made::of(new),
        )))
    }

    /// The vectors of `new`, an index whose entity ids moved since the one these vectors are
    /// for (an edit added, removed or renamed a definition: [`Index::layout`] differs) but which
    /// has the same files: each unchanged file's vectors are shared, under its new ids; a changed
    /// file has none yet. It records the changed files as they were, so that
    /// [`DenseIndex::patched`], which the caller runs next, gives them the vectors of their new
    /// texts (from the cache, or embedded). `None` when the files differ or these vectors are
    /// made on demand.
    pub fn reshaped(&self, new: &Index) -> Option<DenseIndex> {
        let old = &self.made;
        if self.is_on_demand()
            || old.units.len() != new.files.len()
            || old.units.iter().zip(&new.files).any(|(a, b)| a.path != b.unit.path)
        {
            return None;
        }
        let mut blocks = Vec::with_capacity(self.blocks.len());
        let mut units = Vec::with_capacity(old.units.len());
        let mut old_first = 0u32;
        for (fi, (a, b)) in old.units.iter().zip(&new.files).enumerate() {
            let block = &self.blocks[fi];
            if Arc::ptr_eq(a, &b.unit) {
                let shift = i64::from(b.first.0) - i64::from(old_first);
                blocks.push(if shift == 0 {
                    block.clone()
                } else {
                    let ids = block.ids.iter().map(|id| EntityId((i64::from(id.0) + shift) as u32)).collect();
                    Arc::new(Block { ids, vecs: block.vecs.clone() })
                });
            } else {
                blocks.push(Arc::new(Block::default()));
            }
            units.push(a.clone());
            old_first += a.entities.len() as u32;
        }
        let row = rows_of(&blocks);
        let wanted = (0..new.files.len())
            .map(|fi| {
                new.entities_of_file(locus_index::FileId(fi as u32)).filter(|&id| wanted(new, id)).count()
            })
            .sum();
        let last = Mutex::new(self.last.lock().unwrap_or_else(|p| p.into_inner()).clone());
        let made = Made { layout: new.layout, n_entities: new.n_entities(), units };
        Some(DenseIndex::assemble(blocks, row, last, self.encoder.clone(), wanted, None, made))
    }

    /// Entities with a vector (in the blocks, or made on demand).
    pub fn len(&self) -> usize {
        self.row.len() + self.extra.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn model_id(&self) -> &str {
        self.encoder.model_id()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        // Every vector of the tree: split over the cores (the scores and their order are the
        // same as one core's).
        let mut scored: Vec<(EntityId, f32)> = self
            .blocks
            .par_iter()
            .flat_map_iter(|b| b.vecs.chunks_exact(DIM).zip(&b.ids).map(|(v, &id)| (id, dot(&q, v))))
            .collect();
        scored.extend(
            self.extra.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(&id, v)| (id, dot(&q, v))),
        );
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
        // On demand, the candidates without a vector get one now (a failure leaves them at 0).
        if let Err(e) = self.ensure(ids) {
            tracing::warn!("embedding candidates on demand: {e}");
        }
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner());
        ids.iter()
            .map(|id| match self.row.get(id) {
                Some(&(f, r)) => {
                    dot(&q, &self.blocks[f as usize].vecs[r as usize * DIM..(r as usize + 1) * DIM])
                }
                None => extra.get(id).map_or(0.0, |v| dot(&q, v)),
            })
            .collect()
    }

    fn ready(&self) -> usize {
        self.len()
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

    /// The real encoder over a fresh vector cache (the folder lives as long as the encoder's
    /// store needs it), or `None` after saying what is missing.
    fn encoder() -> Option<(Arc<Encoder>, tempfile::TempDir)> {
        let embedder = match Embedder::load(&EmbedConfig::default()) {
            Ok(e) => e,
            Err(e) => {
                crate::testing::missing(&format!("the encoder ({e})"));
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let store = VectorStore::open(dir.path(), embedder.model_id()).unwrap();
        Some((Arc::new(Encoder::new(embedder, store)), dir))
    }

    #[test]
    fn similarity_is_the_cosine_nearest_ranks_by() {
        let Some((enc, _dir)) = encoder() else { return };
        let text = "def parse_date(s):\n    return s.split('-')\n\nclass Invoice:\n    def total(self):\n        return 0\n";
        let unit = FileUnit::build("a.py".into(), locus_syntax::Lang::Python, Arc::from(text));
        let ix = Index::from_units(PathBuf::from("/ws"), vec![Arc::new(unit)], Skipped::default());
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

    const A_PY: &str = "def parse_date(s):\n    return s.split('-')\n";
    const B_PY: &str = "class Invoice:\n    def total(self):\n        return 0\n";

    /// An index of Python files, by path and text.
    fn python_index(files: &[(&str, &str)]) -> Index {
        let units = files
            .iter()
            .map(|(p, t)| Arc::new(FileUnit::build((*p).into(), locus_syntax::Lang::Python, Arc::from(*t))))
            .collect();
        Index::from_units(PathBuf::from("/ws"), units, Skipped::default())
    }

    #[test]
    fn vectors_made_on_demand_equal_vectors_built_for_the_whole_tree() {
        let Some((enc, _dir)) = encoder() else { return };
        let ix = Arc::new(python_index(&[("a.py", A_PY), ("b.py", B_PY)]));
        let all: Vec<EntityId> = (0..ix.n_entities() as u32).map(EntityId).collect();
        let query = "the invoice total is wrong";
        let demand = DenseIndex::on_demand(ix.clone(), enc.clone(), false);
        assert!(demand.is_on_demand() && demand.is_empty() && !demand.is_complete());
        // Nothing embedded yet: the nearest are only those made so far.
        assert!(demand.nearest(query, 10).is_empty());
        let b_ids: Vec<EntityId> = all.iter().copied().filter(|&id| ix.path_of(id) == "b.py").collect();
        let made = demand.ensure(&b_ids).unwrap();
        assert!(made > 0 && made <= b_ids.len());
        assert_eq!(demand.ensure(&b_ids).unwrap(), 0, "made once");
        let near: Vec<EntityId> = demand.nearest(query, 10).into_iter().map(|n| n.0).collect();
        assert!(!near.is_empty() && near.iter().all(|id| b_ids.contains(id)), "{near:?}");
        // A similarity asked for embeds the rest, and equals the whole tree's vectors.
        let full = DenseIndex::build(&ix, enc.clone(), true, &AtomicBool::new(false), |_, _| {}).unwrap();
        assert_eq!(demand.similarity(query, &all), full.similarity(query, &all));
        assert!(demand.is_complete());
        assert_eq!(demand.len(), full.len());
        assert_eq!(demand.on_demand_made().0, full.len());
        // A whole-tree index makes nothing on demand.
        assert_eq!(full.ensure(&all).unwrap(), 0);
        assert!(!full.is_on_demand());
    }

    #[test]
    fn vectors_patched_after_an_edit_equal_vectors_built_afresh() {
        let Some((enc, _dir)) = encoder() else { return };
        let ix = python_index(&[("a.py", A_PY), ("b.py", B_PY)]);
        let dense = DenseIndex::build(&ix, enc.clone(), true, &AtomicBool::new(false), |_, _| {}).unwrap();
        // A body edit keeps every name: same ids, and only b.py's vectors are redone.
        let edited =
            "class Invoice:\n    def total(self):\n        return sum(line.amount for line in self.lines)\n";
        let next = ix.with_changes(vec![("b.py".into(), Some(edited.into()))]);
        assert_eq!(next.layout, ix.layout);
        let patched = dense.patched(&next).unwrap().expect("same layout");
        let fresh = DenseIndex::build(&next, enc.clone(), true, &AtomicBool::new(false), |_, _| {}).unwrap();
        let all: Vec<EntityId> = (0..next.n_entities() as u32).map(EntityId).collect();
        let query = "the invoice total ignores its lines";
        assert_eq!(patched.similarity(query, &all), fresh.similarity(query, &all));
        assert_ne!(dense.similarity(query, &all), fresh.similarity(query, &all), "the edit changed a vector");
        // A new function changes the ids: no patch.
        let renamed =
            next.with_changes(vec![("a.py".into(), Some(format!("{A_PY}\ndef other():\n    pass\n")))]);
        assert!(patched.patched(&renamed).unwrap().is_none());
    }

    #[test]
    fn vectors_moved_to_the_ids_of_a_new_definition_then_patched_equal_vectors_built_afresh() {
        let Some((enc, _dir)) = encoder() else { return };
        let ix = python_index(&[("a.py", A_PY), ("b.py", B_PY)]);
        let dense = DenseIndex::build(&ix, enc.clone(), true, &AtomicBool::new(false), |_, _| {}).unwrap();
        // A new function at the top of a.py moves every later id, b.py's included.
        let next = ix.with_changes(vec![("a.py".into(), Some(format!("def fresh():\n    pass\n\n{A_PY}")))]);
        assert_ne!(next.layout, ix.layout);
        assert!(dense.patched(&next).unwrap().is_none(), "other ids: no patch");
        let moved = dense.reshaped(&next).expect("same files");
        assert_eq!(moved.layout(), next.layout);
        // Lent to the search that follows the edit: a.py's vectors from the cache (its old
        // functions' texts are there), not yet those of the new definition and of the file
        // (its text starts with the new definition).
        let lent = moved.patched_from_cache(&next).expect("same layout now");
        assert!(!lent.is_complete());
        let all: Vec<EntityId> = (0..next.n_entities() as u32).map(EntityId).collect();
        let query = "the invoice total is wrong";
        let lent = lent.similarity(query, &all);
        let fresh = DenseIndex::build(&next, enc.clone(), true, &AtomicBool::new(false), |_, _| {}).unwrap();
        let (got, want) = (moved.similarity(query, &all), fresh.similarity(query, &all));
        // b.py's vectors are there under its new ids; the edited a.py has none until patched.
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            if next.path_of(all[i]) == "a.py" {
                assert_eq!((*g, *w != 0.0), (0.0, true), "{}", next.full_name(all[i]));
            } else {
                assert_eq!(g, w, "{}", next.full_name(all[i]));
            }
        }
        assert!(all.iter().any(|&id| next.path_of(id) == "b.py"));
        assert!(!moved.is_complete());
        for (i, (g, w)) in lent.iter().zip(&want).enumerate() {
            let e = next.entity(all[i]);
            if e.name == "fresh" || (e.kind == locus_syntax::Kind::File && next.path_of(all[i]) == "a.py") {
                assert_eq!((*g, *w != 0.0), (0.0, true), "no vector yet: {}", next.full_name(all[i]));
            } else {
                assert_eq!(g, w, "{}", next.full_name(all[i]));
            }
        }
        // The refresh after the search redoes the edited file and embeds what it lacks.
        let patched = moved.patched(&next).unwrap().expect("same layout now");
        assert_eq!(patched.similarity(query, &all), want);
        assert!(patched.is_complete());
        // Other files: nothing to move.
        let more = next.with_changes(vec![("c.py".into(), Some("def other():\n    pass\n".into()))]);
        assert!(dense.reshaped(&more).is_none());
    }
}
