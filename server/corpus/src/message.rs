//! What a person wrote about a change: the pull request's text found in a commit message
//! (squash merge, GitHub merge, bors/homu, merge queue), its cleanup, and the message rules that
//! drop a commit before any diff is read (bots, releases and dependency bumps).

/// The pull request a commit message speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrMessage {
    /// The pull request's number, when the message names one.
    pub number: Option<u64>,
    /// The text before cleanup: title, blank line, body.
    pub text: String,
    /// The branch a merge came from (`owner/branch`, `user:branch`), when the message says.
    pub source_branch: Option<String>,
    /// A merge commit's message (GitHub, bors, bors-ng): its author is whoever or whatever
    /// merged (often a merge bot), not the pull request's author.
    pub merged: bool,
}

/// Finds the pull request in a commit message, or `None` when the commit is not a PR change.
///
/// - squash merge (or merge queue): subject ends with `(#123)`; text = subject without it + body;
/// - GitHub merge: `Merge pull request #123 from owner/branch`; text = the rest of the message;
/// - bors / homu: `Auto merge of #123 - user:branch, r=x`; text = the rest of the message;
/// - bors-ng: `Merge #123` (one PR only); text = the rest, its `123: ` prefix and `r=` tail cut.
pub fn pr_message(message: &str) -> Option<PrMessage> {
    let message = message.trim_start_matches(['\n', '\r', ' ']);
    let (subject, body) = match message.split_once('\n') {
        Some((s, b)) => (s.trim_end(), b),
        None => (message.trim_end(), ""),
    };
    // The blank line(s) between subject and body.
    let body = body.trim_start_matches(['\n', '\r']);
    if let Some(rest) = subject.strip_prefix("Merge pull request #") {
        let (number, after) = leading_number(rest)?;
        let source = after.trim_start().strip_prefix("from ").map(|b| b.trim().to_string());
        return Some(PrMessage {
            number: Some(number),
            text: body.to_string(),
            source_branch: source,
            merged: true,
        });
    }
    let lower = subject.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("auto merge of #") {
        let (number, after) = leading_number(rest)?;
        // `- user:branch, r=x` (bors) or ` : user/repo/branch, r=x` (homu); the subject is ASCII
        // up to here, so the lowered offsets are the original's.
        let after = after.trim_start_matches([' ', '-', ':']);
        let branch =
            after.split(',').next().map(|b| subject[subject.len() - after.len()..][..b.len()].trim());
        return Some(PrMessage {
            number: Some(number),
            text: body.to_string(),
            source_branch: branch.map(str::to_string),
            merged: true,
        });
    }
    if let Some(rest) = subject.strip_prefix("Merge #") {
        let (number, after) = leading_number(rest)?;
        if !after.trim().is_empty() {
            // `Merge #12 #13`: a batch of several PRs has no one text.
            return None;
        }
        return Some(PrMessage {
            number: Some(number),
            text: bors_ng_body(body, number),
            source_branch: None,
            merged: true,
        });
    }
    if let Some((title, number)) = strip_pr_suffix(subject) {
        let text = if body.trim().is_empty() { title.to_string() } else { format!("{title}\n\n{body}") };
        return Some(PrMessage { number: Some(number), text, source_branch: None, merged: false });
    }
    None
}

/// `123 rest` → (123, ` rest`).
fn leading_number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

/// `Title (#123)` → (`Title`, 123).
fn strip_pr_suffix(subject: &str) -> Option<(&str, u64)> {
    let s = subject.trim_end();
    let inner = s.strip_suffix(')')?;
    let open = inner.rfind("(#")?;
    let number = inner[open + 2..].parse().ok()?;
    Some((s[..open].trim_end(), number))
}

/// bors-ng's body: `123: Title r=a a=b` then the PR body; the number and the tail are cut.
fn bors_ng_body(body: &str, number: u64) -> String {
    let body = body.trim_start_matches('\n');
    let (first, rest) = body.split_once('\n').unwrap_or((body, ""));
    let first = first.strip_prefix(&format!("{number}: ")).unwrap_or(first);
    let first = match first.find(" r=") {
        Some(i) => &first[..i],
        None => first,
    };
    format!("{}\n{rest}", first.trim_end())
}

/// Trailer keys whose lines are dropped from a text (matched case-insensitively).
const TRAILERS: &[&str] = &[
    "co-authored-by:",
    "signed-off-by:",
    "reviewed-by:",
    "acked-by:",
    "tested-by:",
    "reported-by:",
    "suggested-by:",
    "change-id:",
];

/// Cleans a PR text: line endings unified, `<!-- … -->` template comments, trailers
/// (`Co-authored-by:` …) and checklist lines (`- [x] …`) removed, trailing spaces cut, runs
/// of blank lines folded to one, the whole trimmed.
pub fn clean_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = strip_html_comments(&text);
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        if TRAILERS.iter().any(|k| lower.starts_with(k)) || is_checklist(t) || is_bot_command(&lower) {
            continue;
        }
        if t.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim().to_string()
}

fn strip_html_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i + 4..].find("-->") {
            Some(j) => rest = &rest[i + 4 + j + 3..],
            // An unclosed comment runs to the end, as a renderer would show it.
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Review-bot commands (`r? @someone`, `@bors r+`, `@rustbot label …`): addressed to a bot,
/// not about the change.
fn is_bot_command(lower: &str) -> bool {
    lower.starts_with("r? ") || lower.starts_with("@bors ") || lower.starts_with("@rustbot ")
}

fn is_checklist(t: &str) -> bool {
    let Some(rest) = t.strip_prefix(['-', '*', '+']) else {
        return false;
    };
    let rest = rest.trim_start();
    rest.starts_with("[ ]") || rest.starts_with("[x]") || rest.starts_with("[X]")
}

/// Cuts `text` to at most `max` characters, at a character boundary.
pub fn cap_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].trim_end().to_string(),
        None => text.to_string(),
    }
}

/// Markers of automation in an author's name or e-mail, or in a merged branch's name.
const BOT_MARKERS: &[&str] = &["dependabot", "renovate", "pre-commit-ci", "github-actions", "[bot]"];

/// Whether the change was made by a bot: by its author, or for a merge by the branch it merged.
pub fn is_bot(author: &str, email: &str, source_branch: Option<&str>) -> bool {
    let author = author.to_ascii_lowercase();
    let email = email.to_ascii_lowercase();
    if BOT_MARKERS.iter().any(|m| author.contains(m) || email.contains(m)) {
        return true;
    }
    source_branch.is_some_and(|b| {
        let b = b.to_ascii_lowercase();
        BOT_MARKERS.iter().any(|m| b.contains(m))
    })
}

/// Title prefixes (lowercased) of release, version and dependency changes.
const BUMP_PREFIXES: &[&str] = &[
    "bump",
    "chore(deps",
    "chore(release",
    "build(deps",
    "fix(deps",
    "deps:",
    "deps(",
    "chore: bump",
    "chore: release",
    "chore: update dependencies",
    "chore: update deps",
    "update dependency",
    "update dependencies",
    "update deps",
    "upgrade dependencies",
    "upgrade deps",
    "update rust crate",
    "update pre-commit",
    "[pre-commit.ci]",
    "pre-commit autoupdate",
    "cargo update",
    "update cargo.lock",
    "update lockfile",
    "update lock file",
    "release:",
    "version bump",
];

/// Words that start a release title when a version number follows (`Release 8.1.0`,
/// `Prepare 0.4 release`, `v2.0.1`); without a version number they are ordinary words
/// (`Release the GIL before sleeping`).
const RELEASE_WORDS: &[&str] = &["release", "releasing", "prepare", "version", "changelog", "v"];

/// Whether a title announces a release, a version or a dependency bump.
pub fn is_bump(title: &str) -> bool {
    let t = title.trim().to_ascii_lowercase();
    if BUMP_PREFIXES.iter().any(|p| t.starts_with(p)) {
        return true;
    }
    let first_word: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if RELEASE_WORDS.contains(&first_word.as_str()) && has_version(&t) {
        return true;
    }
    // A title that is only a version: `1.2.3`, `v0.4.0`.
    let bare = t.trim_start_matches('v');
    !bare.is_empty() && bare.chars().all(|c| c.is_ascii_digit() || c == '.') && has_version(bare)
}

/// Whether `s` holds a dotted version number (`1.2`, `0.4.0`).
fn has_version(s: &str) -> bool {
    let b = s.as_bytes();
    (1..b.len().saturating_sub(1))
        .any(|i| b[i] == b'.' && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit())
}

/// The key of a text for near-duplicate detection: lowercased, `#123` references removed,
/// only letters and digits kept, hashed.
pub fn near_duplicate_key(text: &str) -> [u8; 32] {
    let lower = text.to_lowercase();
    let mut norm = String::with_capacity(lower.len());
    let mut chars = lower.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '#' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            continue;
        }
        if c.is_alphanumeric() {
            norm.push(c);
        }
    }
    *blake3::hash(norm.as_bytes()).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn render(message: &str) -> String {
        match pr_message(message) {
            Some(m) => format!(
                "#{:?} from={:?}\n{}\n---\n{}",
                m.number,
                m.source_branch,
                m.text,
                clean_text(&m.text)
            ),
            None => "not a PR".to_string(),
        }
    }

    #[test]
    fn squash_merge() {
        expect![[r#"
            #Some(12) from=None
            Fix the thing (#9)

            Body line.
            Co-authored-by: A <a@b.c>

            ---
            Fix the thing (#9)

            Body line."#]]
        .assert_eq(&render("Fix the thing (#9) (#12)\n\nBody line.\nCo-authored-by: A <a@b.c>\n"));
        assert_eq!(
            clean_text("Ignore the root target\n\nr? @alexcrichton\n@bors r+"),
            "Ignore the root target"
        );
    }

    #[test]
    fn github_merge() {
        expect![[r##"
            #Some(123) from=Some("alice/fix-it")
            Fix the parser

            <!-- Thanks for contributing! -->
            It broke.
            - [x] I added tests
            - a plain list item
            ---
            Fix the parser

            It broke.
            - a plain list item"##]]
        .assert_eq(&render(
            "Merge pull request #123 from alice/fix-it\n\nFix the parser\n\n<!-- Thanks for contributing! -->\nIt broke.\n- [x] I added tests\n- a plain list item",
        ));
    }

    #[test]
    fn bors_homu_and_bors_ng() {
        expect![[r##"
            #Some(11673) from=Some("weihanglo:rename")
            refactor: mod.rs over "name".rs

            See the discussion.
            ---
            refactor: mod.rs over "name".rs

            See the discussion."##]]
        .assert_eq(&render(
            "Auto merge of #11673 - weihanglo:rename, r=epage\n\nrefactor: mod.rs over \"name\".rs\n\nSee the discussion.",
        ));
        expect![[r##"
            #Some(567) from=Some("EduardoBautista/cargo/fix-centering")
            The website is not centered.
            ---
            The website is not centered."##]]
        .assert_eq(&render("auto merge of #567 : EduardoBautista/cargo/fix-centering, r=alex\n\nThe website is not centered."));
        expect![[r#"
            #Some(42) from=None
            Make it faster

            Details.

            ---
            Make it faster

            Details."#]]
        .assert_eq(&render("Merge #42\n\n42: Make it faster r=bob a=carol\n\nDetails.\n"));
        expect!["not a PR"].assert_eq(&render("Merge #42 #43\n\n42: a\n43: b"));
        expect!["not a PR"].assert_eq(&render("Fix a typo in the docs"));
        expect!["not a PR"].assert_eq(&render("Merge branch 'main' into feature"));
    }

    #[test]
    fn bots_and_bumps() {
        assert!(is_bot("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com", None));
        assert!(is_bot("pre-commit-ci[bot]", "x@y", None));
        assert!(is_bot("bors", "bors@rust-lang.org", Some("rust-lang:renovate/crate-openssl")));
        assert!(!is_bot("Alice", "alice@example.org", Some("alice/fix")));
        for t in [
            "Bump reedline to e4fe8ed",
            "build(deps): bump http from 1.4.0 to 1.5.0",
            "chore: bump to 0.101.0; update changelog",
            "Release 8.1.0",
            "Prepare 0.4.0 release",
            "v2.0.1",
            "1.2.3",
            "update deps",
            "[pre-commit.ci] pre-commit autoupdate",
        ] {
            assert!(is_bump(t), "{t}");
        }
        for t in [
            "Release the GIL before sleeping",
            "update math commands to handle records",
            "Fix version parsing",
        ] {
            assert!(!is_bump(t), "{t}");
        }
    }

    #[test]
    fn near_duplicates_ignore_case_punctuation_and_references() {
        assert_eq!(near_duplicate_key("Fix the parser (#12)"), near_duplicate_key("fix  the parser, #13"));
        assert_ne!(near_duplicate_key("Fix the parser"), near_duplicate_key("Fix the lexer"));
    }

    #[test]
    fn cap_is_by_characters() {
        assert_eq!(cap_chars("héllo wörld", 5), "héllo");
        assert_eq!(cap_chars("short", 50), "short");
    }
}
