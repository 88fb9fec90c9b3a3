//! Which paths of a change are source files a fix is located in, and which are tests, docs,
//! examples or anything else (those never enter the gold).

use locus_syntax::Lang;

/// What a path touched by a change is, for the gold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathClass {
    /// A non-test `.py` or `.rs` file: its functions can be gold.
    Source(Lang),
    /// Tests, benchmarks, examples, fixtures: code, but not where a fix is located.
    Test,
    /// Docs, CI, configuration, lock files, data, vendored code, other languages.
    Other,
}

/// Directory components that mark test code (Python and Rust alike).
const TEST_DIRS: &[&str] = &["test", "tests", "testing", "benches", "benchmarks", "examples", "example"];
/// Directory components that mark documentation.
const DOC_DIRS: &[&str] = &["doc", "docs"];
/// Directory components that mark vendored third-party code: not the repository's own code (its
/// changes are upgrades), and it may be a copy of a benchmark repository (pip vendors requests).
const VENDOR_DIRS: &[&str] = &[
    "_vendor",
    "vendor",
    "vendored",
    "_vendored",
    "third_party",
    "thirdparty",
    "3rdparty",
    "extern",
    "externals",
];

/// Classifies a repository-relative path (`/`-separated, as git prints it).
pub fn classify(path: &str) -> PathClass {
    let (dirs, file) = match path.rsplit_once('/') {
        Some((d, f)) => (d, f),
        None => ("", path),
    };
    // Only `.py` and `.rs`: stubs (`.pyi`) hold no bodies a fix could edit.
    let lang = match file.rsplit_once('.').map(|x| x.1) {
        Some("py") => Some(Lang::Python),
        Some("rs") => Some(Lang::Rust),
        _ => None,
    };
    let components = dirs.split('/').filter(|c| !c.is_empty());
    let mut doc = false;
    for c in components {
        let lower = c.to_ascii_lowercase();
        if TEST_DIRS.contains(&lower.as_str()) {
            return if lang.is_some() { PathClass::Test } else { PathClass::Other };
        }
        // Hidden directories (`.github`, `.cargo`) hold CI and tooling, never the product.
        if DOC_DIRS.contains(&lower.as_str()) || VENDOR_DIRS.contains(&lower.as_str()) || c.starts_with('.') {
            doc = true;
        }
    }
    let Some(lang) = lang else {
        return PathClass::Other;
    };
    if doc {
        return PathClass::Other;
    }
    // Both extensions are three bytes with the dot.
    let stem = &file[..file.len() - 3];
    let test_file = match lang {
        Lang::Python => {
            stem.starts_with("test_")
                || stem.ends_with("_test")
                || stem.ends_with("_tests")
                || matches!(stem, "conftest" | "tests" | "test")
        }
        Lang::Rust => matches!(stem, "tests" | "test"),
    };
    if test_file {
        PathClass::Test
    } else {
        PathClass::Source(lang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn classes_of_paths() {
        let paths = [
            "src/click/core.py",
            "click/testing.py",
            "src/pkg/testing/util.py",
            "tests/test_core.py",
            "pkg/test_utils.py",
            "pkg/utils_test.py",
            "conftest.py",
            "docs/conf.py",
            "src/lib.rs",
            "src/tests.rs",
            "tokio/tests/io.rs",
            "benches/parse.rs",
            "examples/hello.rs",
            ".github/scripts/x.py",
            "Cargo.lock",
            "README.md",
            "typing/stubs.pyi",
            "setup.py",
            "src/pip/_vendor/requests/api.py",
            "setuptools/extern/__init__.py",
            "crates/x/vendor/lib.rs",
        ];
        let out: String = paths.iter().map(|p| format!("{p} {:?}\n", classify(p))).collect();
        expect![[r#"
            src/click/core.py Source(Python)
            click/testing.py Source(Python)
            src/pkg/testing/util.py Test
            tests/test_core.py Test
            pkg/test_utils.py Test
            pkg/utils_test.py Test
            conftest.py Test
            docs/conf.py Other
            src/lib.rs Source(Rust)
            src/tests.rs Test
            tokio/tests/io.rs Test
            benches/parse.rs Test
            examples/hello.rs Test
            .github/scripts/x.py Other
            Cargo.lock Other
            README.md Other
            typing/stubs.pyi Other
            setup.py Source(Python)
            src/pip/_vendor/requests/api.py Other
            setuptools/extern/__init__.py Other
            crates/x/vendor/lib.rs Other
        "#]]
        .assert_eq(&out);
    }
}
