//! `locus/locateIssue` params as the server receives them: any bytes as JSON, then the server's
//! decoding and checks. An accepted request must say what the client sent; a refused one must
//! be an InvalidParams error with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_lsp_server::jsonrpc::ErrorCode;
use tower_lsp_server::ls_types::NumberOrString;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    let p = match locus_lsp::parse_params(&v) {
        Ok(p) => p,
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidParams);
            assert!(!e.message.is_empty());
            return;
        }
    };
    assert!(!p.text.trim().is_empty());
    assert!(p.text.len() <= 10 * 1024 * 1024 + 1024);
    // The object the fields came from (`[x]` is `x`).
    let mut obj = &v;
    while let Value::Array(a) = obj {
        obj = &a[0];
    }
    // A granularity is the one asked for, by its protocol name.
    let asked = obj.get("granularity").filter(|g| !g.is_null()).cloned();
    assert_eq!(p.granularity.map(|g| serde_json::to_value(g).unwrap()), asked);
    if let Some(n) = obj.get("maxResults").and_then(Value::as_u64) {
        assert_eq!(p.max_results, Some(n as usize));
    }
    // Progress goes out under the client's own token, or the request is refused: a token that
    // is silently changed reports progress to some other request, or to none.
    match (obj.get("workDoneToken"), &p.token) {
        (None | Some(Value::Null), None) => {}
        (Some(Value::String(s)), Some(NumberOrString::String(t))) => assert_eq!(s, t),
        (Some(Value::Number(n)), Some(NumberOrString::Number(t))) => {
            assert_eq!(n.as_i64(), Some(*t as i64), "token {n} became {t}")
        }
        (sent, got) => panic!("workDoneToken {sent:?} became {got:?}"),
    }
});
