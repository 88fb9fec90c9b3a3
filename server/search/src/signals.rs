//! Mines an issue's text for typed signals: traceback frames, Rust panics and backtraces, file
//! paths, dotted and `::` paths, code identifiers, fenced code, quoted strings and error messages.
//! Each signal keeps its byte span in the issue so a reason can point back at it.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A Python traceback frame or Rust backtrace frame: path, line, function.
    Frame,
    /// A Rust panic location (`panicked at src/x.rs:3:5`).
    Panic,
    /// A file path (`requests/models.py`, `src/io/mod.rs:12`).
    Path,
    /// A dotted or `::` path (`requests.Session.send`, `tokio::sync::Semaphore`).
    QualifiedName,
    /// An identifier written as code: in backticks or code, snake_case, CamelCase or followed by `(`.
    Identifier,
    /// An exception or error line (`ValueError: bad value`).
    ErrorMessage,
    /// A quoted string literal.
    Quoted,
    /// A fenced code block.
    Code,
    /// A command-line flag of two or more words (`--ngram-size`), as the snake_case name its
    /// value is usually held under (`ngram_size`): where the flag is defined and where it is read.
    Flag,
}

#[derive(Clone, Debug, Serialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub text: String,
    /// Byte range in the issue text.
    pub span: Range<usize>,
    /// For frames and panics: the file path, line and function, when present.
    pub path: Option<String>,
    pub line: Option<u32>,
    pub func: Option<String>,
    /// Inside backticks or a code block (stronger evidence than prose).
    pub in_code: bool,
}

impl Signal {
    fn new(kind: SignalKind, text: &str, span: Range<usize>) -> Signal {
        Signal { kind, text: text.to_string(), span, path: None, line: None, func: None, in_code: false }
    }
}

/// Issue texts are cut to this many bytes before mining; a 10 MB paste must not stall a query.
pub const MAX_ISSUE_BYTES: usize = 200_000;

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

macro_rules! regex {
    ($pat:expr) => {{
        static CELL: OnceLock<Regex> = OnceLock::new();
        re(&CELL, $pat)
    }};
}

/// Words that look like identifiers but say nothing about where a bug is.
const NOISE: &[&str] = &[
    "self",
    "None",
    "True",
    "False",
    "print",
    "len",
    "str",
    "int",
    "list",
    "dict",
    "return",
    "import",
    "from",
    "def",
    "class",
    "assert",
    "Traceback",
    "Error",
    "Exception",
    "Python",
    "Rust",
    "Ok",
    "Err",
    "Some",
    "Vec",
    "String",
    "Option",
    "Result",
    "Box",
    "Arc",
    "fn",
    "pub",
    "let",
    "mut",
    "impl",
    "use",
    "crate",
    "unwrap",
    "main",
    "https",
    "http",
    "www",
    "com",
    "github",
    "org",
    "e.g",
    "i.e",
    "etc",
    "cls",
    "args",
    "kwargs",
    "object",
    "type",
    "isinstance",
    "range",
    "super",
    "lambda",
    "async",
    "await",
    "yield",
    "pass",
    "raise",
    "except",
    "try",
    "with",
    "println",
    "format",
    "expect",
    "clone",
    "new",
    "into",
    "from",
    "default",
    "test",
    "tests",
    "bool",
    "float",
];

pub fn is_noise(word: &str) -> bool {
    NOISE.contains(&word) || word.len() < 3
}

/// A path component that is a crate with its version (`bevy_ecs-0.12.0`, `serde-1.0.200-rc.1`)
/// → the crate's name (`bevy_ecs`); any other component as it is.
pub fn crate_dir_of(component: &str) -> &str {
    let Some(m) = regex!(r"^([A-Za-z][\w-]*?)-\d+\.\d+\.\d+(?:[-+][\w.-]+)?$").captures(component) else {
        return component;
    };
    &component[..m.get(1).unwrap().end()]
}

/// Extracts all signals of `text`, in order of appearance within each kind.
pub fn extract(text: &str) -> Vec<Signal> {
    let mut end = text.len().min(MAX_ISSUE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let mut out = Vec::new();

    // Code regions: fenced blocks and inline backticks.
    let mut code: Vec<Range<usize>> = Vec::new();
    for m in regex!(r"(?s)```[^\n]*\n(.*?)(```|\z)").captures_iter(text) {
        let g = m.get(1).unwrap();
        code.push(g.range());
        out.push(Signal { in_code: true, ..Signal::new(SignalKind::Code, g.as_str(), g.range()) });
    }
    for m in regex!(r"`([^`\n]{1,200})`").captures_iter(text) {
        let g = m.get(1).unwrap();
        if !code.iter().any(|c| c.contains(&g.start())) {
            code.push(g.range());
        }
    }
    let n_fenced = out.len();
    let in_code = |pos: usize| code.iter().any(|c| c.contains(&pos));
    // Inline `code` spans name things on purpose; fenced blocks also hold values and output.
    let inline_code = |pos: usize| code[n_fenced..].iter().any(|c| c.contains(&pos));

    // Python traceback frames.
    for m in regex!(r#"File "([^"\n]+)", line (\d+)(?:, in ([A-Za-z_<][\w<>.]*))?"#).captures_iter(text) {
        let mut s = Signal::new(SignalKind::Frame, m.get(0).unwrap().as_str(), m.get(0).unwrap().range());
        s.path = Some(m[1].to_string());
        s.line = m[2].parse().ok();
        s.func = m.get(3).map(|f| f.as_str().to_string());
        s.in_code = true;
        out.push(s);
    }
    // Rust panics: `panicked at src/x.rs:3:5` or `panicked at 'msg', src/x.rs:3:5`; Windows
    // paths (`C:\Users\…\.cargo\registry\src\…\bevy_ecs-0.12.0\src\world\mod.rs:12:5`) too.
    for m in
        regex!(r"panicked at (?:'[^'\n]*', |.{0,200}?)?((?:[A-Za-z]:)?[^\s:'\x22,`]+\.rs):(\d+)(?::\d+)?")
            .captures_iter(text)
    {
        let mut s = Signal::new(SignalKind::Panic, m.get(0).unwrap().as_str(), m.get(0).unwrap().range());
        s.path = Some(m[1].to_string());
        s.line = m[2].parse().ok();
        s.in_code = true;
        out.push(s);
    }
    // Rust backtrace frames: `  12: tokio::runtime::task::harness::poll_future` + `at ./src/x.rs:10:5`.
    for m in regex!(r"(?m)^\s*\d+:\s+((?:[\w<>]+::)+[\w<>{}]+)(?:\s*\n\s+at\s+([^\s:]+\.rs):(\d+))?")
        .captures_iter(text)
    {
        let mut s = Signal::new(SignalKind::Frame, m.get(0).unwrap().as_str(), m.get(0).unwrap().range());
        let func = m[1].trim_end_matches("::{{closure}}").to_string();
        s.func = func.rsplit("::").next().map(|f| f.to_string());
        s.text = func;
        s.path = m.get(2).map(|p| p.as_str().to_string());
        s.line = m.get(3).and_then(|l| l.as_str().parse().ok());
        s.in_code = true;
        out.push(s);
    }
    // File paths, optionally with a line.
    for m in
        regex!(r"(?:^|[\s`'\x22(\[/])((?:[\w.-]+/)*[\w.-]+\.(?:py|rs|pyi))(?::(\d+))?\b").captures_iter(text)
    {
        let g = m.get(1).unwrap();
        let mut s = Signal::new(SignalKind::Path, g.as_str(), g.range());
        s.path = Some(g.as_str().to_string());
        s.line = m.get(2).and_then(|l| l.as_str().parse().ok());
        s.in_code = in_code(g.start());
        out.push(s);
    }
    // Qualified names: a.b.c, A::b.
    for m in regex!(r"\b([A-Za-z_]\w*(?:(?:\.|::)[A-Za-z_]\w*)+)\b").find_iter(text) {
        let t = m.as_str();
        if t.ends_with(".py") || t.ends_with(".rs") || t.contains("www.") || t.starts_with("http") {
            continue;
        }
        // Sentence punctuation ("end.Next") is not a path: require code context or code shape.
        let segs: Vec<&str> = t.split(['.', ':']).filter(|s| !s.is_empty()).collect();
        let codey = in_code(m.start())
            || t.contains("::")
            || segs.iter().any(|s| s.contains('_') || s.chars().skip(1).any(|c| c.is_uppercase()))
            || segs.len() >= 3;
        if !codey || segs.iter().all(|s| s.chars().all(|c| c.is_ascii_digit())) {
            continue;
        }
        let mut s = Signal::new(SignalKind::QualifiedName, t, m.range());
        s.in_code = in_code(m.start());
        out.push(s);
    }
    // Identifiers.
    for m in regex!(r"\b[A-Za-z_][A-Za-z0-9_]*\b").find_iter(text) {
        let w = m.as_str();
        if is_noise(w) {
            continue;
        }
        let code_ctx = in_code(m.start());
        let called = text[m.end()..].starts_with('(');
        let snake = w.contains('_') && w.chars().any(|c| c.is_alphabetic());
        let camel = w.chars().next().is_some_and(|c| c.is_uppercase())
            && w.chars().skip(1).any(|c| c.is_uppercase())
            && w.chars().any(|c| c.is_lowercase());
        let lower_camel =
            w.chars().next().is_some_and(|c| c.is_lowercase()) && w.chars().any(|c| c.is_uppercase());
        let capitalized =
            w.chars().next().is_some_and(|c| c.is_uppercase()) && w.chars().any(|c| c.is_lowercase());
        // Inside code, plain lower-case words are mostly variables and values: not evidence.
        let code_shaped = called || snake || camel || lower_camel || (code_ctx && capitalized);
        if !(code_shaped || (code_ctx && inline_code(m.start()))) {
            continue;
        }
        let mut s = Signal::new(SignalKind::Identifier, w, m.range());
        s.in_code = code_ctx || called;
        out.push(s);
    }
    // Command-line flags of two or more words; one-word flags (`--release`) name too much.
    for m in regex!(r"(?:^|[\s`'\x22(\[=])--([a-z][a-z0-9]*(?:-[a-z0-9]+)+)\b").captures_iter(text) {
        let g = m.get(1).unwrap();
        let mut s = Signal::new(SignalKind::Flag, &g.as_str().replace('-', "_"), g.range());
        s.in_code = in_code(g.start());
        if !out.iter().any(|o: &Signal| o.kind == SignalKind::Flag && o.text == s.text) {
            out.push(s);
        }
    }
    // Error lines: `SomeError: message` / `error[E0308]: message` / `Error: message`.
    for m in regex!(r"(?m)^\s*((?:[\w.]+(?:Error|Exception|Warning)|error(?:\[\w+\])?|thread '[^']*' panicked at)):?\s*(.{4,200})$").captures_iter(text) {
        let g = m.get(2).unwrap();
        let mut s = Signal::new(SignalKind::ErrorMessage, g.as_str().trim(), g.range());
        s.func = Some(m[1].to_string());
        s.in_code = true;
        out.push(s);
    }
    // Quoted strings (message fragments worth grepping for).
    for m in regex!(r#""([^"\n]{6,120})"|'([^'\n]{6,120})'"#).captures_iter(text) {
        let g = m.get(1).or(m.get(2)).unwrap();
        if g.as_str().contains("://") {
            continue;
        }
        let mut s = Signal::new(SignalKind::Quoted, g.as_str(), g.range());
        s.in_code = in_code(g.start());
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn check(text: &str, expect: Expect) {
        let mut lines = Vec::new();
        for s in extract(text) {
            let mut l =
                format!("{:?} `{}` @{}..{}", s.kind, s.text.replace('\n', "⏎"), s.span.start, s.span.end);
            if let Some(p) = &s.path {
                l.push_str(&format!(" path={p}"));
            }
            if let Some(n) = s.line {
                l.push_str(&format!(" line={n}"));
            }
            if let Some(f) = &s.func {
                l.push_str(&format!(" func={f}"));
            }
            if s.in_code {
                l.push_str(" code");
            }
            lines.push(l);
        }
        expect.assert_eq(&(lines.join("\n") + "\n"));
    }

    #[test]
    fn python_traceback() {
        check(
            "Calling `Session.send` fails:\n\nTraceback (most recent call last):\n  File \"requests/sessions.py\", line 12, in send\n    r = adapter.send(request)\nValueError: Invalid header value 'abc'\n",
            expect![[r#"
                Frame `File "requests/sessions.py", line 12, in send` @68..113 path=requests/sessions.py line=12 func=send code
                Path `requests/sessions.py` @74..94 path=requests/sessions.py
                QualifiedName `Session.send` @9..21 code
                Identifier `Session` @9..16 code
                Identifier `send` @17..21 code
                Identifier `send` @130..134 code
                Identifier `ValueError` @144..154
                ErrorMessage `Invalid header value 'abc'` @156..182 func=ValueError code
                Quoted `requests/sessions.py` @74..94
            "#]],
        );
    }

    #[test]
    fn rust_panic_and_backtrace() {
        check(
            "thread 'main' panicked at tokio/src/sync/semaphore.rs:120:9:\npermits overflow\nstack backtrace:\n   3: tokio::sync::batch_semaphore::Semaphore::add_permits_locked\n             at ./tokio/src/sync/batch_semaphore.rs:400:13\n",
            expect![[r#"
                Panic `panicked at tokio/src/sync/semaphore.rs:120:9` @14..59 path=tokio/src/sync/semaphore.rs line=120 code
                Frame `tokio::sync::batch_semaphore::Semaphore::add_permits_locked` @95..216 path=./tokio/src/sync/batch_semaphore.rs line=400 func=add_permits_locked code
                Path `tokio/src/sync/semaphore.rs` @26..53 path=tokio/src/sync/semaphore.rs line=120
                Path `./tokio/src/sync/batch_semaphore.rs` @177..212 path=./tokio/src/sync/batch_semaphore.rs line=400
                QualifiedName `tokio::sync::batch_semaphore::Semaphore::add_permits_locked` @101..160
                Identifier `batch_semaphore` @114..129
                Identifier `add_permits_locked` @142..160
                Identifier `batch_semaphore` @194..209
                ErrorMessage `tokio/src/sync/semaphore.rs:120:9:` @26..60 func=thread 'main' panicked at code
            "#]],
        );
    }

    #[test]
    fn huge_and_empty_inputs() {
        assert!(extract("").is_empty());
        let big = "word ".repeat(2_000_000);
        let s = extract(&big);
        assert!(s.is_empty());
        let odd = "é".repeat(150_000);
        let _ = extract(&odd);
    }
}

#[cfg(test)]
mod flag_tests {
    use super::*;

    #[test]
    fn multi_word_flags_become_their_snake_case_names() {
        let text = "Running `atuin stats --ngram-size 2` fails; so does --ngram-size=3 and \
                    `fd --max-depth=1`, but --release and a --- rule are not flags.";
        let flags: Vec<(String, bool)> = extract(text)
            .into_iter()
            .filter(|s| s.kind == SignalKind::Flag)
            .map(|s| (s.text, s.in_code))
            .collect();
        assert_eq!(flags, [("ngram_size".to_string(), true), ("max_depth".to_string(), true)]);
    }
}

#[cfg(test)]
mod panic_path_tests {
    use super::*;

    #[test]
    fn windows_and_registry_panic_paths() {
        let text = "thread 'main' panicked at 'attempt to divide by zero', \
                    C:\\Users\\me\\.cargo\\registry\\src\\index.crates.io-6f17d22bba15001f\\bevy_time-0.10.1\\src\\timer.rs:228:21\n";
        let panics: Vec<(Option<String>, Option<u32>)> = extract(text)
            .into_iter()
            .filter(|s| s.kind == SignalKind::Panic)
            .map(|s| (s.path, s.line))
            .collect();
        assert_eq!(
            panics,
            [(
                Some(
                    "C:\\Users\\me\\.cargo\\registry\\src\\index.crates.io-6f17d22bba15001f\\bevy_time-0.10.1\\src\\timer.rs"
                        .to_string()
                ),
                Some(228)
            )]
        );
        assert_eq!(crate_dir_of("bevy_time-0.10.1"), "bevy_time");
        assert_eq!(crate_dir_of("serde-1.0.200-rc.1"), "serde");
        assert_eq!(crate_dir_of("index.crates.io-6f17d22bba15001f"), "index.crates.io-6f17d22bba15001f");
        assert_eq!(crate_dir_of("src"), "src");
    }
}
