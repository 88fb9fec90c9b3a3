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

/// Shared, copy-on-write parts: an index patched after an edit shares every posting list and
/// the vocabulary with the one before, copying only what the edit touches.
#[derive(Clone, Default)]
pub struct Bm25 {
    vocab: Arc<FxHashMap<String, u32>>,
    /// Postings per term id: (doc, term frequency), sorted by doc.
    postings: Vec<Arc<Vec<(EntityId, u32)>>>,
    doc_len: Vec<u32>,
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
        let mut postings: Vec<Vec<(EntityId, u32)>> = Vec::new();
        let mut ix = Bm25 { doc_len: vec![0; n_ids], ..Bm25::default() };
        for d in docs.filter(|d| d.len > 0) {
            ix.count_doc(&d);
            for (term, tf) in d.terms.iter() {
                let (id, new) = intern(&mut vocab, term, postings.len());
                if new {
                    postings.push(Vec::new());
                }
                postings[id as usize].push((d.doc, tf));
            }
        }
        ix.live_terms = postings.len();
        ix.vocab = Arc::new(vocab);
        // Growth by doubling leaves a list up to half empty: trimmed once it is complete.
        ix.postings = postings
            .into_iter()
            .map(|mut p| {
                p.shrink_to_fit();
                Arc::new(p)
            })
            .collect();
        ix.set_avg();
        ix
    }

    fn count_doc(&mut self, d: &DocTerms<'_>) {
        self.n_docs += 1;
        self.total_len += d.len as u64;
        self.doc_len[d.doc.index()] = d.len;
    }

    fn set_avg(&mut self) {
        self.avg_len = if self.n_docs == 0 { 1.0 } else { self.total_len as f32 / self.n_docs as f32 };
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
        for d in old.filter(|d| d.len > 0) {
            ix.n_docs -= 1;
            ix.total_len -= d.len as u64;
            ix.doc_len[d.doc.index()] = 0;
            for (term, _) in d.terms.iter() {
                let Some(&id) = ix.vocab.get(term) else { continue };
                let p = Arc::make_mut(&mut ix.postings[id as usize]);
                if let Ok(at) = p.binary_search_by_key(&d.doc, |x| x.0) {
                    p.remove(at);
                    if p.is_empty() {
                        ix.live_terms -= 1;
                    }
                }
            }
        }
        ix.add(new);
        ix
    }

    /// Indexes documents whose ids are not indexed yet.
    fn add<'a>(&mut self, docs: impl Iterator<Item = DocTerms<'a>>) {
        for d in docs.filter(|d| d.len > 0) {
            self.count_doc(&d);
            for (term, tf) in d.terms.iter() {
                let (id, new) = match self.vocab.get(term) {
                    Some(&id) => (id, false),
                    None => intern(Arc::make_mut(&mut self.vocab), term, self.postings.len()),
                };
                if new {
                    self.postings.push(Arc::new(Vec::new()));
                }
                let p = Arc::make_mut(&mut self.postings[id as usize]);
                if p.is_empty() {
                    self.live_terms += 1;
                }
                match p.binary_search_by_key(&d.doc, |x| x.0) {
                    Ok(at) => p[at].1 = tf,
                    Err(at) => p.insert(at, (d.doc, tf)),
                }
            }
        }
        self.set_avg();
    }

    pub fn n_docs(&self) -> u32 {
        self.n_docs
    }

    pub fn n_terms(&self) -> usize {
        self.live_terms
    }

    /// The documents holding a term, with its count in each.
    pub fn postings(&self, term: &str) -> &[(EntityId, u32)] {
        self.vocab.get(term).map(|&t| self.postings[t as usize].as_slice()).unwrap_or(&[])
    }

    /// Document frequency of a term.
    pub fn df(&self, term: &str) -> u32 {
        self.vocab.get(term).map(|&t| self.postings[t as usize].len() as u32).unwrap_or(0)
    }

    /// Whether some term held by a document contains `needle`: a scan of the vocabulary, which
    /// is much smaller than the text it was made from.
    pub fn any_term_containing(&self, needle: &str) -> bool {
        self.vocab.iter().any(|(t, &i)| !self.postings[i as usize].is_empty() && t.contains(needle))
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
        let mut touched: Vec<EntityId> = Vec::new();
        let mut weights: FxHashMap<u32, (&str, f32)> = FxHashMap::default();
        for (term, w) in query {
            if let Some(&t) = self.vocab.get(term) {
                weights.entry(t).or_insert((term.as_str(), 0.0)).1 += w;
            }
        }
        // Summed in term order, so an index patched after edits (new terms get new ids) scores
        // exactly as one built afresh.
        let mut terms: Vec<(u32, &str, f32)> = weights.into_iter().map(|(t, (s, w))| (t, s, w)).collect();
        terms.sort_unstable_by(|a, b| a.1.cmp(b.1));
        for (t, _, w) in terms {
            let post = &self.postings[t as usize];
            let idf = idf(self.n_docs, post.len() as u32) * w;
            for &(doc, tf) in post.iter() {
                let len = self.doc_len[doc.index()] as f32;
                let tf = tf as f32;
                let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len));
                if acc[doc.index()] == 0.0 {
                    touched.push(doc);
                }
                acc[doc.index()] += idf * norm;
            }
        }
        let top = touched.iter().map(|&d| acc[d.index()]).fold(0.0, f32::max);
        let mut out: Vec<(EntityId, f32)> =
            touched.into_iter().filter(|&d| accept(d)).map(|d| (d, acc[d.index()])).collect();
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
    fn idf_is_positive_and_decreasing() {
        assert!(idf(100, 100) > 0.0);
        assert!(idf(100, 1) > idf(100, 50));
    }
}
