//! Data-driven tests: a fixture in, the rendered entities, imports and calls out.

use expect_test::{expect, Expect};

use crate::{parse, Lang};

fn render(lang: Lang, src: &str) -> String {
    let p = parse(lang, src);
    let mut out = String::new();
    for e in &p.entities {
        let parent = e.parent.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{} {} L{}-{} parent={} sig=`{}`",
            e.kind.as_str(),
            e.qual,
            e.span.start.line + 1,
            e.span.end.line + 1,
            parent,
            e.signature
        ));
        if !e.doc.is_empty() {
            out.push_str(&format!(" doc=`{}`", e.doc.replace('\n', " / ")));
        }
        if !e.bases.is_empty() {
            out.push_str(&format!(" bases={:?}", e.bases));
        }
        if !e.decorators.is_empty() {
            out.push_str(&format!(" deco={:?}", e.decorators));
        }
        out.push('\n');
    }
    for i in &p.imports {
        out.push_str(&format!("import {} -> {:?}\n", i.path, i.names));
    }
    for c in &p.calls {
        let from = c.from.map(|f| p.entities[f as usize].qual.clone()).unwrap_or_else(|| "<module>".into());
        match &c.receiver {
            Some(r) => out.push_str(&format!("call {from} -> {r}.{}\n", c.callee)),
            None => out.push_str(&format!("call {from} -> {}\n", c.callee)),
        }
    }
    if p.syntax_errors > 0 {
        out.push_str(&format!("syntax_errors {}\n", p.syntax_errors));
    }
    out
}

fn check(lang: Lang, src: &str, expect: Expect) {
    expect.assert_eq(&render(lang, src));
}

#[test]
fn python_classes_methods_nesting_and_decorators() {
    check(
        Lang::Python,
        r#"
import os.path as osp
from .models import Request, Response as R
from .. import utils

class Session(Base, metaclass=Meta):
    """A session."""

    class Inner:
        def deep(self):
            pass

    @property
    def hooks(self):
        return self._hooks

    async def send(self, request, **kw):
        def helper():
            return request.prepare()
        return helper()

@decorator(arg)
def register_hook(event, hook):
    '''Register a hook.'''
    os.path.join(event)

if TYPE_CHECKING:
    def only_typing(): pass
"#,
        expect![[r#"
            class Session L6-20 parent=- sig=`class Session(Base, metaclass=Meta)` doc=`A session.` bases=["Base"]
            class Session.Inner L9-11 parent=0 sig=`class Inner`
            method Session.Inner.deep L10-11 parent=1 sig=`def deep(self)`
            method Session.hooks L13-15 parent=0 sig=`def hooks(self)` deco=["property"]
            method Session.send L17-20 parent=0 sig=`async def send(self, request, **kw)`
            function register_hook L22-25 parent=- sig=`def register_hook(event, hook)` doc=`Register a hook.` deco=["decorator(arg)"]
            function only_typing L28-28 parent=- sig=`def only_typing()`
            import os.path -> ["osp"]
            import .models -> ["Request", "Response"]
            import .. -> ["utils"]
            call Session.send -> request.prepare
            call Session.send -> helper
            call <module> -> decorator
            call register_hook -> os.path.join
        "#]],
    );
}

#[test]
fn python_broken_code_still_yields_entities() {
    check(
        Lang::Python,
        "def ok(a):\n    return a\n\ndef broken(:\n    pass\n\nclass C:\n    def m(self): pass\n",
        expect![[r#"
            function ok L1-2 parent=- sig=`def ok(a)`
            function broken L4-5 parent=- sig=`def broken(`
            class C L7-8 parent=- sig=`class C`
            method C.m L8-8 parent=2 sig=`def m(self)`
            syntax_errors 1
        "#]],
    );
}

#[test]
fn rust_items_impls_traits_modules_and_macros() {
    check(
        Lang::Rust,
        r#"
use crate::runtime::{Builder, Handle as H};
use std::io;

/// A semaphore.
/// Fair.
pub struct Semaphore { permits: usize }

pub enum Kind { A, B }

pub trait Schedule {
    fn schedule(&self, task: Task);
    fn yield_now(&self) { self.schedule(t) }
}

impl<T: Send> Semaphore<T> {
    #[inline]
    pub fn new(permits: usize) -> Self {
        let b = Builder::new();
        b.build().unwrap();
        helper(permits)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { Ok(()) }
}

mod unix {
    pub fn open() {}
}

macro_rules! cfg_rt {
    ($($item:item)*) => { $($item)* }
}

cfg_rt! {
    pub fn spawn<F>(f: F) { assert!(check(f)); }
}

impl Handle {
    cfg_net! {
        pub fn bind(&self) {}
    }
}
"#,
        expect![[r##"
            struct Semaphore L7-7 parent=- sig=`pub struct Semaphore` doc=`A semaphore. / Fair.`
            enum Kind L9-9 parent=- sig=`pub enum Kind`
            trait Schedule L11-14 parent=- sig=`pub trait Schedule`
            method Schedule::schedule L12-12 parent=2 sig=`fn schedule(&self, task: Task)`
            method Schedule::yield_now L13-13 parent=2 sig=`fn yield_now(&self)`
            impl impl Semaphore L16-23 parent=- sig=`impl<T: Send> Semaphore<T>`
            method Semaphore::new L18-22 parent=5 sig=`pub fn new(permits: usize) -> Self` deco=["#[inline]"]
            impl impl Debug for Semaphore L25-27 parent=- sig=`impl fmt::Debug for Semaphore` bases=["Debug"]
            method Semaphore::fmt L26-26 parent=7 sig=`fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result`
            module unix L29-31 parent=- sig=`mod unix`
            function open L30-30 parent=9 sig=`pub fn open()`
            macro cfg_rt L33-35 parent=- sig=`macro_rules! cfg_rt { ($($item:item)*) => { $($item)* } }`
            function spawn L38-38 parent=- sig=`pub fn spawn<F>(f: F)`
            impl impl Handle L41-45 parent=- sig=`impl Handle`
            method Handle::bind L43-43 parent=13 sig=`pub fn bind(&self)`
            import crate::runtime::Builder -> ["Builder"]
            import crate::runtime::Handle as H -> ["H"]
            import std::io -> ["io"]
            call Schedule::yield_now -> self.schedule
            call Semaphore::new -> helper
            call Semaphore::new -> b.build().unwrap
            call Semaphore::new -> b.build
            call Semaphore::new -> Builder.new
            call Semaphore::fmt -> Ok
            call spawn -> check
        "##]],
    );
}

#[test]
fn rust_deeply_nested_code_does_not_overflow() {
    let src = format!("fn f() {{ {} 1 {} }}", "(".repeat(5000), ")".repeat(5000));
    let p = parse(Lang::Rust, &src);
    assert_eq!(p.entities.len(), 1);
}

#[test]
fn python_deeply_nested_code_does_not_overflow() {
    let src = format!("def f():\n    x = {}1{}\n", "[".repeat(5000), "]".repeat(5000));
    let p = parse(Lang::Python, &src);
    assert_eq!(p.entities.len(), 1);
}

/// Found by review of the `parse_rust` fuzz target's path (then reproduced with it): an
/// unclosed item-level macro ending in a multi-byte character made the body's end fall inside
/// that character, and slicing panicked.
#[test]
fn rust_unclosed_macro_ending_in_a_wide_char_does_not_panic() {
    for src in ["m! { fn a() \u{e9}", "m!(fn \u{e9}", "m![fn x \u{1f600}", "cfg_rt! { fn caf\u{e9}"] {
        let p = parse(Lang::Rust, src);
        assert!(p
            .entities
            .iter()
            .all(|e| src.get(e.span.start_byte as usize..e.span.end_byte as usize).is_some()));
    }
    check(
        Lang::Rust,
        "cfg_rt! {\n    pub fn spawn() {}\n    fn caf\u{e9}",
        expect![[r#"
            function spawn L2-2 parent=- sig=`pub fn spawn()`
            syntax_errors 1
        "#]],
    );
}

#[test]
fn base_type_names() {
    use crate::base_type_name;
    assert_eq!(base_type_name("&'a mut foo::Bar<T>"), "Bar");
    assert_eq!(base_type_name("Arc<Inner>"), "Arc");
    assert_eq!(base_type_name("dyn Trait"), "Trait");
}

#[test]
fn parsing_again_after_edits_gives_what_a_fresh_parse_gives() {
    // Each edit is parsed with the tree of the text before it: typing inside a body, a new
    // definition at the top, broken code and its repair, a deletion across definitions,
    // multi-byte characters at the edit's edges, an edit that changes the language's view of
    // the rest of the file (an unclosed string).
    let python = [
        "class A(B):\n    def f(self, x):\n        return g(x)\n\n\ndef h():\n    pass\n",
        "class A(B):\n    def f(self, x):\n        y = 1\n        return g(x)\n\n\ndef h():\n    pass\n",
        "def new(): pass\nclass A(B):\n    def f(self, x):\n        y = 1\n        return g(x)\n\n\ndef h():\n    pass\n",
        "def new(): pass\nclass A(B):\n    def f(self, x:\n        y = 1\n        return g(x)\n\n\ndef h():\n    pass\n",
        "def new(): pass\nclass A(B):\n    def f(self, x):\n        y = 'é'\n        return g(x)\n\n\ndef h():\n    pass\n",
        "def new(): pass\nclass A(B):\n    def f(self, x):\n        y = 'ü'\n        return g(x)\n\n\ndef h():\n    pass\n",
        "def new(): pass\n\ndef h():\n    pass\n",
        "def new(): pass\n\"\"\"\ndef h():\n    pass\n",
        "def new(): pass\n\ndef h():\n    return k.m()\n",
    ];
    let rust = [
        "struct S;\nimpl S {\n    fn f(&self) -> u32 { g(1) }\n}\nfn h() {}\n",
        "struct S;\nimpl S {\n    fn f(&self) -> u32 { g(1) + x.y() }\n}\nfn h() {}\n",
        "fn first() {}\nstruct S;\nimpl S {\n    fn f(&self) -> u32 { g(1) + x.y() }\n}\nfn h() {}\n",
        "fn first() {}\nstruct S;\nimpl S {\n    fn f(&self) -> u32 { g(1) + x.y( }\n}\nfn h() {}\n",
        "fn first() {}\nmacro_rules! m { () => {} }\nimpl S {\n    fn f(&self) -> u32 { m!(); g(1) }\n}\n",
        "fn first() {}\n",
    ];
    for (lang, texts) in [(Lang::Python, &python[..]), (Lang::Rust, &rust[..])] {
        let (_, mut tree) = crate::parse_keeping(lang, texts[0], None);
        for w in texts.windows(2) {
            let before = tree.as_ref().map(|t| (w[0], t));
            let (again, next) = crate::parse_keeping(lang, w[1], before);
            assert_eq!(format!("{again:?}"), format!("{:?}", parse(lang, w[1])), "{lang:?} {:?}", w[1]);
            tree = next;
        }
    }
}
