//! Benchmark inputs: the instance and gold JSON-lines files of `shared/data/`, loaded leniently.
//!
//! A malformed line never aborts a load: it is counted in [`Loaded::bad_lines`] with its line
//! number and the parser's complaint, so a run can report it and carry on with the rest.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One benchmark issue as loaded, answer included: the runner hands the engine only its
/// [`Issue`] view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    /// `owner/name`, as on GitHub.
    pub repo: String,
    pub base_commit: String,
    pub problem_statement: String,
    /// The fix; the gold was derived from it. Never handed to an engine (see [`Issue`]).
    #[serde(default)]
    pub patch: String,
}

/// What an engine under evaluation is given of an instance: which one it is and the issue's
/// text. No patch and no gold: an engine cannot read the answer by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issue<'a> {
    pub instance_id: &'a str,
    /// `owner/name`, as on GitHub (selects per-repository models, e.g. out-of-fold ones).
    pub repo: &'a str,
    pub text: &'a str,
}

impl Instance {
    /// The engine's view of this instance.
    pub fn issue(&self) -> Issue<'_> {
        Issue { instance_id: &self.instance_id, repo: &self.repo, text: &self.problem_statement }
    }
}

/// The answer key for one instance, as derived from its patch (see EVAL.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gold {
    pub instance_id: String,
    /// Source files the patch edits, tests excluded.
    #[serde(default)]
    pub files: Vec<String>,
    /// Edited functions, `path:Class.method` (Python) or `path:Type::method` (Rust).
    #[serde(default)]
    pub functions: Vec<String>,
    /// Functions the patch adds; scored only in the `_with_added` variant.
    #[serde(default)]
    pub added_functions: Vec<String>,
    /// Every file the patch touches, tests and docs included.
    #[serde(default)]
    pub all_files: Vec<String>,
    /// False when function gold fell back to hunk headers; such instances are not scored on
    /// functions.
    #[serde(default)]
    pub function_gold_reliable: bool,
}

/// A line that could not be parsed, kept for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub error: String,
}

/// What a lenient load produced: the parsed records and the lines it had to skip.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub items: Vec<T>,
    pub bad_lines: Vec<BadLine>,
}

/// The input file itself could not be read; bad *lines* are not an error.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}; check the path (the data lives in shared/data/)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Loads `instance_id, repo, base_commit, problem_statement, patch` records.
pub fn load_instances(path: &Path) -> Result<Loaded<Instance>, DataError> {
    load_jsonl(path)
}

/// Loads gold records (`instance_id, files, functions, added_functions, all_files,
/// function_gold_reliable`).
pub fn load_gold(path: &Path) -> Result<Loaded<Gold>, DataError> {
    load_jsonl(path)
}

/// Loads gold keyed by instance id (a later duplicate id replaces an earlier one), with the bad
/// lines.
pub fn load_gold_map(path: &Path) -> Result<(BTreeMap<String, Gold>, Vec<BadLine>), DataError> {
    let Loaded { items, bad_lines } = load_gold(path)?;
    let map = items.into_iter().map(|g| (g.instance_id.clone(), g)).collect();
    Ok((map, bad_lines))
}

/// The dataset's short name, used in run directories: the file stem without `.gold`
/// (`swebench_lite.jsonl` → `swebench_lite`).
pub fn dataset_name(instances: &Path) -> String {
    let stem = instances
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".to_owned());
    stem.trim_end_matches(".gold").to_owned()
}

/// Parses one JSON value per non-blank line, keeping the good ones.
pub fn parse_jsonl<T: DeserializeOwned>(text: &str) -> Loaded<T> {
    let mut items = Vec::new();
    let mut bad_lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(item) => items.push(item),
            Err(e) => bad_lines.push(BadLine { line: i + 1, error: e.to_string() }),
        }
    }
    Loaded { items, bad_lines }
}

fn load_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Loaded<T>, DataError> {
    let bytes = fs::read(path).map_err(|source| DataError::Read { path: path.to_owned(), source })?;
    // Invalid UTF-8 is confined to the lines that carry it: they fail to parse as JSON strings.
    let text = String::from_utf8_lossy(&bytes);
    Ok(parse_jsonl(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let text = concat!(
            r#"{"instance_id":"a","files":["x.py"],"functions":[],"added_functions":[],"all_files":[],"function_gold_reliable":true}"#,
            "\n\nnot json\n",
            r#"{"instance_id":"b"}"#,
            "\n",
            r#"{"files":[]}"#,
            "\n"
        );
        let loaded: Loaded<Gold> = parse_jsonl(text);
        let ids: Vec<_> = loaded.items.iter().map(|g| g.instance_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(!loaded.items[1].function_gold_reliable);
        let lines: Vec<_> = loaded.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, [3, 5]);
    }

    #[test]
    fn dataset_name_drops_gold_suffix() {
        assert_eq!(dataset_name(Path::new("/d/swebench_lite.jsonl")), "swebench_lite");
        assert_eq!(dataset_name(Path::new("rust_tokio.gold.jsonl")), "rust_tokio");
    }

    /// Instance and gold files written here load through the file loaders: defaults fill
    /// absent fields, blank lines are ignored, a bad line (invalid JSON, invalid UTF-8) costs
    /// only itself, a later duplicate gold id wins, and the engine's view carries no patch.
    #[test]
    fn instance_and_gold_files_load_leniently() {
        let dir = tempfile::tempdir().unwrap();
        let instances = dir.path().join("toy.jsonl");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(
            br#"{"instance_id":"o__r-1","repo":"o/r","base_commit":"abc123","problem_statement":"parse fails","patch":"diff"}"#,
        );
        bytes.extend_from_slice(b"\n\n{\"instance_id\":\"bad\xff\",\"repo\":\"o/r\"}\n");
        bytes.extend_from_slice(
            br#"{"instance_id":"o__r-2","repo":"o/r","base_commit":"def456","problem_statement":"no patch"}"#,
        );
        bytes.extend_from_slice(b"\n{\"instance_id\":\"o__r-3\"}\n");
        fs::write(&instances, bytes).unwrap();

        let loaded = load_instances(&instances).unwrap();
        let ids: Vec<_> = loaded.items.iter().map(|i| i.instance_id.as_str()).collect();
        assert_eq!(ids, ["o__r-1", "o__r-2"]);
        assert_eq!(loaded.items[1].patch, "");
        // Line 3 carries invalid UTF-8, line 5 lacks required fields.
        let bad: Vec<_> = loaded.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(bad, [3, 5]);
        let issue = loaded.items[0].issue();
        assert_eq!(issue, Issue { instance_id: "o__r-1", repo: "o/r", text: "parse fails" });

        let gold = dir.path().join("toy.gold.jsonl");
        let lines = [
            r#"{"instance_id":"o__r-1","files":["old.py"]}"#,
            r#"{"instance_id":"o__r-2","files":["b.py"],"functions":["b.py:f"],"function_gold_reliable":true}"#,
            "[1, 2]",
            r#"{"instance_id":"o__r-1","files":["a.py"],"all_files":["a.py","docs/a.md"]}"#,
        ];
        fs::write(&gold, lines.join("\n")).unwrap();
        let listed = load_gold(&gold).unwrap();
        assert_eq!((listed.items.len(), listed.bad_lines.len()), (3, 1));
        let (map, bad) = load_gold_map(&gold).unwrap();
        assert_eq!(bad, [BadLine { line: 3, error: bad[0].error.clone() }]);
        assert_eq!(map.keys().collect::<Vec<_>>(), ["o__r-1", "o__r-2"]);
        assert_eq!(map["o__r-1"].files, ["a.py"]);
        assert_eq!(map["o__r-1"].all_files, ["a.py", "docs/a.md"]);
        assert!(!map["o__r-1"].function_gold_reliable);
        assert!(map["o__r-2"].function_gold_reliable);
        assert_eq!(dataset_name(&gold), "toy");
    }

    /// A file that cannot be read is an error naming it; bad lines never are.
    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.jsonl");
        let err = load_instances(&path).unwrap_err();
        assert!(matches!(&err, DataError::Read { path: p, .. } if p == &path), "{err}");
        assert!(err.to_string().contains("absent.jsonl"), "{err}");
        assert!(load_gold_map(&path).is_err());
    }
}
