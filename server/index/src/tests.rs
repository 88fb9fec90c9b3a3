//! Index tests: graph edges on small multi-file fixtures, and bad input on a real directory.

use std::path::PathBuf;
use std::sync::Arc;

use expect_test::{expect, Expect};

use crate::{EdgeKind, EntityId, FileUnit, Index, Skipped, WalkOptions};

/// Builds an index from `(path, text)` pairs without touching the disk.
fn index_of(files: &[(&str, &str)]) -> Index {
    let units = files
        .iter()
        .map(|(p, t)| {
            let lang = locus_syntax::Lang::of_path(p).unwrap();
            Arc::new(FileUnit::build(p.to_string(), lang, Arc::from(*t)))
        })
        .collect();
    Index::from_units(PathBuf::from("/ws"), units, Skipped::default())
}

/// [`index_of`] for files whose text an edit replaces.
fn fresh(files: &[(&str, String)]) -> Index {
    index_of(&files.iter().map(|(p, t)| (*p, t.as_str())).collect::<Vec<_>>())
}

fn check_edges(files: &[(&str, &str)], kinds: &[EdgeKind], expect: Expect) {
    let ix = index_of(files);
    let mut lines = Vec::new();
    for id in (0..ix.n_entities() as u32).map(EntityId) {
        for &(to, k) in ix.graph.out(id) {
            if kinds.contains(&k) {
                lines.push(format!("{} -{}-> {}", ix.full_name(id), k.as_str(), ix.full_name(to)));
            }
        }
    }
    for (from, call) in ix.graph.unresolved(&ix.files) {
        let name = ix.file_of(from).unit.calls.get(call as usize).callee;
        lines.push(format!("{} -calls?-> {name}", ix.full_name(from)));
    }
    lines.sort();
    expect.assert_eq(&(lines.join("\n") + "\n"));
}

#[test]
fn python_imports_calls_and_inheritance() {
    check_edges(
        &[
            ("pkg/__init__.py", "from .models import Request\n"),
            (
                "pkg/models.py",
                "class Base:\n    def prepare(self): pass\n\nclass Request(Base):\n    def send(self):\n        self.prepare()\n        helper()\n\ndef helper():\n    pass\n",
            ),
            (
                "pkg/api.py",
                "import pkg.models as m\nfrom pkg import Request\n\ndef get(url):\n    r = Request()\n    r.send()\n    m.helper()\n",
            ),
        ],
        &[EdgeKind::Calls, EdgeKind::Imports, EdgeKind::Inherits],
        expect![[r#"
            pkg/__init__.py -imports-> pkg/models.py
            pkg/__init__.py -imports-> pkg/models.py:Request
            pkg/api.py -imports-> pkg/__init__.py
            pkg/api.py -imports-> pkg/models.py
            pkg/api.py -imports-> pkg/models.py:Request
            pkg/api.py:get -calls-> pkg/models.py:Request
            pkg/api.py:get -calls-> pkg/models.py:helper
            pkg/api.py:get -calls?-> send
            pkg/models.py:Request -inherits-> pkg/models.py:Base
            pkg/models.py:Request.send -calls-> pkg/models.py:Base.prepare
            pkg/models.py:Request.send -calls-> pkg/models.py:helper
        "#]],
    );
}

#[test]
fn rust_uses_calls_impls_and_traits() {
    check_edges(
        &[
            (
                "src/sync/semaphore.rs",
                "pub struct Semaphore;\nimpl Semaphore {\n    pub fn new() -> Self { Semaphore }\n    pub fn acquire(&self) { self.poll() }\n    fn poll(&self) {}\n}\n",
            ),
            (
                "src/runtime/mod.rs",
                "use crate::sync::semaphore::Semaphore;\npub trait Schedule { fn schedule(&self); }\nstruct Rt;\nimpl Schedule for Rt { fn schedule(&self) { let s = Semaphore::new(); s.acquire(); } }\n",
            ),
        ],
        &[EdgeKind::Calls, EdgeKind::Imports, EdgeKind::Inherits, EdgeKind::Contains],
        expect![[r#"
            src/runtime/mod.rs -contains-> src/runtime/mod.rs:Rt
            src/runtime/mod.rs -contains-> src/runtime/mod.rs:Schedule
            src/runtime/mod.rs -contains-> src/runtime/mod.rs:impl Schedule for Rt
            src/runtime/mod.rs -imports-> src/sync/semaphore.rs:Semaphore
            src/runtime/mod.rs:Rt -contains-> src/runtime/mod.rs:impl Schedule for Rt
            src/runtime/mod.rs:Rt::schedule -calls-> src/sync/semaphore.rs:Semaphore::new
            src/runtime/mod.rs:Rt::schedule -calls?-> acquire
            src/runtime/mod.rs:Schedule -contains-> src/runtime/mod.rs:Schedule::schedule
            src/runtime/mod.rs:impl Schedule for Rt -contains-> src/runtime/mod.rs:Rt::schedule
            src/runtime/mod.rs:impl Schedule for Rt -inherits-> src/runtime/mod.rs:Schedule
            src/sync/semaphore.rs -contains-> src/sync/semaphore.rs:Semaphore
            src/sync/semaphore.rs -contains-> src/sync/semaphore.rs:impl Semaphore
            src/sync/semaphore.rs:Semaphore -contains-> src/sync/semaphore.rs:impl Semaphore
            src/sync/semaphore.rs:Semaphore::acquire -calls-> src/sync/semaphore.rs:Semaphore::poll
            src/sync/semaphore.rs:impl Semaphore -contains-> src/sync/semaphore.rs:Semaphore::acquire
            src/sync/semaphore.rs:impl Semaphore -contains-> src/sync/semaphore.rs:Semaphore::new
            src/sync/semaphore.rs:impl Semaphore -contains-> src/sync/semaphore.rs:Semaphore::poll
        "#]],
    );
}

#[test]
fn edits_replace_and_remove_files() {
    let ix = index_of(&[("a.py", "def one(): pass\n"), ("b.py", "def two(): pass\n")]);
    let ix2 = ix.with_changes(vec![
        ("a.py".into(), Some("def uno(): pass\n".into())),
        ("b.py".into(), None),
        ("c.rs".into(), Some("fn three() {}\n".into())),
    ]);
    let names: Vec<String> = (0..ix2.n_entities() as u32).map(|i| ix2.full_name(EntityId(i))).collect();
    assert_eq!(names, ["a.py", "a.py:uno", "c.rs", "c.rs:three"]);
    assert!(ix2.symbols.lookup("one").is_empty());
    // An unchanged file is shared, not parsed again.
    let ix3 = ix2.with_changes(vec![("c.rs".into(), Some("fn three() {}\n".into()))]);
    assert!(Arc::ptr_eq(&ix2.files[1].unit, &ix3.files[1].unit));
}

#[cfg(unix)]
#[test]
fn bad_files_are_skipped_and_counted() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(outside.path().join("secret.py"), "def secret(): pass\n").unwrap();
    std::fs::create_dir(root.join("pkg")).unwrap();
    std::fs::write(root.join("pkg/ok.py"), "def ok(): pass\n").unwrap();
    std::fs::write(root.join("pkg/bin.py"), b"def x():\0\0\0").unwrap();
    std::fs::write(root.join("pkg/latin1.py"), b"# caf\xe9\ndef f(): pass\n").unwrap();
    let big = "x = 1\n".repeat(50 * 1024 * 1024 / 6);
    std::fs::write(root.join("pkg/big.py"), big).unwrap();
    symlink(outside.path(), root.join("escape")).unwrap();
    symlink(outside.path().join("secret.py"), root.join("pkg/secret_link.py")).unwrap();
    symlink(root.join("pkg"), root.join("pkg/loop")).unwrap();
    let ix = Index::build(root, &WalkOptions::default()).unwrap();
    let paths: Vec<&str> = ix.files.iter().map(|f| f.unit.path.as_str()).collect();
    assert_eq!(paths, ["pkg/ok.py"]);
    let skipped = &ix.skipped.0;
    assert_eq!(skipped.get("binary"), Some(&1));
    assert_eq!(skipped.get("not_utf8"), Some(&1));
    assert_eq!(skipped.get("too_large"), Some(&1));
    assert_eq!(skipped.get("symlink"), Some(&1), "{skipped:?}");
    assert!(ix.symbols.lookup("secret").is_empty());
}

#[test]
fn a_file_deleted_between_walk_and_read_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.py"), "def a(): pass\n").unwrap();
    std::fs::write(dir.path().join("gone.py"), "def g(): pass\n").unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (listed, _) = crate::walk::list(&root, &WalkOptions::default());
    std::fs::remove_file(root.join("gone.py")).unwrap();
    let (files, skipped) = crate::walk::read_all(listed, &WalkOptions::default());
    assert_eq!(files.len(), 1);
    assert_eq!(skipped.0.get("unreadable"), Some(&1));
}

#[test]
fn resolve_inside_refuses_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.py"), "").unwrap();
    assert!(crate::walk::resolve_inside(root, "a.py").is_some());
    assert!(crate::walk::resolve_inside(root, "../a.py").is_none());
    assert!(crate::walk::resolve_inside(root, "/etc/passwd").is_none());
}

/// Runs `f` on a thread and fails the test if it takes longer than `secs` (a hang would
/// otherwise hang the test run).
#[cfg(unix)]
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs)).expect("did not finish: blocked")
}

#[cfg(unix)]
fn mkfifo(p: &std::path::Path) {
    assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success());
}

#[cfg(unix)]
#[test]
fn special_files_are_counted_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("ok.py"), "def ok(): pass\n").unwrap();
    mkfifo(&root.join("pipe.py"));
    drop(std::os::unix::net::UnixListener::bind(root.join("sock.rs")).unwrap());
    let r = root.clone();
    let ix = within(20, move || Index::build(&r, &WalkOptions::default()).unwrap());
    let paths: Vec<&str> = ix.files.iter().map(|f| f.unit.path.as_str()).collect();
    assert_eq!(paths, ["ok.py"]);
    assert_eq!(ix.skipped.0.get("special_file"), Some(&2), "{:?}", ix.skipped);
    // A FIFO where a listed file was: the read does not wait for a writer.
    let p = root.join("pipe.py");
    let read = within(20, move || crate::walk::read_source(&p, 1 << 20));
    assert_eq!(read, Err(crate::SkipReason::Special));
}

/// Regression: a FIFO named `.gitignore` blocked the walk forever (the `ignore` crate opens it).
#[cfg(unix)]
#[test]
fn a_fifo_ignore_file_skips_its_directory_and_a_root_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("ok.py"), "def ok(): pass\n").unwrap();
    std::fs::create_dir(root.join("trap")).unwrap();
    std::fs::write(root.join("trap/inside.py"), "def inside(): pass\n").unwrap();
    mkfifo(&root.join("trap/.gitignore"));
    let r = root.clone();
    let ix = within(20, move || Index::build(&r, &WalkOptions::default()).unwrap());
    let paths: Vec<&str> = ix.files.iter().map(|f| f.unit.path.as_str()).collect();
    assert_eq!(paths, ["ok.py"]);
    assert_eq!(ix.skipped.0.get("special_ignore_file"), Some(&1));
    mkfifo(&root.join(".ignore"));
    let r = root.clone();
    let err = within(20, move || Index::build(&r, &WalkOptions::default()).err().unwrap());
    assert!(err.to_string().contains(".ignore is not a regular file"), "{err}");
}

#[cfg(unix)]
#[test]
fn admitted_follows_the_walks_rules() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for d in ["src", "build", ".venv", "vendor"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::write(root.join(".gitignore"), "build/\n*_pb2.py\n").unwrap();
    for f in ["src/a.py", "build/gen.py", ".venv/lib.py", "vendor/v.py", "src/x_pb2.py"] {
        std::fs::write(root.join(f), "def f(): pass\n").unwrap();
    }
    std::fs::write(outside.path().join("o.py"), "").unwrap();
    symlink(outside.path(), root.join("escape")).unwrap();
    symlink(outside.path().join("o.py"), root.join("src/link.py")).unwrap();
    mkfifo(&root.join("src/pipe.py"));
    let opts = WalkOptions { exclude: vec!["vendor/**".into()], ..WalkOptions::default() };
    let rels = [
        "src/a.py",
        "src/new.py",
        "newdir/new.py",
        "build/gen.py",
        "build/new.py",
        ".venv/lib.py",
        "vendor/v.py",
        "vendor/new.py",
        "src/x_pb2.py",
        "escape/o.py",
        "src/link.py",
        "src/pipe.py",
        "../x.py",
        "src/notes.txt",
        "src/.hidden.py",
        "newdir/.hid/new.py",
        "vendor/newdir/new.py",
        "build/newdir/new.py",
    ];
    let got = crate::walk::admitted(&root, &rels, &opts);
    let yes: Vec<&str> = rels.iter().zip(&got).filter(|(_, ok)| **ok).map(|(r, _)| *r).collect();
    assert_eq!(yes, ["src/a.py", "src/new.py", "newdir/new.py"]);
    // The same answer as the full walk for every file that exists.
    let (listed, _) = crate::walk::list(&root, &opts);
    let listed: Vec<&str> = listed.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(listed, ["src/a.py"]);
}

/// Everything a search reads from an index, as text: entities with spans, graph edges, terms.
fn dump(ix: &Index) -> String {
    let mut out = Vec::new();
    for id in (0..ix.n_entities() as u32).map(EntityId) {
        let e = ix.entity(id);
        out.push(format!("{} {:?} {}-{}", ix.full_name(id), e.kind, e.span.start.line, e.span.end.line));
        let mut edges: Vec<String> = ix
            .graph
            .out(id)
            .iter()
            .map(|&(to, k)| format!("  -{}-> {}", k.as_str(), ix.full_name(to)))
            .collect();
        edges.extend(
            ix.graph.inc(id).iter().map(|&(from, k)| format!("  <-{}- {}", k.as_str(), ix.full_name(from))),
        );
        edges.sort();
        out.extend(edges);
    }
    let mut unresolved: Vec<String> = ix
        .graph
        .unresolved(&ix.files)
        .map(|(from, c)| {
            format!("{} ?{}", ix.full_name(from), ix.file_of(from).unit.calls.get(c as usize).callee)
        })
        .collect();
    unresolved.sort();
    out.extend(unresolved);
    let mut counts: Vec<_> = ix.graph.counts.iter().map(|(k, v)| format!("{} {v}", k.as_str())).collect();
    counts.sort();
    out.extend(counts);
    out.push(format!("terms {} docs {}", ix.lexical.n_terms(), ix.lexical.n_docs()));
    out.push(format!("unresolved {}", ix.graph.n_unresolved()));
    out.join("\n")
}

#[test]
fn a_reopened_workspace_reuses_the_snapshot_and_parses_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ws = dir.path();
    std::fs::create_dir_all(ws.join("pkg")).unwrap();
    std::fs::write(ws.join("pkg/a.py"), "from pkg.b import helper\n\ndef run(x):\n    return helper(x)\n")
        .unwrap();
    std::fs::write(ws.join("pkg/b.py"), "def helper(x):\n    return x + 1\n").unwrap();
    std::fs::write(ws.join("lib.rs"), "pub fn parse(s: &str) -> u8 { s.len() as u8 }\n").unwrap();
    let snap = crate::persist::snapshot_path(cache.path(), &ws.canonicalize().unwrap());
    let opts = WalkOptions::default();

    let first = Index::build_with(ws, &opts, Some(&snap)).unwrap();
    assert_eq!((first.reuse.reused, first.reuse.parsed, first.reuse.rejected.clone()), (0, 3, None));
    assert!(first.reuse.changed());
    first.save_snapshot(&snap).unwrap();

    let again = Index::build_with(ws, &opts, Some(&snap)).unwrap();
    assert_eq!((again.reuse.reused, again.reuse.parsed, again.reuse.dropped), (3, 0, 0));
    assert!(!again.reuse.changed(), "nothing to write back");
    assert_eq!(dump(&again), dump(&Index::build(ws, &opts).unwrap()));

    // One file changed, one removed, one added: only the changed and the new one are parsed.
    std::fs::write(ws.join("pkg/b.py"), "def helper(x):\n    return x + 2\n\ndef other():\n    pass\n")
        .unwrap();
    std::fs::remove_file(ws.join("lib.rs")).unwrap();
    std::fs::write(ws.join("pkg/c.py"), "from pkg.b import other\n").unwrap();
    let changed = Index::build_with(ws, &opts, Some(&snap)).unwrap();
    assert_eq!((changed.reuse.reused, changed.reuse.parsed, changed.reuse.dropped), (1, 2, 2));
    assert_eq!(dump(&changed), dump(&Index::build(ws, &opts).unwrap()));
    assert!(changed.files.iter().any(|f| f.unit.path == "pkg/c.py"));
    assert!(!changed.files.iter().any(|f| f.unit.path == "lib.rs"));
}

#[test]
fn a_corrupt_or_foreign_snapshot_is_ignored_and_everything_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ws = dir.path();
    std::fs::write(ws.join("a.py"), "def f():\n    return 1\n").unwrap();
    let snap = crate::persist::snapshot_path(cache.path(), &ws.canonicalize().unwrap());
    let opts = WalkOptions::default();
    Index::build_with(ws, &opts, Some(&snap)).unwrap().save_snapshot(&snap).unwrap();
    let whole = std::fs::read(&snap).unwrap();

    // Truncated, a flipped byte, not a snapshot at all: each is rejected with a reason.
    let mut flipped = whole.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    for (bad, why) in [
        (whole[..whole.len() - 7].to_vec(), "truncated or corrupt"),
        (flipped, "truncated or corrupt"),
        (b"hello".to_vec(), "not a Locus index snapshot"),
    ] {
        std::fs::write(&snap, bad).unwrap();
        let ix = Index::build_with(ws, &opts, Some(&snap)).unwrap();
        assert_eq!((ix.reuse.reused, ix.reuse.parsed), (0, 1));
        let reason = ix.reuse.rejected.clone().unwrap_or_default();
        assert!(reason.contains(why), "{reason}");
        assert_eq!(dump(&ix), dump(&Index::build(ws, &opts).unwrap()));
    }
    // Any one damaged byte (a length among them: the snapshot is decoded as it is read) is
    // rejected without a panic or a huge allocation.
    let fresh = dump(&Index::build(ws, &opts).unwrap());
    for at in 0..whole.len() {
        let mut bad = whole.clone();
        bad[at] ^= 0xa5;
        std::fs::write(&snap, bad).unwrap();
        let ix = Index::build_with(ws, &opts, Some(&snap)).unwrap();
        assert!(ix.reuse.rejected.is_some(), "byte {at}");
        assert_eq!(dump(&ix), fresh);
    }
    // A missing snapshot is not an error: everything is parsed, nothing rejected.
    std::fs::remove_file(&snap).unwrap();
    let ix = Index::build_with(ws, &opts, Some(&snap)).unwrap();
    assert_eq!((ix.reuse.parsed, ix.reuse.rejected.clone()), (1, None));
}

#[test]
fn snapshots_beyond_the_limits_are_pruned_least_recently_used_first() {
    let cache = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), format!("def f{i}():\n    return {i}\n")).unwrap();
        let snap = crate::persist::snapshot_path(cache.path(), &dir.path().canonicalize().unwrap());
        let ix = Index::build_with(dir.path(), &WalkOptions::default(), Some(&snap)).unwrap();
        crate::persist::save_with_limits(
            &snap,
            &ix.files.iter().map(|f| f.unit.clone()).collect::<Vec<_>>(),
            2,
            u64::MAX,
        )
        .unwrap();
        // Distinct modification times, oldest first.
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(100 - i as u64);
        std::fs::File::options().append(true).open(&snap).unwrap().set_modified(t).unwrap();
        paths.push(snap);
    }
    // The third save kept two: the oldest is gone.
    assert!(!paths[0].exists() && paths[1].exists() && paths[2].exists());
}

/// The top BM25 hits of a few queries, scores to the bit.
fn searches(ix: &Index) -> Vec<Vec<(EntityId, u32)>> {
    let queries: [&[&str]; 5] = [
        &["total", "price"],
        &["helper", "pars", "len"],
        &["discount", "total", "zzz"],
        &["run", "x"],
        &["new", "valu", "retri", "count"],
    ];
    queries
        .iter()
        .map(|q| {
            let q: Vec<(String, f32)> = q.iter().map(|t| (t.to_string(), 1.0)).collect();
            ix.lexical.search(&q, 100, |_| true).into_iter().map(|(id, s)| (id, s.to_bits())).collect()
        })
        .collect()
}

#[test]
fn an_edit_that_keeps_every_name_patches_the_index_to_what_a_fresh_build_gives() {
    let base: Vec<(&str, String)> = vec![
        (
            "shop/pricing.py",
            "from shop.util import helper\n\nclass Price:\n    def total(self, x):\n        return helper(x)\n\n    def discount(self):\n        return self.total(1)\n".into(),
        ),
        ("shop/util.py", "def helper(x):\n    return x + 1\n\ndef run(x):\n    return helper(x)\n".into()),
        ("src/lib.rs", "pub struct Parser;\nimpl Parser {\n    pub fn new() -> Self { Parser }\n    pub fn len(&self) -> usize { 0 }\n}\npub fn parse(s: &str) -> usize { Parser::new().len() + s.len() }\n".into()),
        ("src/other.rs", "use crate::Parser;\nimpl Parser {\n    pub fn retry(&self) -> u8 { 1 }\n}\n".into()),
    ];
    // (file, new text, whether the shape is kept, whether the calls are)
    let edits: Vec<(usize, String, bool, bool)> = vec![
        // A body edit: a new call, new words (new terms), a removed word.
        (1, "def helper(x):\n    return run(x) + count_values(x) + 1\n\ndef run(x):\n    return helper(x)\n".into(), true, false),
        // Another body edit in a Rust impl: a call to a method in another file, new words.
        (2, "pub struct Parser;\nimpl Parser {\n    pub fn new() -> Self { Parser }\n    pub fn len(&self) -> usize { self.retry() as usize }\n}\npub fn parse(s: &str) -> usize { Parser::new().len() + s.len() }\n".into(), true, false),
        // A whole body emptied of its words (terms vanish).
        (0, "from shop.util import helper\n\nclass Price:\n    def total(self, x):\n        pass\n\n    def discount(self):\n        return self.total(1)\n".into(), true, false),
        // Only a literal: the same calls, so the graph is shared.
        (0, "from shop.util import helper\n\nclass Price:\n    def total(self, x):\n        pass\n\n    def discount(self):\n        return self.total(2)\n".into(), true, true),
        // The impl block elsewhere changes its body only: its contains edge from the type stays.
        (3, "use crate::Parser;\nimpl Parser {\n    pub fn retry(&self) -> u8 { 2 + 3 }\n}\n".into(), true, true),
        // A new function: the shape changes, the index is assembled again.
        (1, "def helper(x):\n    return x\n\ndef run(x):\n    return helper(x)\n\ndef added():\n    return run(1)\n".into(), false, false),
    ];
    let mut files = base.clone();
    let mut ix = fresh(&files);
    for (fi, text, keeps_shape, keeps_calls) in edits {
        files[fi].1 = text.clone();
        let next = ix.with_changes(vec![(files[fi].0.to_string(), Some(text))]);
        assert_eq!(Arc::ptr_eq(&next.symbols, &ix.symbols), keeps_shape, "edit of {}", files[fi].0);
        assert_eq!(Arc::ptr_eq(&next.graph, &ix.graph), keeps_calls, "edit of {}", files[fi].0);
        let want = fresh(&files);
        assert_eq!(dump(&next), dump(&want), "after editing {}", files[fi].0);
        assert_eq!(searches(&next), searches(&want), "after editing {}", files[fi].0);
        ix = next;
    }
}

#[test]
fn rust_test_code_is_test_in_any_file() {
    let ix = index_of(&[
        (
            "src/lib.rs",
            "pub fn parse() {}\n\n#[test]\nfn parses() {}\n\n#[tokio::test]\nasync fn parses_async() {}\n\n\
#[cfg(test)]\nmod checks {\n    fn helper() {}\n}\n\nmod tests {\n    struct Fixture;\n    impl Fixture {\n        fn make() {}\n    }\n}\n",
        ),
        ("src/test.rs", "pub fn harness() {}\n"),
        ("app/util.py", "def test_like():\n    pass\n"),
    ]);
    let mut flags: Vec<String> = (0..ix.n_entities() as u32)
        .map(EntityId)
        .map(|id| format!("{} {}", ix.full_name(id), ix.is_test(id)))
        .collect();
    flags.sort();
    expect![[r#"
        app/util.py false
        app/util.py:test_like false
        src/lib.rs false
        src/lib.rs:Fixture true
        src/lib.rs:Fixture::make true
        src/lib.rs:checks true
        src/lib.rs:helper true
        src/lib.rs:impl Fixture true
        src/lib.rs:parse false
        src/lib.rs:parses true
        src/lib.rs:parses_async true
        src/lib.rs:tests true
        src/test.rs true
        src/test.rs:harness true
    "#]]
    .assert_eq(&(flags.join("\n") + "\n"));
}

#[test]
fn a_file_stem_is_found_in_any_case_style() {
    let ix = index_of(&[
        ("crates/lint/src/use_exhaustive_dependencies.rs", "pub fn run() {}\n"),
        ("crates/lint/src/other.rs", "pub fn run() {}\n"),
    ]);
    for name in ["useExhaustiveDependencies", "UseExhaustiveDependencies", "use-exhaustive-dependencies"] {
        let found: Vec<String> = ix.symbols.files_with_stem(name).iter().map(|&f| ix.full_name(f)).collect();
        assert_eq!(found, ["crates/lint/src/use_exhaustive_dependencies.rs"], "{name}");
    }
}

#[test]
fn a_document_keeps_its_terms_sorted_with_their_counts() {
    use crate::unit::TermCounts;
    let d = TermCounts::from_counts([("send", 2), ("adapter", 1), ("session", 3), ("a", 1)]);
    assert_eq!(d.iter().collect::<Vec<_>>(), [("a", 1), ("adapter", 1), ("send", 2), ("session", 3)]);
    assert_eq!(d.len(), 4);
    for t in ["a", "adapter", "send", "session"] {
        assert!(d.contains(t), "{t}");
    }
    for t in ["", "ad", "b", "sessions", "zz"] {
        assert!(!d.contains(t), "{t}");
    }
    let empty = TermCounts::default();
    assert!(empty.is_empty() && !empty.contains("a") && empty.iter().next().is_none());
    // Built from the same counts in another order: equal (an edit compares documents).
    assert_eq!(d, TermCounts::from_counts([("a", 1), ("session", 3), ("send", 2), ("adapter", 1)]));
}

#[test]
fn call_sites_keep_every_name_and_line_once_per_file() {
    use crate::unit::{CallSite, Calls};
    use locus_syntax::Call;
    let call = |from: Option<u32>, callee: &str, receiver: Option<&str>, line: u32| Call {
        from,
        callee: callee.into(),
        receiver: receiver.map(Into::into),
        line,
    };
    let calls = vec![
        call(Some(1), "send", Some("self"), 3),
        call(None, "main", None, 9),
        call(Some(2), "send", Some("session"), 4),
        call(Some(2), "self", Some("send"), 5),
    ];
    let c = Calls::new(&calls);
    let back: Vec<CallSite<'_>> = c.iter().collect();
    assert_eq!(back.len(), 4);
    for (a, b) in calls.iter().zip(&back) {
        assert_eq!(
            (a.from, a.callee.as_str(), a.receiver.as_deref(), a.line),
            (b.from, b.callee, b.receiver, b.line)
        );
    }
    // Lines moved (a line typed above): the same sites; a callee changed: not.
    let moved: Vec<Call> = calls.iter().map(|c| Call { line: c.line + 1, ..c.clone() }).collect();
    assert!(c.same_sites(&Calls::new(&moved)));
    let mut renamed = calls.clone();
    renamed[1].callee = "run".into();
    assert!(!c.same_sites(&Calls::new(&renamed)));
    assert!(!c.same_sites(&Calls::new(&calls[..3])));
    assert!(Calls::new(&[]).is_empty());
}

#[test]
fn a_staged_build_leaves_much_test_code_for_later_and_adds_it_as_a_fresh_build_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ws = dir.path();
    std::fs::create_dir_all(ws.join("pkg/tests")).unwrap();
    std::fs::write(ws.join("pkg/refunds.py"), "def apply_refund(order):\n    return order.total\n").unwrap();
    std::fs::write(ws.join("pkg/tests/test_small.py"), "def test_small():\n    apply_refund(1)\n").unwrap();
    let opts = WalkOptions::default();
    // Little test code: one stage.
    let (one, later) = Index::build_staged(ws, &opts, None).unwrap();
    assert!(later.is_none());
    assert_eq!(dump(&one), dump(&Index::build(ws, &opts).unwrap()));

    // Test code over DEFER_MIN_BYTES (in files under the 1 MB limit), and a large generated
    // file: left for the second stage.
    for k in 0..4 {
        let big: String = (0..9_000)
            .map(|n| format!("def test_refund_{n}():\n    assert apply_refund({n}) == {n}\n\n"))
            .collect();
        assert!(
            big.len() * 4 > crate::DEFER_MIN_BYTES
                && big.len() < crate::walk::DEFAULT_MAX_FILE_BYTES as usize
        );
        std::fs::write(ws.join(format!("pkg/tests/test_refunds_{k}.py")), &big).unwrap();
    }
    let table: String = (0..30_000).map(|i| format!("T{i} = {i}\n")).collect();
    assert!(table.len() > crate::DEFER_LARGE_FILE);
    std::fs::write(ws.join("pkg/table.py"), &table).unwrap();
    let snap = crate::persist::snapshot_path(cache.path(), &ws.canonicalize().unwrap());
    let (first, later) = Index::build_staged(ws, &opts, Some(&snap)).unwrap();
    let later = later.expect("deferred");
    assert_eq!(later.files(), 6);
    assert!(later.bytes() >= crate::DEFER_MIN_BYTES);
    let paths: Vec<&str> = first.files.iter().map(|f| f.unit.path.as_str()).collect();
    assert_eq!(paths, ["pkg/refunds.py"]);
    let full = Index::build(ws, &opts).unwrap();
    let added = first.with_units(later.parse(), |_| false);
    assert_eq!(dump(&added), dump(&full));

    // A file an edit touched meanwhile keeps its edited state: the parsed unit is not added.
    let (first, later) = Index::build_staged(ws, &opts, Some(&snap)).unwrap();
    let edited = first.with_changes(vec![("pkg/tests/test_small.py".into(), None)]);
    let added = edited.with_units(later.unwrap().parse(), |p| p == "pkg/tests/test_small.py");
    assert!(!added.files.iter().any(|f| f.unit.path == "pkg/tests/test_small.py"));
    assert_eq!(added.files.len(), full.files.len() - 1);

    // Units the snapshot holds are taken in the first stage, test code or not.
    full.save_snapshot(&snap).unwrap();
    let (warm, later) = Index::build_staged(ws, &opts, Some(&snap)).unwrap();
    assert!(later.is_none());
    assert_eq!((warm.reuse.reused, warm.reuse.parsed), (7, 0));
    assert_eq!(dump(&warm), dump(&full));
}

/// What the symbol index answers for every name, qualified name, stem and path of `ix`.
fn symbol_answers(ix: &Index) -> Vec<String> {
    let mut out = Vec::new();
    for id in (0..ix.n_entities() as u32).map(EntityId) {
        let e = ix.entity(id);
        let path = ix.path_of(id).to_string();
        let stem = path.rsplit('/').next().unwrap().split('.').next().unwrap().to_string();
        for q in [e.name.as_str(), e.qual.as_str(), &e.name.to_uppercase(), &stem] {
            out.push(format!("{q}: {:?}", ix.symbols.lookup(q)));
            out.push(format!("{q} qual: {:?}", ix.symbols.lookup_qual(q)));
            out.push(format!("{q} stem: {:?}", ix.symbols.files_with_stem(q)));
        }
        out.push(format!("{path}: {:?} {:?}", ix.symbols.file(&path), ix.symbols.files_ending_with(&path)));
    }
    out
}

#[test]
fn an_edit_that_adds_or_removes_functions_moves_ids_to_what_a_fresh_build_gives() {
    let mut files: Vec<(&str, String)> = vec![
        (
            "shop/pricing.py",
            "from shop.util import helper\n\nclass Price:\n    def total(self, x):\n        return helper(x)\n\n    def discount(self):\n        return self.total(1)\n\nclass Tax(Price):\n    def rate(self):\n        return self.apply(2)\n".into(),
        ),
        ("shop/util.py", "def helper(x):\n    return x + 1\n\ndef run(x):\n    return helper(x)\n".into()),
        ("shop/cart.py", "from shop.util import run\nfrom shop.pricing import Price\n\ndef checkout(p):\n    Price.apply(p)\n    return run(p) + total_of(p)\n".into()),
        ("src/lib.rs", "pub struct Parser;\nimpl Parser {\n    pub fn new() -> Self { Parser }\n    pub fn len(&self) -> usize { 0 }\n}\npub fn parse(s: &str) -> usize { Parser::new().len() + s.len() }\n".into()),
        ("src/other.rs", "use crate::Parser;\nimpl Parser {\n    pub fn retry(&self) -> u8 { Parser::reset() }\n}\n".into()),
    ];
    // (file, new text, whether the ids move without a fresh assembly)
    let edits: Vec<(usize, &str, bool)> = vec![
        // A new function at the top of a file, as typing a `def` does: nothing else names it.
        (1, "def added():\n    return run(1)\n\ndef helper(x):\n    return x + 1\n\ndef run(x):\n    return helper(x)\n", true),
        // A method other files call already: their calls resolve now (`Price.apply`, `self.apply`).
        (0, "from shop.util import helper\n\nclass Price:\n    def total(self, x):\n        return helper(x)\n\n    def apply(self, y):\n        return total_of(y)\n\n    def discount(self):\n        return self.total(1)\n\nclass Tax(Price):\n    def rate(self):\n        return self.apply(2)\n", true),
        // A function between two classes, and one another file calls (`total_of`).
        (0, "from shop.util import helper\n\nclass Price:\n    def total(self, x):\n        return helper(x)\n\n    def apply(self, y):\n        return total_of(y)\n\n    def discount(self):\n        return self.total(1)\n\ndef total_of(p):\n    return p\n\nclass Tax(Price):\n    def rate(self):\n        return self.apply(2)\n", true),
        // A function another file imports is removed: its import and call no longer resolve.
        (1, "def added():\n    return run(1)\n\ndef helper(x):\n    return x + 1\n", true),
        // A rename.
        (1, "def added():\n    return run(1)\n\ndef helper_of(x):\n    return x + 1\n", true),
        // A body edit after ids moved: patched in place (new words, a new call).
        (1, "def added():\n    return run(1)\n\ndef helper_of(x):\n    return checkout(x) + fresh_words\n", false),
        // A Rust method another file calls.
        (3, "pub struct Parser;\nimpl Parser {\n    pub fn new() -> Self { Parser }\n    pub fn reset() -> u8 { 0 }\n    pub fn len(&self) -> usize { 0 }\n}\npub fn parse(s: &str) -> usize { Parser::new().len() + s.len() }\n", true),
        // A class another file already subclasses and calls through `self`: resolved now.
        (2, "from shop.util import run\nfrom shop.pricing import Price\n\nclass Cart:\n    def fill(self):\n        pass\n\ndef checkout(p):\n    Price.apply(p)\n    return run(p) + total_of(p)\n", true),
        (0, "from shop.util import helper\nfrom shop.cart import Cart\n\nclass Price:\n    def total(self, x):\n        return helper(x)\n\n    def apply(self, y):\n        return total_of(y)\n\n    def discount(self):\n        return self.total(1)\n\ndef total_of(p):\n    return p\n\nclass Tax(Price):\n    def rate(self):\n        return self.apply(2)\n", false),
        (0, "from shop.util import helper\nfrom shop.cart import Cart\n\nclass Price:\n    def total(self, x):\n        return helper(x)\n\n    def apply(self, y):\n        return total_of(y)\n\n    def discount(self):\n        return self.total(1)\n\ndef total_of(p):\n    return p\n\nclass Tax(Price):\n    def rate(self):\n        return self.apply(2)\n\nclass Basket(Cart):\n    def more(self):\n        return self.fill()\n", true),
        // A Rust struct that an impl block elsewhere names, and a trait it implements.
        (4, "use crate::Parser;\nimpl Parser {\n    pub fn retry(&self) -> u8 { Parser::reset() }\n}\nimpl Token {\n    fn len(&self) -> usize { 1 }\n}\nimpl Lex for Token {\n    fn lex(&self) {}\n}\n", true),
        (3, "pub struct Parser;\npub struct Token;\nimpl Parser {\n    pub fn new() -> Self { Parser }\n    pub fn reset() -> u8 { 0 }\n    pub fn len(&self) -> usize { 0 }\n}\npub fn parse(s: &str) -> usize { Parser::new().len() + s.len() }\n", true),
        (3, "pub struct Parser;\npub struct Token;\npub trait Lex { fn lex(&self); }\nimpl Parser {\n    pub fn new() -> Self { Parser }\n    pub fn reset() -> u8 { 0 }\n    pub fn len(&self) -> usize { 0 }\n}\npub fn parse(s: &str) -> usize { Parser::new().len() + s.len() }\n", true),
        // A new import: assembled afresh.
        (1, "import os\n\ndef added():\n    return run(1)\n\ndef helper_of(x):\n    return x + 1\n", false),
        // Functions added in two places: one run from the first to the last, the two kept
        // between them taken as removed and added again.
        (1, "import os\n\ndef first():\n    pass\n\ndef added():\n    return run(1)\n\ndef helper_of(x):\n    return x + 1\n\ndef last():\n    pass\n", true),
    ];
    let mut ix = fresh(&files);
    for (fi, text, moves) in edits {
        files[fi].1 = text.to_string();
        let path = files[fi].0.to_string();
        let unit = |t: &str| {
            let lang = locus_syntax::Lang::of_path(&path).unwrap();
            Some(Arc::new(FileUnit::build(path.clone(), lang, Arc::from(t))))
        };
        let want = fresh(&files);
        assert_eq!(ix.reshaped(&[(path.clone(), unit(text))]).is_some(), moves, "edit of {path}:\n{text}");
        // As an editor's opening of the file does: every edit is then parsed incrementally.
        ix.keep_tree(&path);
        let next = ix.with_changes(vec![(path.clone(), Some(text.to_string()))]);
        assert_eq!(dump(&next), dump(&want), "after editing {path}:\n{text}");
        assert_eq!(searches(&next), searches(&want), "after editing {path}:\n{text}");
        assert_eq!(symbol_answers(&next), symbol_answers(&want), "after editing {path}:\n{text}");
        ix = next;
    }
}
