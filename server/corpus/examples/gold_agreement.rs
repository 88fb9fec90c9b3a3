//! How closely the corpus's gold rules agree with the evaluation data's gold: for each benchmark
//! instance whose repository has a mirror, the patch is placed in the base commit's files with
//! `locus_corpus::gold` and the modified functions compared with `functions` of the gold file.
//! This reads benchmark repositories for *evaluation* only; the builder itself refuses them.
//!
//! `cargo run --release -p locus-corpus --example gold_agreement -- MIRRORS DATA.jsonl DATA.gold.jsonl`

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use locus_corpus::gold::{file_gold, Version};
use locus_corpus::patch;
use locus_corpus::paths::{classify, PathClass};

fn show(git_dir: &std::path::Path, rev_path: &str) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg(format!("--git-dir={}", git_dir.display()))
        .args(["cat-file", "blob", rev_path])
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// The new file: the old one with the removed lines taken out and the added ones put in.
fn apply(old: &[u8], diff: &patch::FileDiff) -> Vec<u8> {
    let removed: BTreeSet<u32> = diff.removed.iter().map(|r| r.0).collect();
    let added: BTreeMap<u32, &[u8]> = diff.added.iter().map(|(n, l)| (*n, l.as_slice())).collect();
    let mut kept =
        old.split(|&b| b == b'\n').enumerate().filter(|(i, _)| !removed.contains(&(*i as u32 + 1)));
    let mut out = Vec::new();
    let mut n = 1u32;
    loop {
        let line = match added.get(&n) {
            Some(l) => *l,
            None => match kept.next() {
                Some((_, l)) => l,
                None => break,
            },
        };
        out.extend_from_slice(line);
        out.push(b'\n');
        n += 1;
    }
    out.pop();
    out
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mirrors, data, gold] = args.as_slice() else {
        anyhow::bail!("usage: gold_agreement MIRRORS DATA.jsonl DATA.gold.jsonl");
    };
    let mut golds = BTreeMap::new();
    for line in std::fs::read_to_string(gold)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        golds.insert(v["instance_id"].as_str().unwrap_or("").to_string(), v);
    }
    let (mut n, mut exact, mut recall_sum, mut precision_sum) = (0usize, 0usize, 0f64, 0f64);
    for line in std::fs::read_to_string(data)?.lines() {
        let inst: serde_json::Value = serde_json::from_str(line)?;
        let id = inst["instance_id"].as_str().unwrap_or("");
        let repo = inst["repo"].as_str().unwrap_or("").replace('/', "+");
        let Some(git_dir) = locus_corpus::git::find_git_dir(&std::path::Path::new(mirrors).join(&repo))
        else {
            continue;
        };
        let Some(g) = golds.get(id) else { continue };
        if g["function_gold_reliable"] != true {
            continue;
        }
        let base = inst["base_commit"].as_str().unwrap_or("");
        let mut ours = BTreeSet::new();
        let mut ok = true;
        for f in patch::parse(inst["patch"].as_str().unwrap_or("").as_bytes()) {
            let Some(path) = f.old_path.clone() else { continue };
            let PathClass::Source(lang) = classify(&path) else { continue };
            let Some(old) = show(&git_dir, &format!("{base}:{path}")) else {
                ok = false;
                break;
            };
            let new = f.new_path.as_ref().map(|_| apply(&old, &f));
            let (pv, cv) = (Version::parse(lang, &old), new.as_deref().map(|b| Version::parse(lang, b)));
            let fg = file_gold(lang, Some(&pv), cv.as_ref(), &f.removed, &f.added);
            ours.extend(fg.modified.iter().map(|q| format!("{path}:{q}")));
        }
        if !ok {
            continue;
        }
        let theirs: BTreeSet<String> = g["functions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        n += 1;
        let hit = ours.intersection(&theirs).count() as f64;
        recall_sum += if theirs.is_empty() { 1.0 } else { hit / theirs.len() as f64 };
        precision_sum += if ours.is_empty() { 1.0 } else { hit / ours.len() as f64 };
        if ours == theirs {
            exact += 1;
        } else {
            println!("{id}\n  ours   {ours:?}\n  theirs {theirs:?}");
        }
    }
    let n_f = n.max(1) as f64;
    println!(
        "{n} instances: exact {exact} ({:.1} %), recall {:.3}, precision {:.3}",
        100.0 * exact as f64 / n_f,
        recall_sum / n_f,
        precision_sum / n_f
    );
    Ok(())
}
