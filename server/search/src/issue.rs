//! What of an issue's text is about the problem. Issue templates add an environment dump
//! (`biome rage`, `nu version`, `rustc --version --verbose`, OS and package versions) and form
//! placeholders; their words match whatever code *prints* the environment (the `rage` command,
//! the configuration loader), on every issue of the repository, never the code with the bug.
//! [`essential`] drops those sections before the engine reads the issue; the BM25 baseline and
//! the encoder-alone ablation read the issue as written.

use std::borrow::Cow;

/// Section titles (lowercased, letters, digits and spaces only) whose section is an environment
/// dump. A title that starts with one of them counts too ("Environment information",
/// "Versions of the packages").
const ENVIRONMENT_TITLES: &[&str] = &[
    "environment",
    "your environment",
    "system info",
    "system information",
    "system details",
    "versions",
    "version information",
    "version info",
    "installed versions",
    "platform",
    "meta",
];

/// The issue without environment sections and form placeholders (`_No response_`); the issue
/// itself when there is nothing to drop, or when dropping would leave nothing.
pub fn essential(issue: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(issue.len());
    let mut fence: Option<&str> = None;
    // The level of the environment heading being skipped (bold titles: 7, any heading ends it).
    let mut skipping: Option<usize> = None;
    let mut dropped = false;
    let lines: Vec<&str> = issue.split_inclusive('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        i += 1;
        if let Some(f) = fence {
            if t.starts_with(f) {
                fence = None;
            }
            if skipping.is_none() {
                out.push_str(line);
            }
            continue;
        }
        if let Some(level) = heading(t).map(|(level, _)| level) {
            if skipping.is_some_and(|s| level <= s || s == BOLD) {
                skipping = None;
            }
        }
        if skipping.is_none() {
            if let Some((level, title)) = heading(t) {
                if is_environment(&title) || (title == "configuration" && key_value_table(&lines[i..])) {
                    skipping = Some(level);
                    dropped = true;
                    continue;
                }
            }
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = Some(&t[..3]);
        }
        if skipping.is_some() {
            continue;
        }
        if t == "_No response_" {
            dropped = true;
            continue;
        }
        out.push_str(line);
    }
    if !dropped || out.trim().is_empty() {
        return Cow::Borrowed(issue);
    }
    Cow::Owned(out)
}

/// The level given to a bold-only title line (`**Environment**`): any heading ends its section.
const BOLD: usize = 7;

/// A heading line: its level and its normalized title.
fn heading(t: &str) -> Option<(usize, String)> {
    let hashes = t.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
        return Some((hashes, normalize(&t[hashes..])));
    }
    let bold = t.strip_prefix("**").and_then(|r| r.strip_suffix("**").or_else(|| r.strip_suffix("**:")));
    match bold {
        Some(inner) if !inner.contains("**") && inner.len() <= 60 => Some((BOLD, normalize(inner))),
        _ => None,
    }
}

/// Lowercase letters, digits and single spaces (emoji, punctuation and markup dropped).
fn normalize(title: &str) -> String {
    let mut s = String::new();
    for w in title.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&w.to_lowercase());
    }
    s
}

fn is_environment(title: &str) -> bool {
    ENVIRONMENT_TITLES
        .iter()
        .any(|e| title == *e || title.strip_prefix(e).is_some_and(|r| r.starts_with(' ')))
}

/// Whether the section starting at `rest` is a `| key | value |` table (Nushell's `version`
/// output under "Configuration"), before any other text.
fn key_value_table(rest: &[&str]) -> bool {
    rest.iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with('|') && normalize(l).starts_with("key value"))
}

#[cfg(test)]
mod tests {
    use super::essential;

    #[test]
    fn drops_environment_sections_and_placeholders() {
        let issue = "💅 useSingleVarDeclarator suggests non-working code\n\
### Environment information\n\n```bash\nCLI:\n  Version: 1.3.3\n  Color support: true\n\n\
Environment:\n  BIOME_LOG_DIR: unset\n  NO_COLOR: unset\n```\n\n\
### What happened?\n\nThe fix of `let a = 1, b = 2` drops `b`.\n\n\
### Screenshots\n\n_No response_\n";
        assert_eq!(
            essential(issue),
            "💅 useSingleVarDeclarator suggests non-working code\n\
### What happened?\n\nThe fix of `let a = 1, b = 2` drops `b`.\n\n### Screenshots\n\n"
        );
    }

    #[test]
    fn a_heading_inside_a_fence_neither_starts_nor_ends_a_section() {
        let issue = "Title\n## Environment\n```\n# not a heading\nOS: linux\n```\n## Steps\nrun `x`\n";
        assert_eq!(essential(issue), "Title\n## Steps\nrun `x`\n");
        let kept = "Title\n```\n## Environment\nOS: linux\n```\n";
        assert_eq!(essential(kept), kept);
    }

    #[test]
    fn a_deeper_heading_stays_in_the_section_a_bold_title_ends_at_any_heading() {
        let issue = "T\n## Versions\n### rustc\n1.80\n## Bug\nit panics\n";
        assert_eq!(essential(issue), "T\n## Bug\nit panics\n");
        let bold = "T\n**Environment info**\n- OS: Linux\n- Sphinx 3.4\n### Bug\nboom\n";
        assert_eq!(essential(bold), "T\n### Bug\nboom\n");
    }

    #[test]
    fn configuration_is_dropped_only_as_a_key_value_table() {
        let nu = "Bug\n### Configuration\n\n| key | value |\n| --- | --- |\n| version | 0.87.1 |\n";
        assert_eq!(essential(nu), "Bug\n");
        let cfg = "Bug\n### Configuration\n\n```json\n{\"lineWidth\": 80}\n```\n";
        assert_eq!(essential(cfg), cfg);
    }

    #[test]
    fn titles_that_only_start_like_an_environment_word_stay() {
        let issue = "Bug\n## Environmental variables are ignored\n`FOO=1` does nothing\n";
        assert_eq!(essential(issue), issue);
        let plain = "Nothing to drop here.\n";
        assert!(matches!(essential(plain), std::borrow::Cow::Borrowed(_)));
        assert_eq!(essential("## Environment\nOS: linux\n"), "## Environment\nOS: linux\n");
    }
}
