//! Issue-signal extraction on any text, then a full adaptive search of that text against a tiny
//! fixed index.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use locus_index::{FileUnit, Index, Skipped};
use locus_search::{locate, signals, Mode, Options};
use locus_syntax::Lang;

const FILES: &[(&str, &str)] = &[
    (
        "requests/sessions.py",
        "import os\nfrom .adapters import HTTPAdapter\n\nclass Session(object):\n    \"\"\"A session.\"\"\"\n    def send(self, request, **kw):\n        adapter = self.get_adapter(request.url)\n        return adapter.send(request)\n\n    def get_adapter(self, url):\n        raise ValueError(\"Invalid header value\")\n",
    ),
    ("requests/adapters.py", "class HTTPAdapter:\n    def send(self, request):\n        return build_response(request)\n\ndef build_response(r):\n    return r\n"),
    ("tests/test_sessions.py", "from requests.sessions import Session\n\ndef test_send():\n    Session().send(None)\n"),
    (
        "tokio/src/sync/semaphore.rs",
        "use crate::sync::batch_semaphore::Semaphore as Ll;\n\n/// Counting semaphore.\npub struct Semaphore { ll: Ll }\n\nimpl Semaphore {\n    pub fn add_permits(&self, n: usize) {\n        if n > MAX { panic!(\"permits overflow\") }\n        self.ll.release(n);\n    }\n}\n\ncfg_rt! {\n    pub fn spawn_blocking() { Semaphore::new(); }\n}\n",
    ),
    ("tokio/src/sync/batch_semaphore.rs", "pub(crate) struct Semaphore;\nimpl Semaphore {\n    pub(crate) fn release(&self, n: usize) {}\n}\ntrait Acquire { fn acquire(&self); }\nimpl Acquire for Semaphore { fn acquire(&self) {} }\n"),
];

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let units = FILES
        .iter()
        .map(|(p, t)| Arc::new(FileUnit::build(p.to_string(), Lang::of_path(p).unwrap(), Arc::from(*t))))
        .collect();
    Index::from_units(PathBuf::from("/fuzz"), units, Skipped::default())
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for s in signals::extract(&text) {
        let r = &s.span;
        assert!(r.start <= r.end && r.end <= text.len(), "{:?} span {r:?} outside the text", s.kind);
        assert!(
            text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
            "{:?} span {r:?} splits a char",
            s.kind
        );
    }
    let ix = &*INDEX;
    let opts = Options { mode: Mode::Adaptive, budget_ms: 10_000, ..Options::default() };
    let never = AtomicBool::new(false);
    let loc = locate(ix, None, None, &text, &opts, &never).expect("an uncancelled search returns a result");
    for r in loc.files.iter().chain(&loc.functions) {
        assert!(r.id.index() < ix.n_entities());
        assert!(r.score.is_finite() && (0.0..=1.0).contains(&r.score), "score {} of {}", r.score, r.name);
    }
});
