//! One commit's unified diff (as `git diff-tree -p` prints it), split into file sections, each
//! with the lines it removes (numbered in the old file) and adds (numbered in the new one).
//! Total: any input yields sections; malformed hunks end early, never panic.

/// One file's part of a diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileDiff {
    /// The path before the change (`None` for an added file).
    pub old_path: Option<String>,
    /// The path after the change (`None` for a deleted file).
    pub new_path: Option<String>,
    /// The section's text, `diff --git` line included, as bytes (a diff need not be UTF-8).
    pub text: Vec<u8>,
    /// Removed lines: 1-based line number in the old file, and the line.
    pub removed: Vec<(u32, Vec<u8>)>,
    /// Added lines: 1-based line number in the new file, and the line.
    pub added: Vec<(u32, Vec<u8>)>,
}

impl FileDiff {
    /// The path that names this section: the old path, or the new one for an added file.
    pub fn path(&self) -> Option<&str> {
        self.old_path.as_deref().or(self.new_path.as_deref())
    }
}

/// Splits one commit's diff into file sections.
pub fn parse(diff: &[u8]) -> Vec<FileDiff> {
    let lines: Vec<&[u8]> = split_lines(diff);
    let mut out: Vec<FileDiff> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if !line.starts_with(b"diff --git ") {
            // Text before the first section (a commit id line): not part of any file.
            if let Some(cur) = out.last_mut() {
                cur.text.extend_from_slice(line);
                cur.text.push(b'\n');
            }
            i += 1;
            continue;
        }
        let mut cur = FileDiff::default();
        let (a, b) = git_header_paths(&line[11..]);
        cur.old_path = a;
        cur.new_path = b;
        push_line(&mut cur.text, line);
        i += 1;
        // Extended header lines, up to the first hunk or the next section.
        while i < lines.len() && !lines[i].starts_with(b"@@") && !lines[i].starts_with(b"diff --git ") {
            let l = lines[i];
            push_line(&mut cur.text, l);
            if let Some(p) = l.strip_prefix(b"--- ") {
                cur.old_path = header_path(p, b"a/");
            } else if let Some(p) = l.strip_prefix(b"+++ ") {
                cur.new_path = header_path(p, b"b/");
            } else if let Some(p) = l.strip_prefix(b"rename from ") {
                cur.old_path = Some(unquote(p));
            } else if let Some(p) = l.strip_prefix(b"rename to ") {
                cur.new_path = Some(unquote(p));
            } else if l.starts_with(b"new file mode") {
                cur.old_path = None;
            } else if l.starts_with(b"deleted file mode") {
                cur.new_path = None;
            }
            i += 1;
        }
        // Hunks.
        while i < lines.len() && lines[i].starts_with(b"@@") {
            let header = lines[i];
            push_line(&mut cur.text, header);
            i += 1;
            let Some((mut old, old_count, mut new, new_count)) = hunk_header(header) else {
                break;
            };
            let (mut old_left, mut new_left) = (old_count, new_count);
            while i < lines.len() && (old_left > 0 || new_left > 0 || lines[i].starts_with(b"\\")) {
                let l = lines[i];
                match l.first() {
                    Some(b' ') | None => {
                        old += 1;
                        new += 1;
                        old_left = old_left.saturating_sub(1);
                        new_left = new_left.saturating_sub(1);
                    }
                    Some(b'-') => {
                        cur.removed.push((old, l[1..].to_vec()));
                        old += 1;
                        old_left = old_left.saturating_sub(1);
                    }
                    Some(b'+') => {
                        cur.added.push((new, l[1..].to_vec()));
                        new += 1;
                        new_left = new_left.saturating_sub(1);
                    }
                    // `\ No newline at end of file`.
                    Some(b'\\') => {}
                    // Not a hunk line: the hunk was shorter than its header said.
                    Some(_) => break,
                }
                push_line(&mut cur.text, l);
                i += 1;
            }
        }
        out.push(cur);
    }
    out
}

fn push_line(buf: &mut Vec<u8>, line: &[u8]) {
    buf.extend_from_slice(line);
    buf.push(b'\n');
}

fn split_lines(s: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = s.split(|&b| b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

/// `@@ -a,b +c,d @@ …` → (a, b, c, d); a missing count is 1.
fn hunk_header(line: &[u8]) -> Option<(u32, u32, u32, u32)> {
    let s = std::str::from_utf8(line.get(3..)?).ok()?;
    let mut parts = s.split(' ');
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let range = |r: &str| -> Option<(u32, u32)> {
        match r.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (a, b) = range(old)?;
    let (c, d) = range(new)?;
    Some((a, b, c, d))
}

/// A `---`/`+++` path: `/dev/null` is none; the `a/` or `b/` prefix is cut.
fn header_path(p: &[u8], prefix: &[u8]) -> Option<String> {
    // git appends a tab after a path that contains a space, in some versions.
    let p = p.strip_suffix(b"\t").unwrap_or(p);
    if p == b"/dev/null" {
        return None;
    }
    let s = unquote(p);
    let pre = std::str::from_utf8(prefix).unwrap_or("");
    Some(s.strip_prefix(pre).map(str::to_string).unwrap_or(s))
}

/// `diff --git a/x b/x`: the paths, when they can be told apart (unquoted paths with spaces are
/// ambiguous; the `---`/`+++` or `rename` lines then say it).
fn git_header_paths(rest: &[u8]) -> (Option<String>, Option<String>) {
    if rest.first() == Some(&b'"') {
        // Quoted old path: find its closing quote.
        let mut j = 1;
        while j < rest.len() && rest[j] != b'"' {
            j += if rest[j] == b'\\' { 2 } else { 1 };
        }
        let a = unquote(&rest[..(j + 1).min(rest.len())]);
        let b = rest.get(j + 2..).map(unquote);
        return (
            a.strip_prefix("a/").map(str::to_string),
            b.and_then(|b| b.strip_prefix("b/").map(str::to_string)),
        );
    }
    let s = String::from_utf8_lossy(rest);
    // Same path on both sides (the common case): `a/P b/P`, total length 2·|P| + 5.
    if s.len() >= 5 && s.len() % 2 == 1 {
        let half = (s.len() - 5) / 2;
        if s.starts_with("a/")
            && s.get(2 + half..5 + half) == Some(" b/")
            && s.get(2..2 + half) == s.get(5 + half..)
        {
            let p = s[2..2 + half].to_string();
            return (Some(p.clone()), Some(p));
        }
    }
    match s.split_once(" b/") {
        Some((a, b)) => (a.strip_prefix("a/").map(str::to_string), Some(b.to_string())),
        None => (None, None),
    }
}

/// Undoes git's C-style quoting of a path (`"a/caf\303\251.py"`); an unquoted path is returned
/// as is. Bytes that are not UTF-8 are replaced.
pub fn unquote(p: &[u8]) -> String {
    let Some(inner) = p.strip_prefix(b"\"").and_then(|x| x.strip_suffix(b"\"")) else {
        return String::from_utf8_lossy(p).into_owned();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        if c != b'\\' || i + 1 >= inner.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = inner[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let octal = |d: u8| (b'0'..=b'7').contains(&d);
                if i + 1 < inner.len() && octal(inner[i]) && octal(inner[i + 1]) {
                    let v = u32::from(e - b'0') * 64
                        + u32::from(inner[i] - b'0') * 8
                        + u32::from(inner[i + 1] - b'0');
                    out.push(v as u8);
                    i += 2;
                } else {
                    out.push(e);
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn render(diff: &str) -> String {
        let mut out = String::new();
        for f in parse(diff.as_bytes()) {
            out.push_str(&format!("{:?} -> {:?}\n", f.old_path, f.new_path));
            for (n, l) in &f.removed {
                out.push_str(&format!("  -{n} {}\n", String::from_utf8_lossy(l)));
            }
            for (n, l) in &f.added {
                out.push_str(&format!("  +{n} {}\n", String::from_utf8_lossy(l)));
            }
        }
        out
    }

    #[test]
    fn sections_hunks_renames_and_quoting() {
        let diff = "\
0123456789012345678901234567890123456789
diff --git a/src/a.py b/src/a.py
index 1111111..2222222 100644
--- a/src/a.py
+++ b/src/a.py
@@ -1,4 +1,4 @@ class A:
 class A:
     def f(self):
-        return 1
+        return 2
 
@@ -10,2 +10,3 @@ def g():
 x = 1
+--- not a header
 y = 2
diff --git a/old name.rs b/new name.rs
similarity index 90%
rename from old name.rs
rename to new name.rs
index 3333333..4444444 100644
--- a/old name.rs\t
+++ b/new name.rs\t
@@ -3 +3 @@
-fn a() {}
\\ No newline at end of file
+fn b() {}
\\ No newline at end of file
diff --git \"a/caf\\303\\251.py\" \"b/caf\\303\\251.py\"
new file mode 100644
index 0000000..5555555
--- /dev/null
+++ \"b/caf\\303\\251.py\"
@@ -0,0 +1 @@
+x = 1
diff --git a/logo.png b/logo.png
index 6666666..7777777 100644
Binary files a/logo.png and b/logo.png differ
";
        expect![[r#"
            Some("src/a.py") -> Some("src/a.py")
              -3         return 1
              +3         return 2
              +11 --- not a header
            Some("old name.rs") -> Some("new name.rs")
              -3 fn a() {}
              +3 fn b() {}
            None -> Some("café.py")
              +1 x = 1
            Some("logo.png") -> Some("logo.png")
        "#]]
        .assert_eq(&render(diff));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            "diff --git ",
            "diff --git \"a/x",
            "@@ -1 +1 @@\n-x",
            "diff --git a/x b/x\n@@ -x +y @@\n-a\n",
        ] {
            let _ = parse(s.as_bytes());
        }
        assert_eq!(unquote(b"\"a\\1\""), "a1");
        assert_eq!(unquote(b"\"\\"), "\"\\");
    }
}
