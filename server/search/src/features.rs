//! The feature contract between the engine and its learned models: one typed struct per model
//! input, whose field order *is* the column order of the model's input. The names exist in this
//! file only; `models/features.json` (the schema the training scripts read) is written from
//! them, every model's `.json` records the names it was trained on, and a model whose names
//! differ is refused when it is loaded (`locus-engine`).

use locus_index::EntityId;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::fusion::{kind_code, Evidence, Fused};

/// Declares a row of model inputs: a struct of `f32` fields plus its column names (the field
/// names, in order), its width, and conversions to and from the flat row a model reads.
macro_rules! feature_row {
    ($(#[$doc:meta])* $row:ident { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
        pub struct $row {
            $($(#[$fdoc])* pub $field: f32,)*
        }

        impl $row {
            /// The column names, in the model's input order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
            /// The model's input width.
            pub const WIDTH: usize = $row::NAMES.len();

            /// The row as the model reads it.
            pub fn to_row(&self) -> [f32; $row::WIDTH] {
                [$(self.$field),*]
            }

            /// A row back from its columns (the inverse of [`Self::to_row`]).
            pub fn from_row(row: [f32; $row::WIDTH]) -> $row {
                let [$($field),*] = row;
                $row { $($field),* }
            }
        }
    };
}

feature_row! {
    /// The function model's inputs for one function-level candidate (`models/ranker.onnx`).
    /// Evidence values are the best any call gave, in 0..=1 before weighting.
    FunctionFeatures {
        /// The whole issue's BM25 score of the entity relative to the best entity's (also for
        /// candidates the lexical tool did not return), or the lexical tool's, whichever is higher.
        lexical,
        /// The semantic tool's score (0 outside its top hits).
        semantic,
        /// A symbol lookup of a name in the issue.
        symbol,
        /// Named by a traceback frame or panic location.
        frame,
        /// In a file whose path the issue names.
        path,
        /// Contains a string quoted in the issue.
        grep,
        /// A graph neighbour of a leading candidate.
        graph,
        /// How many tools returned it.
        n_tools,
        /// 1 in a test file.
        is_test,
        /// 0 function, 1 method, 2 class, 3 struct / enum / trait / union, 4 other.
        kind,
        /// ln of its length in lines.
        log_lines,
        /// The fusion's score.
        heuristic,
        /// ln(1 + its rank in the fusion's candidate pool).
        log_rank,
        /// ln(1 + its file's rank in the fusion's file ranking).
        log_file_rank,
        /// Its file's path or frame evidence.
        file_path,
        /// Its file's lexical evidence.
        file_lexical,
    }
}

feature_row! {
    /// Inputs beside [`FunctionFeatures`] that the function and file models do not read; the
    /// tail model does (`models/ranker.tail.onnx`), and `locus eval --features` dumps them.
    CandidateFeatures {
        /// The encoder's cosine of the function with the issue (the semantic tool's query), over
        /// the best pooled function's, clamped at 0, for every pooled function
        /// (docs/ranker-notes.md has what it measured as a model input).
        semantic_all,
    }
}

feature_row! {
    /// The file model's inputs for one file candidate (`models/ranker.files.onnx`). The first six
    /// describe the file in the fusion; the `fn_*` ones summarise the file's function candidates,
    /// `fn_best` and `fn_second` from the function model's scores (0 without one).
    FileFeatures {
        /// The fusion's file score over the best file's.
        file_score,
        /// ln(1 + its rank in the fusion's file ranking).
        log_file_rank,
        /// Path or frame evidence of the file itself.
        file_path,
        /// The whole issue's BM25 score of the file's own document relative to the best, or the
        /// lexical tool's, whichever is higher.
        file_lexical,
        /// The semantic tool's score of the file itself.
        file_semantic,
        /// 1 for a test file.
        is_test,
        /// The highest `lexical` of its function candidates.
        fn_lexical_max,
        /// The highest `semantic` of its function candidates.
        fn_semantic_max,
        /// The highest `symbol` of its function candidates.
        fn_symbol_max,
        /// The function model's best score in the file.
        fn_best,
        /// The function model's second-best score in the file.
        fn_second,
        /// ln(1 + the number of its function candidates).
        log_fn_count,
    }
}

/// The tail model's input width: a function row, then its candidate inputs.
pub const TAIL_WIDTH: usize = FunctionFeatures::WIDTH + CandidateFeatures::WIDTH;

/// The tail model's input row: `row` then `candidate`, as the schema's `tail` list says.
pub fn tail_row(row: &FunctionFeatures, candidate: &CandidateFeatures) -> [f32; TAIL_WIDTH] {
    let mut x = [0.0; TAIL_WIDTH];
    x[..FunctionFeatures::WIDTH].copy_from_slice(&row.to_row());
    x[FunctionFeatures::WIDTH..].copy_from_slice(&candidate.to_row());
    x
}

/// The tail model's column names (the function model's, then the candidate inputs).
pub fn tail_names() -> Vec<&'static str> {
    FunctionFeatures::NAMES.iter().chain(CandidateFeatures::NAMES).copied().collect()
}

feature_row! {
    /// The search policy's inputs for one call it considers (`models/policy.onnx`): what the call
    /// is, where it came from, the search's state when it is planned, and, for the calls whose
    /// result an index lookup predicts exactly (symbol, outline, graph), what it would return.
    /// Unknown values are -1.
    CallFeatures {
        /// The tool, one-hot.
        tool_symbol,
        tool_outline,
        tool_grep,
        tool_graph,
        tool_lexical,
        /// The signal it came from: a traceback frame or panic, a path, a qualified name, a bare
        /// identifier, an error message or quoted string, a flag, the re-query's learned terms.
        src_frame,
        src_path,
        src_qualified,
        src_identifier,
        src_message,
        src_flag,
        src_feedback,
        /// The name was written as code (a fenced block or backticks).
        src_in_code,
        /// A graph call's relation, one-hot.
        rel_calls,
        rel_called_by,
        rel_contained_by,
        rel_contains,
        rel_overrides,
        rel_inherited_by,
        /// The weight its hits would carry.
        weight,
        turn,
        /// A graph call's leader: its rank (1-based; 0 for other calls) and score relative to the
        /// first.
        leader_rank,
        leader_strength,
        /// `(s1 - s2) / s1` of the function ranking when the turn is planned.
        confidence,
        calls_before,
        /// ln(1 + entities seen so far).
        log_seen,
        /// Mean `g_i` of this tool's calls in earlier turns (-1: none yet).
        tool_gain_before,
        /// ln(1 + entities it would return), exactly predicted (-1: not predicted).
        log_predicted,
        /// Share of those already seen (-1: not predicted).
        predicted_seen,
        /// ln(1 + the best current function rank among them; -1: none ranked or not predicted).
        log_predicted_best_rank,
        /// Its argument's length in characters (ln 1+), words, and whether it reads as code
        /// (`_`, `.`, `::`, `(` or an inner capital).
        log_arg_chars,
        arg_words,
        arg_is_code,
    }
}

/// Where the schema lives in the checkout, relative to the repository root.
pub const SCHEMA_PATH: &str = "models/features.json";

/// The schema file's text (`models/features.json`): every model input's column names, in
/// order. The training scripts read it; a test keeps the committed file equal to this.
pub fn schema_json() -> String {
    #[derive(Serialize)]
    struct Schema {
        about: &'static str,
        function: &'static [&'static str],
        candidate: &'static [&'static str],
        file: &'static [&'static str],
        tail: Vec<&'static str>,
        call: &'static [&'static str],
    }
    let schema = Schema {
        about: "The localization models' input columns, in order, as the engine computes them \
                (server/search/src/features.rs). Written by the engine's tests \
                (`UPDATE_SCHEMA=1 cargo test -p locus-search schema`); read by scripts/model/*.py. \
                A model's .json records the names it was trained on; the engine refuses a model \
                whose names differ.",
        function: FunctionFeatures::NAMES,
        candidate: CandidateFeatures::NAMES,
        file: FileFeatures::NAMES,
        tail: tail_names(),
        call: CallFeatures::NAMES,
    };
    let mut text = serde_json::to_string_pretty(&schema).expect("plain data serialises");
    text.push('\n');
    text
}

/// One [`FunctionFeatures`] row per candidate (`ranked`: the candidate pool in the fusion's
/// order with its scores; `files`: the fusion's file ranking). `lexical` is the whole issue's
/// BM25 score of the entity relative to the best entity's, also for candidates the lexical tool
/// did not return (its top [`crate::tools::MAX_HITS`] only), so every row measures the same thing.
pub(crate) fn function_features(
    fused: &Fused<'_>,
    ranked: &[(EntityId, f32)],
    files: &[(EntityId, f32, EntityId)],
) -> Vec<FunctionFeatures> {
    let ix = fused.ix;
    let file_rank: FxHashMap<EntityId, usize> = files.iter().enumerate().map(|(i, f)| (f.0, i)).collect();
    let pool: FxHashSet<EntityId> = ranked.iter().map(|r| r.0).collect();
    let (found, top) = ix.lexical.search_with_top(&fused.query_terms, pool.len(), |d| pool.contains(&d));
    let lexical: FxHashMap<EntityId, f32> =
        found.into_iter().map(|(id, s)| (id, s / top.max(1e-6))).collect();
    let none = Evidence::default();
    ranked
        .iter()
        .enumerate()
        .map(|(rank, &(id, score))| {
            let ev = fused.ev.get(&id).unwrap_or(&none);
            let e = ix.entity(id);
            let fid = ix.file_entity(id);
            let fev = fused.ev.get(&fid);
            let lines = (e.span.end.line - e.span.start.line + 1) as f32;
            let fr = file_rank.get(&fid).copied().unwrap_or(files.len()) as f32;
            FunctionFeatures {
                lexical: ev.lexical.max(lexical.get(&id).copied().unwrap_or(0.0)),
                semantic: ev.semantic,
                symbol: ev.symbol,
                frame: ev.frame,
                path: ev.path,
                grep: ev.grep,
                graph: ev.graph,
                n_tools: ev.tools.count_ones() as f32,
                is_test: if ix.is_test(id) { 1.0 } else { 0.0 },
                kind: kind_code(e.kind),
                log_lines: lines.ln(),
                heuristic: score,
                log_rank: (1.0 + rank as f32).ln(),
                log_file_rank: (1.0 + fr).ln(),
                file_path: fev.map(|f| f.path.max(f.frame)).unwrap_or(0.0),
                file_lexical: fev.map(|f| f.lexical).unwrap_or(0.0),
            }
        })
        .collect()
}

/// The [`CandidateFeatures`] of the pooled functions `ids`, in order.
pub(crate) fn candidate_features(fused: &Fused<'_>, ids: &[EntityId]) -> Vec<CandidateFeatures> {
    let cosine = match fused.dense {
        Some(d) => d.similarity(&crate::search::semantic_query(fused.issue), ids),
        None => vec![0.0; ids.len()],
    };
    let best = cosine.iter().copied().fold(0.0, f32::max).max(1e-6);
    cosine.into_iter().map(|c| CandidateFeatures { semantic_all: (c / best).max(0.0) }).collect()
}

/// One [`FileFeatures`] row per pooled file (`pool`: indices into the fusion's file ranking
/// `files`). `file_lexical` is the whole issue's BM25 score of the file's own document relative
/// to the best entity's, as the function rows' `lexical`; the `fn_*` values summarise `rows`,
/// the function candidates, and `learned`, the function model's scores.
pub(crate) fn file_features(
    fused: &Fused<'_>,
    files: &[(EntityId, f32, EntityId)],
    pool: &[usize],
    rows: &[(EntityId, FunctionFeatures)],
    learned: &FxHashMap<EntityId, f32>,
) -> Vec<FileFeatures> {
    let ix = fused.ix;
    let ids: FxHashSet<EntityId> = pool.iter().map(|&i| files[i].0).collect();
    let (found, top) = ix.lexical.search_with_top(&fused.query_terms, ids.len(), |d| ids.contains(&d));
    let lexical: FxHashMap<EntityId, f32> =
        found.into_iter().map(|(id, s)| (id, s / top.max(1e-6))).collect();
    /// What a file's function candidates add up to.
    #[derive(Clone, Copy, Default)]
    struct Members {
        lexical_max: f32,
        semantic_max: f32,
        symbol_max: f32,
        best: f32,
        second: f32,
        count: f32,
    }
    let mut agg: FxHashMap<EntityId, Members> = FxHashMap::default();
    for (id, r) in rows {
        let a = agg.entry(ix.file_entity(*id)).or_default();
        a.lexical_max = a.lexical_max.max(r.lexical);
        a.semantic_max = a.semantic_max.max(r.semantic);
        a.symbol_max = a.symbol_max.max(r.symbol);
        let l = learned.get(id).copied().unwrap_or(0.0);
        if l > a.best {
            a.second = a.best;
            a.best = l;
        } else if l > a.second {
            a.second = l;
        }
        a.count += 1.0;
    }
    let top_file = files.first().map(|f| f.1).unwrap_or(1.0).max(1e-6);
    let none = Evidence::default();
    pool.iter()
        .map(|&i| {
            let (fid, score, _) = files[i];
            let ev = fused.ev.get(&fid).unwrap_or(&none);
            let a = agg.get(&fid).copied().unwrap_or_default();
            FileFeatures {
                file_score: score / top_file,
                log_file_rank: (1.0 + i as f32).ln(),
                file_path: ev.path.max(ev.frame),
                file_lexical: ev.lexical.max(lexical.get(&fid).copied().unwrap_or(0.0)),
                file_semantic: ev.semantic,
                is_test: if ix.is_test(fid) { 1.0 } else { 0.0 },
                fn_lexical_max: a.lexical_max,
                fn_semantic_max: a.semantic_max,
                fn_symbol_max: a.symbol_max,
                fn_best: a.best,
                fn_second: a.second,
                log_fn_count: (1.0 + a.count).ln(),
            }
        })
        .collect()
}
