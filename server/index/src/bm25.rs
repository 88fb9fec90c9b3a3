//! The lexical index: Okapi BM25 over entity documents, with a dense score accumulator.
//!
//! Our own, not tantivy: documents are built once per snapshot from per-file term lists that are
//! cached across edits, queries are a handful of terms over at most a few hundred thousand
//! documents, and a flat postings table with a dense accumulator answers in a few milliseconds
//! without a second copy of the text or an on-disk segment format.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::EntityId;

/// Term-frequency saturation (Lucene's default).
pub const K1: f32 = 1.2;
/// Length normalisation (Lucene's default).
pub const B: f32 = 0.75;

/// BM25's idf, always positive (Lucene's variant): `ln(1 + (N - df + 0.5) / (df + 0.5))`.
pub fn idf(n_docs: u32, df: u32) -> f32 {
    debug_assert!(df <= n_docs);
    let (n, df) = (n_docs as f32, df as f32);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The id of `term`, added to `vocab` as `next` when new (then `true`). Looked up by reference
/// first: a term is new once and seen many times.
fn intern(vocab: &mut FxHashMap<String, u32>, term: &str, next: usize) -> (u32, bool) {
    match vocab.get(term) {
        Some(&id) => (id, false),
        None => {
            vocab.insert(term.to_owned(), next as u32);
            (next as u32, true)
        }
    }
}

/// A document to index: its id (the entity's) and its terms with frequencies.
pub struct DocTerms<'a> {
    pub doc: EntityId,
    pub len: u32,
    pub terms: &'a crate::unit::TermCounts,
}

/// Where a document sits in the postings and in `doc_len`. As built, a document's slot is its
/// entity id; after an edit that moved ids ([`Bm25::with_ids_moved`]) [`Slots`] maps between them.
type Slot = u32;

/// Slots and entity ids after an edit moved ids: every other document keeps its slot, so no
/// posting list but the edited documents' terms' is copied.
struct Slots {
    /// Slot → entity id; [`FREE`] for a slot whose document was removed.
    id: Vec<u32>,
    /// Entity id → slot.
    slot: Vec<Slot>,
}

const FREE: u32 = u32::MAX;

/// Posting lists per shared block: an edit copies the blocks of the terms it touches (a
/// pointer per list), not a pointer per term of the vocabulary.
const BLOCK: usize = 1024;

/// Terms an edit may add beside the built vocabulary before they are folded into it.
const MAX_ADDED: usize = 4096;

/// A posting list: (slot, term frequency), sorted by slot.
type List = Vec<(Slot, u32)>;

/// Shared, copy-on-write parts: an index patched after an edit shares every posting list and
/// the vocabulary with the one before, copying only what the edit touches.
#[derive(Clone, Default)]
pub struct Bm25 {
    vocab: Arc<FxHashMap<String, u32>>,
    /// Terms first seen in an edit's documents, beside `vocab` (which an edit does not copy)
    /// until there are [`MAX_ADDED`].
    added: Arc<FxHashMap<String, u32>>,
    /// Posting lists per term id, in blocks of [`BLOCK`].
    postings: Vec<Arc<Vec<Arc<List>>>>,
    /// Number of term ids.
    n_lists: usize,
    /// Per slot.
    doc_len: Vec<u32>,
    /// `None` while every slot is its entity's id.
    slots: Option<Arc<Slots>>,
    n_docs: u32,
    total_len: u64,
    avg_len: f32,
    /// Terms with at least one posting (a patched index keeps emptied ones in its vocabulary).
    live_terms: usize,
}

impl Bm25 {
    /// Builds the index. `n_ids` bounds the doc ids (entities without a document get length 0
    /// and never match).
    pub fn build<'a>(n_ids: usize, docs: impl Iterator<Item = DocTerms<'a>>) -> Bm25 {
        // Plain lists while building (no copy-on-write checks on 10⁶ appends), shared after.
        let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
        let mut postings: Vec<Vec<(Slot, u32)>> = Vec::new();
        let mut ix = Bm25 { doc_len: vec![0; n_ids], ..Bm25::default() };
        for d in docs.filter(|d| d.len > 0) {
            ix.count_doc(d.doc.0, d.len);
            for (term, tf) in d.terms.iter() {
                let (id, new) = intern(&mut vocab, term, postings.len());
                if new {
                    postings.push(Vec::new());
                }
                postings[id as usize].push((d.doc.0, tf));
            }
        }
        ix.live_terms = postings.len();
        ix.n_lists = postings.len();
        ix.vocab = Arc::new(vocab);
        // Growth by doubling leaves a list up to half empty: trimmed once it is complete.
        let mut lists = postings.into_iter().map(|mut p| {
            p.shrink_to_fit();
            Arc::new(p)
        });
        while ix.postings.len() * BLOCK < ix.n_lists {
            ix.postings.push(Arc::new(lists.by_ref().take(BLOCK).collect()));
        }
        ix.set_avg();
        ix
    }

    /// The id of a term, if indexed.
    fn term(&self, term: &str) -> Option<u32> {
        self.vocab.get(term).or_else(|| self.added.get(term)).copied()
    }

    fn list(&self, id: u32) -> &List {
        &self.postings[id as usize / BLOCK][id as usize % BLOCK]
    }

    /// A term's list to change: its block and the list are copied if shared.
    fn list_mut(&mut self, id: u32) -> &mut List {
        let block = Arc::make_mut(&mut self.postings[id as usize / BLOCK]);
        Arc::make_mut(&mut block[id as usize % BLOCK])
    }

    /// The id of `term`, a new empty list for it when it has none.
    fn intern(&mut self, term: &str) -> u32 {
        if let Some(id) = self.term(term) {
            return id;
        }
        let id = self.n_lists as u32;
        if self.added.len() >= MAX_ADDED {
            let vocab = Arc::make_mut(&mut self.vocab);
            vocab.extend(self.added.iter().map(|(t, &i)| (t.clone(), i)));
            self.added = Arc::default();
        }
        Arc::make_mut(&mut self.added).insert(term.to_owned(), id);
        if self.n_lists.is_multiple_of(BLOCK) {
            self.postings.push(Arc::new(Vec::with_capacity(BLOCK)));
        }
        Arc::make_mut(self.postings.last_mut().expect("a block")).push(Arc::default());
        self.n_lists += 1;
        id
    }

    fn count_doc(&mut self, slot: Slot, len: u32) {
        self.n_docs += 1;
        self.total_len += len as u64;
        self.doc_len[slot as usize] = len;
    }

    fn set_avg(&mut self) {
        self.avg_len = if self.n_docs == 0 { 1.0 } else { self.total_len as f32 / self.n_docs as f32 };
    }

    fn slot(&self, id: EntityId) -> Slot {
        self.slots.as_ref().map_or(id.0, |s| s.slot[id.index()])
    }

    fn id(&self, slot: Slot) -> EntityId {
        EntityId(self.slots.as_ref().map_or(slot, |s| s.id[slot as usize]))
    }

    /// The index with some documents replaced: `old` are their documents as indexed, `new` what
    /// they are now (same ids). Scores equal those of an index built afresh from the new
    /// documents (searches sum terms in term order, not in id order).
    pub fn with_docs_replaced<'a>(
        &self,
        old: impl Iterator<Item = DocTerms<'a>>,
        new: impl Iterator<Item = DocTerms<'a>>,
    ) -> Bm25 {
        let mut ix = self.clone();
        for d in old {
            ix.remove(ix.slot(d.doc), &d);
        }
        for d in new {
            ix.insert(ix.slot(d.doc), &d);
        }
        ix.set_avg();
        ix
    }

    /// The index after an edit moved ids (one file's definitions added or removed: see
    /// `Index::with_changes`): the documents of ids `at..at + old.len()` (`old`, as indexed,
    /// every entity of the file in order) are now `new` (from `at` on), of which the first
    /// `prefix` and the last `suffix` are the same entities (their documents replaced where
    /// they differ) and the others were removed or added; every later id moves by
    /// `new.len() - old.len()`. Every other document keeps its slot: only the edited documents'
    /// terms are copied. Scores equal those of an index built afresh.
    pub fn with_ids_moved(
        &self,
        at: EntityId,
        prefix: usize,
        suffix: usize,
        old: &[DocTerms<'_>],
        new: &[DocTerms<'_>],
    ) -> Bm25 {
        let mut ix = self.clone();
        let mut ids: Vec<u32> = match &self.slots {
            Some(s) => s.id.clone(),
            None => (0..self.doc_len.len() as u32).collect(),
        };
        let (old_n, new_n) = (old.len(), new.len());
        for (k, d) in old.iter().enumerate() {
            let slot = self.slot(EntityId(at.0 + k as u32));
            let kept = match k {
                k if k < prefix => Some(&new[k]),
                k if k >= old_n - suffix => Some(&new[k + new_n - old_n]),
                _ => None,
            };
            match kept {
                Some(n) if n.len == d.len && n.terms == d.terms => {}
                Some(n) => {
                    ix.remove(slot, d);
                    ix.insert(slot, n);
                }
                None => {
                    ix.remove(slot, d);
                    ids[slot as usize] = FREE;
                }
            }
        }
        // Ids after the removed ones move; the added documents take new slots.
        let moved_from = at.0 + (old_n - suffix) as u32;
        for id in ids.iter_mut().filter(|id| **id != FREE && **id >= moved_from) {
            *id = *id - old_n as u32 + new_n as u32;
        }
        for d in &new[prefix..new_n - suffix] {
            let slot = ix.doc_len.len() as Slot;
            ix.doc_len.push(0);
            ids.push(d.doc.0);
            ix.insert(slot, d);
        }
        let n_ids = self.slots.as_ref().map_or(self.doc_len.len(), |s| s.slot.len()) + new_n - old_n;
        let mut slot = vec![FREE; n_ids];
        for (s, &id) in ids.iter().enumerate().filter(|(_, &id)| id != FREE) {
            slot[id as usize] = s as Slot;
        }
        ix.slots = Some(Arc::new(Slots { id: ids, slot }));
        ix.set_avg();
        ix
    }

    /// Removes the document at `slot` (`d`, as indexed).
    fn remove(&mut self, slot: Slot, d: &DocTerms<'_>) {
        if d.len == 0 {
            return;
        }
        self.n_docs -= 1;
        self.total_len -= d.len as u64;
        self.doc_len[slot as usize] = 0;
        for (term, _) in d.terms.iter() {
            let Some(id) = self.term(term) else { continue };
            let p = self.list_mut(id);
            if let Ok(at) = p.binary_search_by_key(&slot, |x| x.0) {
                p.remove(at);
                if p.is_empty() {
                    self.live_terms -= 1;
                }
            }
        }
    }

    /// Indexes `d` at `slot`, which holds no document.
    fn insert(&mut self, slot: Slot, d: &DocTerms<'_>) {
        if d.len == 0 {
            return;
        }
        self.count_doc(slot, d.len);
        for (term, tf) in d.terms.iter() {
            let id = self.intern(term);
            let p = self.list_mut(id);
            let was_empty = p.is_empty();
            match p.binary_search_by_key(&slot, |x| x.0) {
                Ok(at) => p[at].1 = tf,
                Err(at) => p.insert(at, (slot, tf)),
            }
            if was_empty {
                self.live_terms += 1;
            }
        }
    }

    pub fn n_docs(&self) -> u32 {
        self.n_docs
    }

    pub fn n_terms(&self) -> usize {
        self.live_terms
    }

    /// Whether some one document holds every term of `terms`.
    pub fn some_doc_holds_all(&self, terms: &[String]) -> bool {
        let mut lists: Vec<&[(Slot, u32)]> = Vec::with_capacity(terms.len());
        for t in terms {
            match self.term(t) {
                Some(id) => lists.push(self.list(id)),
                None => return false,
            }
        }
        // Start from the rarest term's documents.
        lists.sort_by_key(|l| l.len());
        let Some((first, rest)) = lists.split_first() else { return true };
        first.iter().any(|&(slot, _)| rest.iter().all(|l| l.binary_search_by_key(&slot, |x| x.0).is_ok()))
    }

    /// Document frequency of a term.
    pub fn df(&self, term: &str) -> u32 {
        self.term(term).map_or(0, |t| self.list(t).len() as u32)
    }

    /// Whether some term held by a document contains `needle`: a scan of the vocabulary, which
    /// is much smaller than the text it was made from.
    pub fn any_term_containing(&self, needle: &str) -> bool {
        (self.vocab.iter().chain(self.added.iter()))
            .any(|(t, &i)| !self.list(i).is_empty() && t.contains(needle))
    }

    /// Scores every document containing a query term. Query terms may repeat (weight = count)
    /// and may carry a boost. `accept` filters documents. Returns the top `limit`, best first,
    /// ties broken by doc id for determinism.
    pub fn search(
        &self,
        query: &[(String, f32)],
        limit: usize,
        accept: impl Fn(EntityId) -> bool,
    ) -> Vec<(EntityId, f32)> {
        self.search_with_top(query, limit, accept).0
    }

    /// [`Bm25::search`], plus the best score of any document, accepted or not (0 when none
    /// matches): what a filtered search's scores are relative to, from the same pass.
    pub fn search_with_top(
        &self,
        query: &[(String, f32)],
        limit: usize,
        accept: impl Fn(EntityId) -> bool,
    ) -> (Vec<(EntityId, f32)>, f32) {
        let mut acc = vec![0f32; self.doc_len.len()];
        let mut touched: Vec<Slot> = Vec::new();
        let mut weights: FxHashMap<u32, (&str, f32)> = FxHashMap::default();
        for (term, w) in query {
            if let Some(t) = self.term(term) {
                weights.entry(t).or_insert((term.as_str(), 0.0)).1 += w;
            }
        }
        // Summed in term order, so an index patched after edits (new terms get new ids) scores
        // exactly as one built afresh.
        let mut terms: Vec<(u32, &str, f32)> = weights.into_iter().map(|(t, (s, w))| (t, s, w)).collect();
        terms.sort_unstable_by(|a, b| a.1.cmp(b.1));
        for (t, _, w) in terms {
            let post = self.list(t);
            let idf = idf(self.n_docs, post.len() as u32) * w;
            for &(slot, tf) in post.iter() {
                let len = self.doc_len[slot as usize] as f32;
                let tf = tf as f32;
                let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len));
                if acc[slot as usize] == 0.0 {
                    touched.push(slot);
                }
                acc[slot as usize] += idf * norm;
            }
        }
        let top = touched.iter().map(|&s| acc[s as usize]).fold(0.0, f32::max);
        let mut out: Vec<(EntityId, f32)> =
            touched.into_iter().map(|s| (self.id(s), acc[s as usize])).filter(|&(d, _)| accept(d)).collect();
        let by_score = |a: &(EntityId, f32), b: &(EntityId, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if out.len() > limit {
            out.select_nth_unstable_by(limit, by_score);
            out.truncate(limit);
        }
        out.sort_unstable_by(by_score);
        (out, top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(terms: &[&str]) -> crate::unit::TermCounts {
        let mut m: FxHashMap<&str, u32> = FxHashMap::default();
        for t in terms {
            *m.entry(t).or_insert(0) += 1;
        }
        crate::unit::TermCounts::from_counts(m)
    }

    #[test]
    fn ranks_rarer_and_denser_matches_first() {
        let d0 = doc(&["hook", "register", "event"]);
        let d1 = doc(&["hook", "session", "send", "request", "response", "adapter"]);
        let d2 = doc(&["session", "send"]);
        let docs = [(0u32, &d0, 3u32), (1, &d1, 6), (2, &d2, 2)];
        let ix =
            Bm25::build(3, docs.iter().map(|(i, t, l)| DocTerms { doc: EntityId(*i), len: *l, terms: t }));
        assert!(ix.some_doc_holds_all(&["session".into(), "send".into()]));
        assert!(!ix.some_doc_holds_all(&["register".into(), "send".into()]));
        let q = vec![("register".to_string(), 1.0), ("hook".to_string(), 1.0)];
        let hits = ix.search(&q, 10, |_| true);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [EntityId(0), EntityId(1)]);
        assert!(hits[0].1 > hits[1].1);
        assert_eq!(ix.search(&q, 10, |d| d != EntityId(0)).len(), 1);
        // The best score is of all documents, also those the filter leaves out.
        let (filtered, top) = ix.search_with_top(&q, 10, |d| d != EntityId(0));
        assert_eq!(filtered, [hits[1]]);
        assert_eq!(top, hits[0].1);
    }

    #[test]
    fn edits_adding_thousands_of_terms_score_as_a_fresh_build() {
        // Each edit gives document 1 terms never seen: past a block of lists and past the
        // terms kept beside the vocabulary (then folded into it), every score and count must
        // still equal a fresh build's.
        let d0 = doc(&["hook", "register", "event"]);
        let d2 = doc(&["session", "send", "hook"]);
        let words = |i: usize| -> Vec<String> { (0..60).map(|j| format!("w{i}x{j}")).collect() };
        let doc_of = |w: &[String]| doc(&w.iter().map(|s| s.as_str()).chain(["hook"]).collect::<Vec<_>>());
        let mut d1 = doc_of(&words(0));
        fn at(i: u32, t: &crate::unit::TermCounts) -> DocTerms<'_> {
            DocTerms { doc: EntityId(i), len: t.len() as u32 + 1, terms: t }
        }
        let mut ix = Bm25::build(3, [at(0, &d0), at(1, &d1), at(2, &d2)].into_iter());
        for i in 1..=(MAX_ADDED + BLOCK) / 60 + 2 {
            let next = doc_of(&words(i));
            ix = ix.with_docs_replaced([at(1, &d1)].into_iter(), [at(1, &next)].into_iter());
            d1 = next;
        }
        let fresh = Bm25::build(3, [at(0, &d0), at(1, &d1), at(2, &d2)].into_iter());
        assert_eq!(ix.n_terms(), fresh.n_terms());
        assert_eq!(ix.n_docs(), fresh.n_docs());
        let last = words((MAX_ADDED + BLOCK) / 60 + 2);
        for q in
            [vec!["hook"], vec![last[0].as_str(), "session"], vec!["w0x1"], vec![last[59].as_str(), "hook"]]
        {
            let q: Vec<(String, f32)> = q.iter().map(|t| (t.to_string(), 1.0)).collect();
            assert_eq!(ix.search(&q, 10, |_| true), fresh.search(&q, 10, |_| true), "{q:?}");
        }
        assert_eq!(ix.df("w0x1"), 0);
        assert_eq!(ix.df(&last[7]), 1);
        assert!(ix.any_term_containing(&last[3]) && !ix.any_term_containing("w1x"));
        assert!(ix.some_doc_holds_all(&[last[5].clone(), "hook".into()]));
    }

    #[test]
    fn idf_is_positive_and_decreasing() {
        assert!(idf(100, 100) > 0.0);
        assert!(idf(100, 1) > idf(100, 50));
    }
}
