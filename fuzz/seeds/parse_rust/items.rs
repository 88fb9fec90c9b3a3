use crate::a::{b, c::d as e, self};
/// Doc.
#[derive(Debug)]
pub struct S<T> { x: T }
impl<T> Tr for S<T> { fn m(&self) { f(); self.g(); X::y(); } }
trait Tr { fn m(&self); }
mod inner { pub fn a() { assert!(b(1)); } }
macro_rules! mm { () => {} }
cfg_rt! { pub fn wrapped() { call() } impl S<u8> { fn h() {} } }
