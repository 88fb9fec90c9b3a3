//! Bad input over LSP, against the real `locus --stdio`: malformed JSON-RPC, ill-typed params,
//! hostile issue texts, edits that do not fit their document, and a workspace full of things
//! that are not source files. Every case gets a clear error or is skipped and counted, the
//! server stays up and answers the next valid request correctly, and no result is ever outside
//! the workspace.
#![cfg(unix)]

mod client;

use std::path::Path;
use std::time::{Duration, Instant};

use client::{assert_inside, names, uri_of, Client};
use serde_json::{json, Value};

/// Options for every session here: no encoder (a test of the protocol, not of the model; and
/// the machine's two cores stay for the server), the learned ranking as configured.
fn options() -> Value {
    json!({ "modelDir": "/nonexistent/locus-test-no-encoder" })
}

const COUPON_PY: &str = "\
class Cart:
    \"\"\"A shopping cart.\"\"\"

    def apply_coupon(self, code):
        return code.upper()


def compute_discount_total(items, discount):
    \"\"\"Sums the items and takes the discount off.\"\"\"
    return sum(items) - discount
";

const LEDGER_RS: &str = "\
pub struct Ledger { entries: Vec<i64> }

impl Ledger {
    pub fn refund_payment(&mut self, amount: i64) { self.entries.push(-amount); }
}
";

const ISSUE: &str =
    "compute_discount_total returns a negative total when the discount is larger than the items";
const EXPECTED: &str = "billing/coupon.py:compute_discount_total";

fn small_workspace(root: &Path) {
    std::fs::create_dir_all(root.join("billing")).unwrap();
    std::fs::create_dir_all(root.join("ledger/src")).unwrap();
    std::fs::write(root.join("billing/coupon.py"), COUPON_PY).unwrap();
    std::fs::write(root.join("billing/__init__.py"), "").unwrap();
    std::fs::write(root.join("ledger/src/lib.rs"), LEDGER_RS).unwrap();
}

/// The server is up and ranks the known issue's function among the first three.
fn assert_answers(c: &Client, after: &str) {
    assert!(c.running(), "the server exited after {after}\n{}", c.stderr_tail(4000));
    let r = c.call("locus/locateIssue", json!({ "text": ISSUE, "maxResults": 5 }));
    let result = r.get("result").unwrap_or_else(|| panic!("after {after}: {r}"));
    let top = names(result);
    assert!(top.iter().take(3).any(|n| n == EXPECTED), "after {after}: {top:?}");
    assert_inside(&c.root, result);
}

fn error_of(r: &Value) -> (i64, String) {
    let e = r.get("error").unwrap_or_else(|| panic!("expected an error response, got {r}"));
    (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap_or("").to_string())
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

/// Waits for `n` errors with a null id (bodies the server could not tie to a request).
fn wait_null_errors(c: &Client, n: usize) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let e = c.null_id_errors();
        if e.len() >= n || t.elapsed() > Duration::from_secs(20) {
            return e;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn malformed_json_rpc_is_answered_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    small_workspace(dir.path());
    let c = Client::start(dir.path(), options());
    c.wait_indexed(Duration::from_secs(60));
    assert_answers(&c, "start");

    // A body that is not JSON and has no id: Parse error, id null.
    c.send_raw(&framed(b"{oops"));
    let errs = wait_null_errors(&c, 1);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(error_of(&errs[0]).0, -32700);
    assert_answers(&c, "a body that is not JSON");

    // Not JSON, but its id can be read (a lone UTF-16 surrogate): the request gets its error.
    let id = c.next_id();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"locus/locateIssue","params":{{"text":"\ud800 coupon"}}}}"#
    );
    c.send_raw(&framed(body.as_bytes()));
    let (code, msg) = error_of(&c.expect_response(id));
    assert_eq!(code, -32700, "{msg}");
    assert_answers(&c, "a lone surrogate");

    // Invalid UTF-8 inside the text: replaced, and the request is answered.
    let id = c.next_id();
    let mut body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"locus/locateIssue","params":{{"text":"compute_discount_total "#).into_bytes();
    body.extend_from_slice(b"\xff\xfe\xc3 negative total\"}}");
    c.send_raw(&framed(&body));
    let r = c.expect_response(id);
    assert!(r.get("result").is_some(), "{r}");
    assert_answers(&c, "invalid UTF-8");

    // JSON that is not a JSON-RPC message: Invalid Request, with the id when there is one.
    let id = c.next_id();
    c.send_raw(&framed(format!(r#"{{"jsonrpc":"1.0","id":{id},"method":"locus/status"}}"#).as_bytes()));
    assert_eq!(error_of(&c.expect_response(id)).0, -32600);
    c.send_raw(&framed(b"[1, 2, 3]"));
    let errs = wait_null_errors(&c, 2);
    assert_eq!(error_of(&errs[1]).0, -32600, "{errs:?}");
    assert_answers(&c, "JSON that is not a message");

    // A Content-Length too short: the cut body is answered (its id can be read), the rest of
    // it skipped up to the next header.
    let id = c.next_id();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "locus/locateIssue", "params": {"text": ISSUE}})
        .to_string();
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len() - 20).into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    c.send_raw(&bytes);
    assert_eq!(error_of(&c.expect_response(id)).0, -32700);
    assert_answers(&c, "a Content-Length too short");

    // A Content-Length too long: the body takes in the start of the next message, which is
    // lost (its bytes are not a message of their own); the one after it is answered.
    let id = c.next_id();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "locus/status", "params": {}}).to_string();
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len() + 30).into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    c.send_raw(&bytes);
    let swallowed = c.request("locus/status", json!({}));
    assert_eq!(error_of(&c.expect_response(id)).0, -32700);
    assert!(c.wait(&json!(swallowed), Duration::from_millis(500)).is_none());
    assert_answers(&c, "a Content-Length too long");

    // Headers without a usable Content-Length: answered with id null, then skipped.
    let before = c.null_id_errors().len();
    c.send_raw(b"Content-Length: abc\r\n\r\n");
    c.send_raw(b"Content-Length: 99999999999999\r\n\r\n");
    c.send_raw(b"Content-Type: application/json\r\n\r\n{}");
    let errs = wait_null_errors(&c, before + 3);
    assert_eq!(errs.len(), before + 3, "{errs:?}");
    assert!(errs[before..].iter().all(|e| error_of(e).0 == -32700), "{errs:?}");
    assert_answers(&c, "bad headers");

    let code = c.shutdown();
    assert_eq!(code, Some(0));
}

#[test]
fn ill_typed_params_and_hostile_issue_texts_get_clear_answers() {
    let dir = tempfile::tempdir().unwrap();
    small_workspace(dir.path());
    let c = Client::start(dir.path(), options());
    c.wait_indexed(Duration::from_secs(60));

    let invalid = [
        (json!(42), "expected"),
        (json!({ "text": 42 }), "`text` must be a string"),
        (json!({}), "missing `text`"),
        (json!({ "text": ISSUE, "maxResults": "x" }), "`maxResults` must be a number"),
        (json!({ "text": ISSUE, "maxResults": -3 }), "positive integer"),
        (json!({ "text": ISSUE, "granularity": "bogus" }), "`granularity` must be"),
        (json!({ "text": ISSUE, "workDoneToken": {} }), "`workDoneToken`"),
        (json!({ "text": "" }), "empty"),
        (json!({ "text": " \n\t\r  " }), "empty"),
    ];
    for (params, says) in invalid {
        let r = c.call("locus/locateIssue", params.clone());
        let (code, msg) = error_of(&r);
        assert_eq!(code, -32602, "{params}: {msg}");
        assert!(msg.contains(says), "{params}: `{msg}` should say `{says}`");
        assert_answers(&c, &format!("params {params}"));
    }
    // Standard methods with the wrong params, an unknown method, `locus/status` misused.
    let r = c.call("textDocument/references", json!({ "foo": 1 }));
    assert_eq!(error_of(&r).0, -32602, "{r}");
    let r = c.call("locus/noSuchMethod", json!({}));
    assert_eq!(error_of(&r).0, -32601, "{r}");
    let r = c.call("locus/status", json!({ "files": "yes" }));
    assert_eq!(error_of(&r).0, -32602, "{r}");
    c.notify("textDocument/didChange", json!("not an object"));
    c.notify("textDocument/didOpen", json!({ "textDocument": 5 }));
    c.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "locus": { "maxResults": "many", "exclude": 7 } } }),
    );
    assert_answers(&c, "ill-typed notifications");

    // Big values are clamped, not refused.
    let r = c.locate(json!({ "text": ISSUE, "maxResults": 1_000_000_000u64 }));
    assert!(names(&r).len() <= 200);

    // Binary-looking text: control characters, NULs, U+FFFD, lone combining marks.
    let mut text: String = (0u8..32).map(|b| b as char).collect();
    text.push_str("\u{7f}\u{fffd}\u{0}\u{301}\u{200b} compute_discount_total \u{1}\u{2}");
    let r = c.locate(json!({ "text": text }));
    assert_inside(&c.root, &r);
    let r = c.call("locus/locateIssue", json!({ "text": "\u{0}\u{1}\u{2}\u{3}\u{fffd}" }));
    assert!(r.get("result").is_some() || error_of(&r).0 == -32602, "{r}");
    assert_answers(&c, "binary text");

    // 10 MB of text is answered; over 10 MB is refused with a message saying so.
    let mut big = String::from(ISSUE);
    big.push('\n');
    let filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod\n";
    while big.len() + filler.len() <= 10 * 1024 * 1024 {
        big.push_str(filler);
    }
    let t = Instant::now();
    let r = c.locate(json!({ "text": big }));
    let took = t.elapsed();
    assert!(names(&r).iter().take(3).any(|n| n == EXPECTED), "{:?}", names(&r));
    eprintln!("10 MB issue text answered in {took:?}");
    big.push_str(&"x".repeat(4096));
    let (code, msg) = error_of(&c.call("locus/locateIssue", json!({ "text": big })));
    assert_eq!(code, -32602);
    assert!(msg.contains("over 10 MB"), "{msg}");
    assert_answers(&c, "a 10 MB text");

    assert!(c.socket_fds().is_empty(), "sockets: {:?}", c.socket_fds());
    assert_eq!(c.shutdown(), Some(0));
}

/// Content hash (hex) of a text, as `locus/status` reports it.
fn hash_of(path: &str, text: &str) -> String {
    let lang = locus_syntax::Lang::of_path(path).unwrap();
    let u = locus_index::FileUnit::build(path.to_string(), lang, std::sync::Arc::from(text));
    u.hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_status(c: &Client, path: &str) -> Option<Value> {
    let s = c.status(true);
    s["fileList"].as_array().unwrap().iter().find(|f| f["path"] == path).cloned()
}

fn change(c: &Client, uri: &str, version: i64, changes: Value) {
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": changes }),
    );
}

fn range(l0: u64, c0: u64, l1: u64, c1: u64) -> Value {
    json!({ "start": { "line": l0, "character": c0 }, "end": { "line": l1, "character": c1 } })
}

#[test]
fn edits_that_do_not_fit_their_document_are_clamped_or_counted() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    small_workspace(dir.path());
    let c = Client::start(dir.path(), options());
    c.wait_indexed(Duration::from_secs(60));
    let path = "billing/coupon.py";
    let uri = uri_of(&c.root.join(path));
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": COUPON_PY } }),
    );

    // Positions past the end of a line, past the last line, and u32::MAX clamp to the ends; a
    // range whose start is after its end is an insertion at its start.
    let mut expected = COUPON_PY.to_string();
    change(
        &c,
        &uri,
        2,
        json!([{ "range": range(1_000_000, 0, 1_000_000, 5), "text": "\ndef appended_far_below(): pass\n" }]),
    );
    expected.push_str("\ndef appended_far_below(): pass\n");
    change(&c, &uri, 3, json!([{ "range": range(0, 1_000_000, 0, 1_000_000), "text": "  # end of line 0" }]));
    expected.insert_str("class Cart:".len(), "  # end of line 0");
    change(&c, &uri, 4, json!([{ "range": range(2, 0, 0, 0), "text": "    marker_attr = 1\n" }]));
    let line2 = expected.match_indices('\n').nth(1).unwrap().0 + 1;
    expected.insert_str(line2, "    marker_attr = 1\n");
    change(
        &c,
        &uri,
        5,
        json!([{ "range": range(4294967295, 4294967295, 4294967295, 4294967295), "text": "\ndef at_u32_max(): pass\n" }]),
    );
    expected.push_str("\ndef at_u32_max(): pass\n");
    let f = file_status(&c, path).expect("file indexed");
    assert_eq!(f["hash"], hash_of(path, &expected), "{f}");
    let ents: Vec<&str> = f["entities"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(ents.contains(&"billing/coupon.py:appended_far_below"), "{ents:?}");
    assert!(ents.contains(&"billing/coupon.py:at_u32_max"), "{ents:?}");
    assert_answers(&c, "out-of-range edits");

    // Versions out of order: applied (the changes are relative to the text as it is), counted.
    change(&c, &uri, 3, json!([{ "text": COUPON_PY }]));
    change(&c, &uri, 2, json!([{ "range": range(0, 0, 0, 0), "text": "# v2\n" }]));
    let f = file_status(&c, path).unwrap();
    assert_eq!(f["hash"], hash_of(path, &format!("# v2\n{COUPON_PY}")));
    let notices = c.status(false)["notices"].clone();
    assert_eq!(notices["didChange with a version not above the document's (applied)"], 2, "{notices}");

    // A change to a document never opened: ignored and counted; the disk's text stays.
    let ledger = uri_of(&c.root.join("ledger/src/lib.rs"));
    change(&c, &ledger, 7, json!([{ "text": "pub fn never_opened() {}\n" }]));
    let f = file_status(&c, "ledger/src/lib.rs").unwrap();
    assert_eq!(f["hash"], hash_of("ledger/src/lib.rs", LEDGER_RS));
    let notices = c.status(false)["notices"].clone();
    assert_eq!(notices["didChange for a document that is not open (ignored)"], 1, "{notices}");

    // Documents the index does not take: outside the root, not a file, not source.
    std::fs::write(outside.path().join("elsewhere.py"), "def zebra_outside(): pass\n").unwrap();
    let before = c.status(false)["files"].clone();
    for (u, text) in [
        (uri_of(&outside.path().join("elsewhere.py")), "def zebra_outside(): pass\n"),
        (
            format!(
                "{}/../{}/elsewhere.py",
                uri_of(&c.root),
                outside.path().file_name().unwrap().to_str().unwrap()
            ),
            "def zebra_outside(): pass\n",
        ),
        ("untitled:Untitled-1".to_string(), "def zebra_untitled(): pass\n"),
        (uri_of(&c.root.join("billing/notes.txt")), "zebra notes"),
    ] {
        c.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": u, "languageId": "python", "version": 1, "text": text } }),
        );
        change(&c, &u, 2, json!([{ "text": format!("{text}\n# zebra edit\n") }]));
    }
    c.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri_of(&c.root.join("never/opened.py")) } }),
    );
    assert_eq!(c.status(false)["files"], before);
    let r = c.locate(json!({ "text": "zebra_outside zebra_untitled" }));
    assert!(names(&r).iter().all(|n| !n.contains("zebra")), "{:?}", names(&r));
    assert_inside(&c.root, &r);

    // Closing the edited document brings the disk's text back.
    c.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    let f = file_status(&c, path).unwrap();
    assert_eq!(f["hash"], hash_of(path, COUPON_PY));
    assert_answers(&c, "closing");
    assert_eq!(c.shutdown(), Some(0));
}

/// Nesting that a recursive walk of the syntax tree would not survive.
fn deep_files(root: &Path) {
    const N: usize = 5000;
    let d = root.join("deep");
    std::fs::create_dir_all(&d).unwrap();
    let w = |name: &str, text: String| std::fs::write(d.join(name), text).unwrap();
    w(
        "brackets.py",
        format!("x = {}{}\ny = {}1{}\n", "[".repeat(N), "]".repeat(N), "(".repeat(N), ")".repeat(N)),
    );
    w("lambdas.py", format!("f = {}0\n", "lambda: ".repeat(N)));
    w("ifexpr.py", format!("v = {}c{}\n", "(a if b else ".repeat(N), ")".repeat(N)));
    // Indentation grows with depth: 1,000 levels (about 0.5 MB) keep the file under the 1 MB limit.
    const LEVELS: usize = 1000;
    let mut ifs = String::from("def deep_ifs():\n");
    let mut defs = String::new();
    for i in 0..LEVELS {
        ifs.push_str(&format!("{} if x{i}:\n", " ".repeat(i)));
        defs.push_str(&format!("{}def nested_{i}():\n", " ".repeat(i)));
    }
    ifs.push_str(&format!("{}  pass\n", " ".repeat(LEVELS)));
    defs.push_str(&format!("{}pass\n", " ".repeat(LEVELS)));
    assert!(ifs.len() < locus_index::walk::DEFAULT_MAX_FILE_BYTES as usize);
    w("ifs.py", ifs);
    w("defs.py", defs);
    w("braces.rs", format!("fn braces() {}{}\n", "{".repeat(N), "}".repeat(N)));
    w("ifs.rs", format!("fn deep_ifs() {{ {}{} }}\n", "if x { ".repeat(N), "}".repeat(N)));
    w("mods.rs", format!("{}fn innermost() {{}}{}\n", "mod m { ".repeat(N), " }".repeat(N)));
    w("closures.rs", format!("fn closures() {{ let c = {}0; }}\n", "|| ".repeat(N)));
    w(
        "macros.rs",
        format!(
            "m! {}{}\nmacro_rules! mm {{ () => {{ {}{} }} }}\n",
            "{ ".repeat(N),
            "}".repeat(N),
            "{".repeat(N),
            "}".repeat(N)
        ),
    );
    w("fns.rs", format!("fn outer() {{ {}{} }}\n", "fn inner() { ".repeat(N), "}".repeat(N)));
}

const TINY_FILES: usize = 10_000;

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo").arg(p).status().expect("mkfifo").success();
    assert!(ok, "mkfifo {}", p.display());
}

#[test]
fn a_hostile_workspace_is_indexed_with_every_skip_counted() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    small_workspace(&root);
    std::fs::write(outside.path().join("secret.py"), "def zebrafinch_secret():\n    return 'zebrafinch'\n")
        .unwrap();

    // Files the walk must skip and count.
    std::fs::write(root.join("binary.py"), b"def b():\0\0\0\x01\x02 zebrafinch").unwrap();
    std::fs::write(root.join("latin1.py"), b"# caf\xe9 zebrafinch\ndef latin(): pass\n").unwrap();
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(root.join("generated.py")).unwrap());
        let line = "zebrafinch_table = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]\n";
        for _ in 0..(50 * 1024 * 1024 / line.len() + 1) {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    symlink(&root, root.join("loop")).unwrap();
    symlink(outside.path(), root.join("escape")).unwrap();
    symlink(outside.path().join("secret.py"), root.join("linked.py")).unwrap();
    mkfifo(&root.join("pipe.py"));
    let sock = std::os::unix::net::UnixListener::bind(root.join("sock.py")).unwrap();
    drop(sock); // The socket file stays; nothing listens on it.
                // A FIFO where the walker reads ignore rules: the directory is skipped, not waited on.
    std::fs::create_dir_all(root.join("trap")).unwrap();
    std::fs::write(root.join("trap/inside.py"), "def trapped(): pass\n").unwrap();
    mkfifo(&root.join("trap/.gitignore"));
    deep_files(&root);
    for i in 0..TINY_FILES {
        let d = root.join(format!("many/d{:03}", i / 100));
        if i.is_multiple_of(100) {
            std::fs::create_dir_all(&d).unwrap();
        }
        std::fs::write(d.join(format!("m{i}.py")), format!("def tiny_{i}(): return {i}\n")).unwrap();
    }

    // Files appearing and disappearing while the server walks and reads.
    let churn_dir = root.join("churn");
    std::fs::create_dir_all(&churn_dir).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let p = churn_dir.join(format!("c{}.py", n % 50));
                if n.is_multiple_of(2) {
                    let _ = std::fs::write(&p, format!("def churn_{n}(): pass\n"));
                } else {
                    let _ = std::fs::remove_file(churn_dir.join(format!("c{}.py", (n * 7) % 50)));
                }
                n += 1;
            }
            n
        })
    };

    let t = Instant::now();
    let c = Client::start(&root, options());
    let st = c.wait_indexed(Duration::from_secs(300));
    let index_time = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let churned = churn.join().unwrap();
    eprintln!("hostile workspace indexed in {index_time:?} ({churned} churn operations): {st}");

    let skipped = &st["skipped"];
    assert_eq!(skipped["binary"], 1, "{st}");
    assert_eq!(skipped["not_utf8"], 1, "{st}");
    assert_eq!(skipped["too_large"], 1, "{st}");
    assert_eq!(skipped["symlink"], 1, "{st}");
    assert_eq!(skipped["special_file"], 2, "{st}");
    assert_eq!(skipped["special_ignore_file"], 1, "{st}");
    let files = st["files"].as_u64().unwrap() as usize;
    assert!(files >= TINY_FILES + 3 + 11, "{st}");
    assert_answers(&c, "indexing the hostile workspace");

    // Nothing from outside the root, through links, from skipped files or the trapped directory.
    let listed = c.status(true);
    for f in listed["fileList"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        for bad in [
            "escape/",
            "loop/",
            "linked.py",
            "pipe.py",
            "sock.py",
            "trap/",
            "binary.py",
            "latin1.py",
            "generated.py",
        ] {
            assert!(!p.starts_with(bad), "{p} is indexed");
        }
    }
    let r = c.locate(json!({ "text": "zebrafinch_secret zebrafinch trapped", "maxResults": 50 }));
    assert_inside(&root, &r);
    assert!(names(&r).iter().all(|n| !n.contains("zebrafinch") && !n.contains("trapped")), "{:?}", names(&r));

    // Deeply nested files were parsed (their outer entities are there), and again as buffers.
    let deep = |p: &str| listed["fileList"].as_array().unwrap().iter().any(|f| f["path"] == p);
    for p in
        ["deep/brackets.py", "deep/ifs.py", "deep/defs.py", "deep/braces.rs", "deep/mods.rs", "deep/fns.rs"]
    {
        assert!(deep(p), "{p} missing");
    }
    let text = std::fs::read_to_string(root.join("deep/ifs.rs")).unwrap();
    let u = uri_of(&root.join("deep/ifs.rs"));
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": u, "languageId": "rust", "version": 1, "text": format!("fn deep_edit() {{}}\n{text}") } }));
    assert!(file_status(&c, "deep/ifs.rs").unwrap()["entities"].to_string().contains("deep_edit"));
    c.notify("textDocument/didClose", json!({ "textDocument": { "uri": u } }));
    assert_answers(&c, "deep nesting");

    // A buffer opened through the link out of the root is not indexed, whatever its text.
    let through_link = uri_of(&root.join("escape/secret.py"));
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": through_link, "languageId": "python", "version": 1, "text": "def zebrafinch_opened(): pass\n" } }));
    change(
        &c,
        &through_link,
        2,
        json!([{ "text": "def zebrafinch_opened(): pass\ndef zebrafinch_more(): pass\n" }]),
    );
    let r = c.locate(json!({ "text": "zebrafinch_opened zebrafinch_more", "maxResults": 50 }));
    assert!(names(&r).iter().all(|n| !n.contains("zebrafinch")), "{:?}", names(&r));
    assert_inside(&root, &r);
    // And a buffer for the FIFO: not indexed, and closing it does not read the FIFO.
    let fifo = uri_of(&root.join("pipe.py"));
    c.notify("textDocument/didOpen", json!({ "textDocument": { "uri": fifo, "languageId": "python", "version": 1, "text": "def zebrafinch_fifo(): pass\n" } }));
    c.notify("textDocument/didClose", json!({ "textDocument": { "uri": fifo } }));
    c.notify("textDocument/didClose", json!({ "textDocument": { "uri": through_link } }));
    assert_answers(&c, "buffers through a link and on a FIFO");

    // Watched-file events for everything that is not a regular source file inside the root:
    // answered at once (a FIFO is never opened for reading), nothing indexed.
    // The churned files go too, each with the event an editor would send.
    std::fs::remove_dir_all(root.join("churn")).unwrap();
    let events: Vec<Value> = [
        "pipe.py",
        "sock.py",
        "linked.py",
        "escape/secret.py",
        "loop/billing/coupon.py",
        "trap/inside.py",
        "ghost.py",
        "binary.py",
        "generated.py",
    ]
    .iter()
    .map(|p| json!({ "uri": uri_of(&root.join(p)), "type": 2 }))
    .chain((0..50).map(|i| json!({ "uri": uri_of(&root.join(format!("churn/c{i}.py"))), "type": 3 })))
    .chain([json!({ "uri": uri_of(&outside.path().join("secret.py")), "type": 1 })])
    .collect();
    c.notify("workspace/didChangeWatchedFiles", json!({ "changes": events }));
    let t = Instant::now();
    let after = c.status(true);
    assert!(t.elapsed() < Duration::from_secs(10), "status took {:?}", t.elapsed());
    for f in after["fileList"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        assert!(!p.starts_with("churn/") && !p.contains("pipe") && !p.starts_with("escape/"), "{p}");
    }
    assert_answers(&c, "watched-file events for special files");

    assert!(c.socket_fds().is_empty(), "sockets: {:?}", c.socket_fds());
    assert!(!c.stderr_all().contains("panicked"), "{}", c.stderr_tail(4000));
    assert_eq!(c.shutdown(), Some(0));
}

/// Over 2 MB of test code (even with two files deleted) in files under the 1 MB limit: a cold
/// open indexes the rest first.
fn much_test_code(root: &Path) {
    small_workspace(root);
    std::fs::create_dir_all(root.join("billing/tests")).unwrap();
    for k in 0..5 {
        let text: String = (0..12_000)
            .map(|n| format!("def test_total_{n}():\n    assert compute_discount_total([{n}], 0) == {n}\n\n"))
            .collect();
        std::fs::write(root.join(format!("billing/tests/test_total_{k}.py")), text).unwrap();
    }
    std::fs::write(root.join("billing/tests/test_coupon.py"), "def test_coupon():\n    pass\n").unwrap();
}

#[test]
fn a_cold_open_answers_first_and_edits_made_while_test_code_is_parsed_stand() {
    let dir = tempfile::tempdir().unwrap();
    much_test_code(dir.path());
    let c = Client::start(dir.path(), options());
    // Open and edit a test file and delete another on disk, at once: whichever stage these
    // messages meet, the whole index must end with the buffer's text and without the file.
    let edited = "def test_coupon_edited_marker():\n    pass\n";
    let small = dir.path().join("billing/tests/test_coupon.py");
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri_of(&small), "languageId": "python", "version": 1, "text": edited } }),
    );
    let gone = dir.path().join("billing/tests/test_total_3.py");
    std::fs::remove_file(&gone).unwrap();
    c.notify("workspace/didChangeWatchedFiles", json!({ "changes": [{ "uri": uri_of(&gone), "type": 3 }] }));
    // Answers come before the whole tree is indexed; `filesPending` says what is missing.
    let t = Instant::now();
    let first = loop {
        let r = c.locate(json!({ "text": ISSUE }));
        if !r["items"].as_array().unwrap().is_empty() {
            break r;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no answer: {}", c.stderr_tail(3000));
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(names(&first)[0], EXPECTED);
    if first["stats"]["indexReady"] == false {
        assert!(first["stats"]["filesPending"].as_u64().unwrap() > 0, "{}", first["stats"]);
    }
    // Again while the test code may still be parsed: the buffer changed, another file deleted.
    let edited = "def test_coupon_edited_again():\n    pass\n";
    change(&c, &uri_of(&small), 2, json!([{ "text": edited }]));
    let gone = dir.path().join("billing/tests/test_total_2.py");
    std::fs::remove_file(&gone).unwrap();
    c.notify("workspace/didChangeWatchedFiles", json!({ "changes": [{ "uri": uri_of(&gone), "type": 3 }] }));
    let s = c.wait_indexed(Duration::from_secs(120));
    assert_eq!(s["filesPending"], 0, "{s}");
    // Every file is in, as it is now: the buffer over the disk, the deleted files gone.
    let listed = c.status(true)["fileList"].as_array().unwrap().len();
    assert_eq!(listed, 7, "billing/{{coupon,__init__}}.py, lib.rs, 3 test_total files, test_coupon.py");
    let live = file_status(&c, "billing/tests/test_coupon.py").expect("the open test file");
    assert_eq!(live["hash"], hash_of("billing/tests/test_coupon.py", edited));
    assert!(file_status(&c, "billing/tests/test_total_3.py").is_none());
    assert!(file_status(&c, "billing/tests/test_total_2.py").is_none());
    assert!(file_status(&c, "billing/tests/test_total_0.py").is_some());
    c.shutdown();
}

#[test]
fn a_client_that_never_accepts_a_progress_token_does_not_hold_the_index_back() {
    let dir = tempfile::tempdir().unwrap();
    small_workspace(dir.path());
    let c = Client::start_ignoring(dir.path(), options(), &[], &["window/workDoneProgress/create"]);
    // Well within the server's 5 s wait for the token: the build did not wait for it.
    c.wait_indexed(Duration::from_secs(4));
    assert_answers(&c, "a progress token never accepted");
    c.shutdown();
}
