//! Turns code and prose into index terms: identifiers split on snake_case and CamelCase,
//! lower-cased and stemmed, with the whole identifier kept as well.

use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

fn stemmer() -> &'static Stemmer {
    static S: OnceLock<Stemmer> = OnceLock::new();
    S.get_or_init(|| Stemmer::create(Algorithm::English))
}

/// Words too common in issues and code to tell anything apart. BM25's idf would shrink them
/// anyway; dropping them keeps postings short and queries fast.
const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "if", "in", "into",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will", "with", "i",
    "we", "you", "self", "def", "return", "none", "true", "false", "fn", "let", "mut", "pub", "use", "not",
    "no", "can", "do", "does", "should", "would", "when", "which", "there", "then", "than", "so", "also",
    "just",
];

fn is_stop(w: &str) -> bool {
    STOP.contains(&w)
}

/// Splits an identifier into its lower-cased parts: `parseHTTPResponse_v2` → parse, http,
/// response, v2.
pub fn split_identifier(ident: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for chunk in ident.split(|c: char| c == '_' || !c.is_alphanumeric()) {
        if chunk.is_empty() {
            continue;
        }
        let chars: Vec<char> = chunk.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (p, c) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (p.is_lowercase() && c.is_uppercase())
                || (p.is_uppercase() && c.is_uppercase() && next_lower);
            if boundary {
                parts.push(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        parts.push(chars[start..].iter().collect::<String>().to_lowercase());
    }
    parts
}

/// Longest token indexed; longer runs (base64, hashes) say nothing a person would search for.
pub const MAX_TOKEN: usize = 64;

/// Distinct words remembered per thread before the memo is cleared.
const MEMO_LIMIT: usize = 200_000;

/// Word → its index terms.
type WordMemo = rustc_hash::FxHashMap<Box<str>, Box<[Box<str>]>>;

thread_local! {
    /// Word → its terms. Code repeats its words; splitting and stemming each once per thread
    /// makes tokenising several times faster.
    static MEMO: std::cell::RefCell<WordMemo> = std::cell::RefCell::new(WordMemo::default());
}

fn word_terms(word: &str) -> Box<[Box<str>]> {
    let st = stemmer();
    let mut out: Vec<Box<str>> = Vec::new();
    let parts = split_identifier(word);
    if parts.len() > 1 {
        // The whole identifier is a strong term of its own.
        out.push(word.to_lowercase().into());
    }
    for p in &parts {
        if p.len() < 2 || is_stop(p) {
            continue;
        }
        out.push(st.stem(p).into());
    }
    out.into()
}

/// Calls `emit` with every index term of `text`, in order.
pub fn for_each_term(text: &str, mut emit: impl FnMut(&str)) {
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            let word = word.trim_matches('_');
            if word.len() < 2 || word.len() > MAX_TOKEN {
                continue;
            }
            if word.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some(terms) = memo.get(word) {
                for t in terms.iter() {
                    emit(t);
                }
                continue;
            }
            if memo.len() >= MEMO_LIMIT {
                memo.clear();
            }
            let terms = word_terms(word);
            for t in terms.iter() {
                emit(t);
            }
            memo.insert(word.into(), terms);
        }
    });
}

/// All terms of `text`, in order.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |t| out.push(t.to_string()));
    out
}

/// Normalised form for fuzzy name lookup: lower-case, underscores removed.
pub fn normalize_name(name: &str) -> String {
    name.chars().filter(|c| *c != '_').flat_map(|c| c.to_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_identifiers() {
        assert_eq!(split_identifier("parseHTTPResponse_v2"), ["parse", "http", "response", "v2"]);
        assert_eq!(split_identifier("register_hook"), ["register", "hook"]);
        assert_eq!(split_identifier("IOError"), ["io", "error"]);
        assert_eq!(split_identifier("x"), ["x"]);
    }

    #[test]
    fn terms_keep_whole_identifier_and_stem_parts() {
        assert_eq!(terms("register_hooks failed"), ["register_hooks", "regist", "hook", "fail"]);
        assert_eq!(terms("the 123 a"), Vec::<String>::new());
    }
}
