//! End to end: small git repositories made here with the `git` CLI (fixed names, e-mails and
//! dates, no user or system configuration), cloned bare as mirrors, built through the CLI entry
//! (`run_cli`), and the written files checked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use expect_test::expect;
use locus_corpus::{run_cli, CorpusArgs};

/// 2020-01-01T00:00:00Z; each commit is one minute later than the one before.
const EPOCH: u64 = 1_577_836_800;

struct Work {
    dir: PathBuf,
    tick: u64,
}

fn git_in(dir: &Path, args: &[&str], author: (&str, &str), tick: u64) -> String {
    let date = format!("{} +0000", EPOCH + 60 * tick);
    let mut cmd = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", author.0)
        .env("GIT_AUTHOR_EMAIL", author.1)
        .env("GIT_COMMITTER_NAME", "Locus Test")
        .env("GIT_COMMITTER_EMAIL", "test@locus.invalid")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false"])
        .args(["-c", "gc.auto=0", "-c", "merge.ff=false"])
        .args(args)
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const ALICE: (&str, &str) = ("Alice Example", "alice@example.org");
const BOT: (&str, &str) = ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com");

impl Work {
    fn init(dir: &Path) -> Work {
        fs::create_dir_all(dir).unwrap();
        git_in(dir, &["init", "-q"], ALICE, 0);
        Work { dir: dir.to_path_buf(), tick: 0 }
    }

    fn git(&mut self, args: &[&str], author: (&str, &str)) -> String {
        self.tick += 1;
        git_in(&self.dir, args, author, self.tick)
    }

    fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let p = self.dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// Commits everything as `author` with `message`; returns the new HEAD.
    fn commit(&mut self, message: &str, author: (&str, &str)) -> String {
        self.git(&["add", "-A"], author);
        self.git(&["commit", "-q", "--allow-empty", "-m", message], author);
        self.head()
    }

    fn head(&mut self) -> String {
        git_in(&self.dir, &["rev-parse", "HEAD"], ALICE, self.tick)
    }

    /// Bare clone of this repository as `<mirrors>/<owner>+<name>/repo`.
    fn mirror(&self, mirrors: &Path, owner_name: &str) {
        let dest = mirrors.join(owner_name.replace('/', "+"));
        fs::create_dir_all(&dest).unwrap();
        git_in(&dest, &["clone", "-q", "--bare", self.dir.to_str().unwrap(), "repo"], ALICE, self.tick);
    }
}

fn core_py(send: &str, close: &str, timeout: u32) -> String {
    format!(
        "TIMEOUT = {timeout}\n\n\nclass Session:\n    def send(self, request):\n        return {send}\n\n    def close(self):\n        {close}\n\n\ndef helper(a):\n    return a\n"
    )
}

fn parser_rs(parse: &str, other: &str) -> String {
    format!(
        "pub struct Parser {{\n    strict: bool,\n}}\n\nimpl Parser {{\n    pub fn parse(&self, s: &str) -> usize {{\n        {parse}\n    }}\n\n    pub fn other(&self) -> bool {{\n        {other}\n    }}\n}}\n"
    )
}

fn many_py(v: u32) -> String {
    (1..=6).map(|i| format!("def f{i}():\n    return {v}\n\n\n")).collect()
}

/// The mirror of the fixture repository `acme/widgets`, and the commits the test checks.
struct Fixture {
    squash: String,
    squash_base: String,
    merge: String,
    merge_base: String,
}

fn fixture(root: &Path, mirrors: &Path) -> Fixture {
    let mut w = Work::init(&root.join("work"));
    w.write("pkg/core.py", core_py("request.body", "self.open = False", 10));
    w.write("pkg/many.py", many_py(1));
    w.write("pkg/legacy.py", b"# caf\xe9\ndef old():\n    return 1\n".as_slice());
    w.write("src/x.rs", parser_rs("s.len()", "self.strict"));
    w.write("README.md", "# widgets\n");
    w.write("tests/test_core.py", "def test_send():\n    assert True\n");
    w.commit("Initial commit", ALICE);

    let squash_base = w.head();
    w.write("pkg/core.py", core_py("request.payload", "self.open = False", 10));
    let squash = w.commit("Fix the thing (#12)\n\nThe send method returned the wrong value.\n\nSigned-off-by: Alice Example <alice@example.org>\n", ALICE);

    w.write("src/x.rs", parser_rs("s.trim().len()", "self.strict"));
    w.commit("Make the parser stricter (#13)\n\nLeading blanks were counted.", ALICE);

    // A pull request merged with a merge commit.
    let merge_base = w.head();
    w.git(&["checkout", "-q", "-b", "close"], ALICE);
    w.write("pkg/core.py", core_py("request.payload", "self.open = None", 10));
    w.commit("wip", ALICE);
    w.git(&["checkout", "-q", "main"], ALICE);
    w.git(
        &["merge", "-q", "--no-ff", "close", "-m", "Merge pull request #14 from alice/close\n\nClose sessions properly\n\nThe close method leaked the handle."],
        ALICE,
    );
    let merge = w.head();

    w.write("README.md", "# widgets\n\nMore words.\n");
    w.commit("Improve the README a lot (#15)", ALICE);

    w.write("pkg/core.py", core_py("request.payload", "self.open = 0", 10));
    w.commit("Update the close of sessions in core (#16)", BOT);

    w.write("pkg/core.py", core_py("request.payload", "self.open = 0", 11));
    w.commit("Bump version to 1.2.3 (#17)", ALICE);

    w.write("tests/test_core.py", "def test_send():\n    assert 1\n");
    w.commit("Add more tests for sessions (#18)", ALICE);

    w.write("pkg/many.py", many_py(2));
    w.commit("Refactor every helper at once (#19)", ALICE);

    for i in 0..51 {
        w.write(&format!("data/{i}.txt"), format!("{i}\n"));
    }
    w.commit("Add many data files at once (#20)", ALICE);

    w.write("pkg/core.py", core_py("request.payload or b''", "self.open = 0", 11));
    w.commit("Fix the thing (#21)\n\nThe send method returned the wrong value!", ALICE);

    w.write("pkg/core.py", core_py("request.payload or None", "self.open = 0", 11));
    w.commit("Tweak send directly on main", ALICE);

    w.write("pkg/core.py", core_py("request.payload or None", "self.open = 0", 12));
    w.commit("Change the default timeout constant (#22)", ALICE);

    w.write("pkg/core.py", core_py("request.payload or 0", "self.open = 0", 12));
    w.commit("Fix (#23)", ALICE);

    // Odd input: a Latin-1 source file and a binary file in one change.
    w.write("pkg/legacy.py", b"# caf\xe9\ndef old():\n    return 2\n".as_slice());
    w.write("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary".as_slice());
    w.commit("Fix the legacy return value (#24)", ALICE);

    // A rename with an edit: gold is the old path's function.
    w.git(&["mv", "src/x.rs", "src/parser.rs"], ALICE);
    w.write("src/parser.rs", parser_rs("s.trim().len()", "!self.strict"));
    w.commit("Move the parser into its own module (#25)\n\nAnd invert `other`.", ALICE);

    w.mirror(mirrors, "acme/widgets");
    Fixture { squash, squash_base, merge, merge_base }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CorpusArgs,
}

fn args(words: &[&str]) -> CorpusArgs {
    let mut all = vec!["corpus"];
    all.extend_from_slice(words);
    Cli::try_parse_from(all).expect("arguments parse").args
}

#[test]
fn builds_instances_and_counts_every_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    let fx = fixture(tmp.path(), &mirrors);
    let out = tmp.path().join("out");
    let list = tmp.path().join("repos.txt");
    fs::write(&list, "# the fixture\nacme/widgets\n").unwrap();
    let a = args(&[
        "--mirrors",
        mirrors.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--repos-file",
        list.to_str().unwrap(),
        "--log-drops",
    ]);
    run_cli(a.clone()).unwrap();

    let gold = fs::read_to_string(out.join("corpus.gold.jsonl")).unwrap();
    expect![[r#"
        {"instance_id": "acme__widgets-12", "files": ["pkg/core.py"], "functions": ["pkg/core.py:Session.send"], "added_functions": [], "all_files": ["pkg/core.py"], "function_gold_reliable": true}
        {"instance_id": "acme__widgets-13", "files": ["src/x.rs"], "functions": ["src/x.rs:Parser::parse"], "added_functions": [], "all_files": ["src/x.rs"], "function_gold_reliable": true}
        {"instance_id": "acme__widgets-14", "files": ["pkg/core.py"], "functions": ["pkg/core.py:Session.close"], "added_functions": [], "all_files": ["pkg/core.py"], "function_gold_reliable": true}
        {"instance_id": "acme__widgets-24", "files": ["pkg/legacy.py"], "functions": ["pkg/legacy.py:old"], "added_functions": [], "all_files": ["logo.png", "pkg/legacy.py"], "function_gold_reliable": false}
        {"instance_id": "acme__widgets-25", "files": ["src/x.rs"], "functions": ["src/x.rs:Parser::other"], "added_functions": [], "all_files": ["src/parser.rs", "src/x.rs"], "function_gold_reliable": true}
    "#]]
    .assert_eq(&gold);

    let corpus: Vec<serde_json::Value> = fs::read_to_string(out.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(corpus.len(), 5);
    let squash = &corpus[0];
    assert_eq!(squash["instance_id"], "acme__widgets-12");
    assert_eq!(squash["repo"], "acme/widgets");
    assert_eq!(squash["base_commit"], fx.squash_base.as_str());
    assert_eq!(squash["problem_statement"], "Fix the thing\n\nThe send method returned the wrong value.");
    expect![[r#"
        diff --git a/pkg/core.py b/pkg/core.py
        index 6f5be2e44232f9d8c2dc5bf21a5345d85d29c65d..95a177119917891b2c669a3d13c39c8fab5de1f6 100644
        --- a/pkg/core.py
        +++ b/pkg/core.py
        @@ -3,7 +3,7 @@ TIMEOUT = 10
 
         class Session:
             def send(self, request):
        -        return request.body
        +        return request.payload
 
             def close(self):
                 self.open = False
    "#]]
    // Trailing blanks of context lines trimmed: editors strip them from the fixture.
    .assert_eq(
        &squash["patch"].as_str().unwrap().lines().map(|l| format!("{}\n", l.trim_end())).collect::<String>(),
    );
    let merge = &corpus[2];
    assert_eq!(merge["base_commit"], fx.merge_base.as_str());
    assert_eq!(merge["problem_statement"], "Close sessions properly\n\nThe close method leaked the handle.");
    assert_ne!(fx.merge, fx.merge_base);
    assert!(!fx.squash.is_empty());

    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let repo = &manifest["repositories"][0];
    assert_eq!(repo["repo"], "acme/widgets");
    assert_eq!(repo["mirror"], "acme+widgets/repo");
    expect![[r#"
        commits 16, PR changes 14, kept 5, python 3, rust 2
        bot_author 1
        duplicate_pr 0
        duplicate_text 1
        no_function_gold 1
        no_issue_text 0
        no_parent 1
        no_source_change 2
        not_a_pr 1
        patch_too_large 0
        read_failed 0
        release_or_bump 1
        text_too_short 1
        too_many_files 0
        too_many_functions 1
        too_many_paths 1
    "#]]
    .assert_eq(&render_counts(repo));
    assert_eq!(manifest["totals"]["kept"], 5);
    assert!(manifest["command"].as_str().unwrap().starts_with("locus corpus build --mirrors "));

    // Same mirrors, same arguments: the same bytes.
    let before: Vec<Vec<u8>> = ["corpus.jsonl", "corpus.gold.jsonl", "manifest.json", "drops.jsonl"]
        .iter()
        .map(|f| fs::read(out.join(f)).unwrap())
        .collect();
    assert!(out.join("parts/acme+widgets.json").is_file());
    run_cli(a.clone()).unwrap();
    let reused: Vec<Vec<u8>> = ["corpus.jsonl", "corpus.gold.jsonl", "manifest.json", "drops.jsonl"]
        .iter()
        .map(|f| fs::read(out.join(f)).unwrap())
        .collect();
    assert!(before == reused, "a build from the saved part wrote different bytes");
    // And rebuilt from scratch.
    let mut fresh = a;
    fresh.fresh = true;
    run_cli(fresh).unwrap();
    let after: Vec<Vec<u8>> = ["corpus.jsonl", "corpus.gold.jsonl", "manifest.json", "drops.jsonl"]
        .iter()
        .map(|f| fs::read(out.join(f)).unwrap())
        .collect();
    assert!(before == after, "a second build wrote different bytes");
}

fn render_counts(repo: &serde_json::Value) -> String {
    let mut s = format!(
        "commits {}, PR changes {}, kept {}, python {}, rust {}\n",
        repo["first_parent_commits"],
        repo["pr_changes"],
        repo["kept"],
        repo["languages"]["python"],
        repo["languages"]["rust"]
    );
    for (k, v) in repo["dropped"].as_object().unwrap() {
        s.push_str(&format!("{k} {v}\n"));
    }
    s
}

#[test]
fn refuses_benchmark_repositories_before_reading_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    let mut w = Work::init(&tmp.path().join("work"));
    w.write("requests/api.py", "def get():\n    pass\n");
    w.commit("Initial commit", ALICE);
    w.mirror(&mirrors, "someone/Requests");
    let out = tmp.path().join("out");
    let err = run_cli(args(&[
        "--mirrors",
        mirrors.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "someone/Requests",
    ]))
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("refusing someone/Requests"), "{msg}");
    assert!(msg.contains("SWE-bench"), "{msg}");
    assert!(!out.exists(), "nothing may be written for a refused repository");

    // The library entry refuses too, whatever the caller checked.
    let repo = locus_corpus::RepoName::parse("tokio-rs/tokio").unwrap();
    let e =
        locus_corpus::build_repo(&repo, &mirrors.join("someone+Requests/repo"), None, &Default::default())
            .unwrap_err();
    assert!(e.to_string().contains("tokio"), "{e}");
}

#[test]
fn missing_mirrors_fail_or_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    fs::create_dir_all(&mirrors).unwrap();
    let out = tmp.path().join("out");
    let base = ["--mirrors", mirrors.to_str().unwrap(), "--out", out.to_str().unwrap(), "acme/absent"];
    let err = run_cli(args(&base)).unwrap_err();
    assert!(format!("{err:#}").contains("no mirror of acme/absent"), "{err:#}");
    let mut with_skip = base.to_vec();
    with_skip.push("--skip-missing");
    run_cli(args(&with_skip)).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["repositories"][0]["commit"], serde_json::Value::Null);
    assert_eq!(fs::read(out.join("corpus.jsonl")).unwrap(), b"");
}

#[test]
fn refuses_to_write_inside_a_git_work_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    let mut w = Work::init(&tmp.path().join("work"));
    w.write("a.py", "def f():\n    pass\n");
    w.commit("Initial commit", ALICE);
    w.mirror(&mirrors, "acme/tiny");
    let out = tmp.path().join("work/corpus");
    let err =
        run_cli(args(&["--mirrors", mirrors.to_str().unwrap(), "--out", out.to_str().unwrap(), "acme/tiny"]))
            .unwrap_err();
    assert!(format!("{err:#}").contains("inside the git work tree"), "{err:#}");
}

#[test]
fn pins_rebuild_the_same_corpus_from_a_newer_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    fixture(tmp.path(), &mirrors);
    let (first, pinned, newer) =
        (tmp.path().join("first"), tmp.path().join("pinned"), tmp.path().join("newer"));
    let m = mirrors.to_str().unwrap();
    run_cli(args(&["--mirrors", m, "--out", first.to_str().unwrap(), "acme/widgets"])).unwrap();

    // The mirror moves on by one more pull request.
    let mut w = Work { dir: tmp.path().join("work"), tick: 1000 };
    w.write("pkg/core.py", core_py("request.payload or 0", "self.open = -1", 12));
    w.commit("Close sessions with a sentinel value (#30)", ALICE);
    w.git(&["push", "-q", mirrors.join("acme+widgets/repo").to_str().unwrap(), "main"], ALICE);

    let pins = first.join("manifest.json");
    run_cli(args(&[
        "--mirrors",
        m,
        "--out",
        pinned.to_str().unwrap(),
        "--pins",
        pins.to_str().unwrap(),
        "acme/widgets",
    ]))
    .unwrap();
    run_cli(args(&["--mirrors", m, "--out", newer.to_str().unwrap(), "acme/widgets"])).unwrap();
    for f in ["corpus.jsonl", "corpus.gold.jsonl"] {
        assert_eq!(fs::read(first.join(f)).unwrap(), fs::read(pinned.join(f)).unwrap(), "{f}");
    }
    let gold = fs::read_to_string(newer.join("corpus.gold.jsonl")).unwrap();
    // History is walked oldest first, so a newer mirror only appends.
    assert!(gold.starts_with(&fs::read_to_string(first.join("corpus.gold.jsonl")).unwrap()));
    assert!(gold.lines().last().unwrap().contains("\"acme__widgets-30\""), "{gold}");
}

#[test]
fn merges_by_a_bot_account_and_mirrors_missing_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    let mut w = Work::init(&tmp.path().join("work"));
    w.write("pkg/core.py", core_py("request.body", "self.open = False", 10));
    w.write("README.md", "# widgets\n");
    w.commit("Initial commit", ALICE);
    // bors-ng merges every pull request as `bors[bot]`: the merge is still a person's change.
    w.git(&["checkout", "-q", "-b", "send"], ALICE);
    w.write("pkg/core.py", core_py("request.payload", "self.open = False", 10));
    w.commit("wip", ALICE);
    w.git(&["checkout", "-q", "main"], ALICE);
    w.git(
        &[
            "merge",
            "-q",
            "--no-ff",
            "send",
            "-m",
            "Merge #31\n\n31: Send the payload, not the body r=bob a=alice\n",
        ],
        BOT,
    );
    // A change whose README blob the mirror will lack (a partial clone leaves blobs out).
    w.write("pkg/core.py", core_py("request.payload", "self.open = None", 10));
    w.write("README.md", "# widgets\n\nA large generated table.\n");
    w.commit("Close sessions with None instead (#32)", ALICE);
    let missing = git_in(&w.dir, &["rev-parse", "HEAD:README.md"], ALICE, 0);
    w.write("pkg/core.py", core_py("request.payload", "self.open = 0", 10));
    w.commit("Close sessions with zero instead (#33)", ALICE);

    // A mirror of loose objects (pushed, not cloned), one of them then removed.
    let repo = mirrors.join("acme+partial/repo");
    fs::create_dir_all(&repo).unwrap();
    git_in(&repo, &["init", "-q", "--bare"], ALICE, 0);
    w.git(&["push", "-q", repo.to_str().unwrap(), "main"], ALICE);
    fs::remove_file(repo.join("objects").join(&missing[..2]).join(&missing[2..])).unwrap();

    let out = tmp.path().join("out");
    run_cli(args(&["--mirrors", mirrors.to_str().unwrap(), "--out", out.to_str().unwrap(), "acme/partial"]))
        .unwrap();
    let gold = fs::read_to_string(out.join("corpus.gold.jsonl")).unwrap();
    let ids: Vec<&str> = gold.lines().map(|l| l.split('"').nth(3).unwrap()).collect();
    assert_eq!(ids, ["acme__partial-31", "acme__partial-33"]);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["repositories"][0]["dropped"]["read_failed"], 1);
    assert_eq!(manifest["repositories"][0]["dropped"]["bot_author"], 0);
}

/// `--issue-texts`: only the pull requests with a real issue report are kept, each with the
/// issue's text (a short or duplicate pull-request text no longer matters); a report whose pull
/// request is not in the history is listed; other repositories' reports are counted, not used.
#[test]
fn issue_texts_make_a_development_set() {
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    fixture(tmp.path(), &mirrors);
    let texts = tmp.path().join("reports.json");
    fs::write(
        &texts,
        serde_json::json!({
            "acme__widgets-12": "send returns the body\r\nIt should return the payload.",
            "Acme__Widgets-14": "Sessions leak their handle on close\nclose() leaves it open.",
            "acme__widgets-21": "send returns nothing for an empty payload\nExpected b''.",
            "acme__widgets-23": "send: 0 instead of None\nA regression of the last change.",
            "acme__widgets-99": "A report whose fix was never merged",
            "other__repo-3": "Another repository's report",
        })
        .to_string(),
    )
    .unwrap();
    let out = tmp.path().join("dev");
    let a = args(&[
        "--mirrors",
        mirrors.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--issue-texts",
        texts.to_str().unwrap(),
        "acme/widgets",
    ]);
    run_cli(a).unwrap();

    let corpus: Vec<serde_json::Value> = fs::read_to_string(out.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String)> = corpus
        .iter()
        .map(|c| (c["instance_id"].as_str().unwrap().into(), c["problem_statement"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        got,
        [
            ("acme__widgets-12", "send returns the body\nIt should return the payload."),
            ("acme__widgets-14", "Sessions leak their handle on close\nclose() leaves it open."),
            ("acme__widgets-21", "send returns nothing for an empty payload\nExpected b''."),
            ("acme__widgets-23", "send: 0 instead of None\nA regression of the last change."),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let gold = fs::read_to_string(out.join("corpus.gold.jsonl")).unwrap();
    assert!(gold.lines().nth(1).unwrap().contains(r#""functions": ["pkg/core.py:Session.close"]"#), "{gold}");

    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let info = &manifest["issue_texts"];
    assert_eq!(info["file"], "reports.json");
    assert_eq!(info["texts"], 6);
    assert_eq!(info["texts_for_these_repositories"], 5);
    assert_eq!(info["sha256"].as_str().unwrap().len(), 64);
    let repo = &manifest["repositories"][0];
    assert_eq!(repo["issue_texts"], 5);
    assert_eq!(repo["texts_not_found"], serde_json::json!([99]));
    assert_eq!(repo["kept"], 4);
    assert_eq!(repo["dropped"]["no_issue_text"], 9);
    assert!(manifest["command"].as_str().unwrap().contains("--issue-texts"));
}
