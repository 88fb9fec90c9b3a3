//! The byte stream between the client and tower-lsp: every incoming frame is checked here before
//! tower-lsp sees it.
//!
//! Why: tower-lsp-server 0.23 stops reading at the first frame it cannot decode (its `FramedRead`
//! ends the stream after a decoder error), so one malformed message would end the session. Here a
//! frame that is not a JSON-RPC message is answered and dropped instead: `-32700` (Parse error)
//! for a body that is not JSON, `-32600` (Invalid Request) for JSON that is not a message, each
//! carrying the request's `id` when one can be read, so the client's request does not wait
//! forever. Invalid UTF-8 in a body is replaced (U+FFFD), as a lossy client would have done. A
//! header block without a usable `Content-Length` is answered and skipped; bytes that are not a
//! header are skipped up to the next `Content-Length`, so a wrong length never desynchronises
//! the stream for good.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tower_lsp_server::jsonrpc::{Request, Response};

/// Largest message body accepted. A 10 MB issue text, JSON-escaped, fits with room to spare; a
/// larger `Content-Length` is treated as a bad header rather than waited for.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// A header block longer than this is not a header.
const MAX_HEADER_BYTES: usize = 8 * 1024;
const HEADER_END: &[u8] = b"\r\n\r\n";
const LENGTH_NAME: &[u8] = b"content-length";
/// Bytes read from stdin at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What tower-lsp would decode: its (private) `Message`, mirrored so a frame that passes here
/// cannot fail there.
#[derive(Deserialize)]
#[serde(untagged)]
#[allow(dead_code)] // Only deserialised, to check.
enum Message {
    Response(Response),
    Request(Request),
}

/// One unit of the incoming stream.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A checked message, framed again for tower-lsp (only `Content-Length`).
    Forward(Vec<u8>),
    /// An error response for the client, framed.
    Reply(Vec<u8>),
}

/// Splits the incoming bytes into checked frames.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// The body length of the frame whose header was consumed.
    body: Option<usize>,
}

impl Splitter {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(n) = self.body {
                if self.buf.len() < n {
                    return None;
                }
                self.body = None;
                let body: Vec<u8> = self.buf.drain(..n).collect();
                return Some(check_body(body));
            }
            let Some(end) = find(&self.buf[..self.buf.len().min(MAX_HEADER_BYTES)], HEADER_END) else {
                if self.buf.len() < MAX_HEADER_BYTES {
                    return None;
                }
                // No header in sight: skip to the next `Content-Length` (or keep only a tail
                // that could be the start of one).
                let skip = find_length_name(&self.buf[1..])
                    .map(|p| p + 1)
                    .unwrap_or(self.buf.len() - LENGTH_NAME.len());
                tracing::warn!(bytes = skip, "skipped bytes that are not a message header");
                self.buf.drain(..skip);
                continue;
            };
            match content_length(&self.buf[..end]) {
                Ok(n) => {
                    self.buf.drain(..end + HEADER_END.len());
                    self.body = Some(n);
                }
                Err(msg) => match find_length_name(&self.buf[..end]) {
                    // Garbage (say, the tail of a message sent with too short a length) before
                    // a header: skip it quietly; the message it came from was answered.
                    Some(p) if p > 0 => {
                        tracing::warn!(bytes = p, "skipped bytes before a message header");
                        self.buf.drain(..p);
                    }
                    _ => {
                        tracing::warn!("bad message header: {msg}");
                        self.buf.drain(..end + HEADER_END.len());
                        return Some(Frame::Reply(error_frame(
                            Value::Null,
                            -32700,
                            &format!("Parse error: {msg}"),
                        )));
                    }
                },
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_length_name(hay: &[u8]) -> Option<usize> {
    hay.windows(LENGTH_NAME.len()).position(|w| w.eq_ignore_ascii_case(LENGTH_NAME))
}

/// The `Content-Length` of a header block (`Name: value` lines; other headers are ignored).
fn content_length(block: &[u8]) -> Result<usize, String> {
    let block = std::str::from_utf8(block).map_err(|_| "the header is not text".to_string())?;
    let mut length = None;
    for line in block.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("`{}` is not a header line", squash(line)));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("Content-Length `{}` is not a number", squash(value.trim())))?;
            if n > MAX_BODY_BYTES {
                return Err(format!("Content-Length {n} is over the {MAX_BODY_BYTES}-byte limit"));
            }
            length = Some(n);
        }
    }
    length.ok_or_else(|| "no Content-Length header".to_string())
}

fn squash(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Checks one body: forwarded when tower-lsp will decode it, answered otherwise.
fn check_body(body: Vec<u8>) -> Frame {
    let text = match String::from_utf8(body) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("a message is not valid UTF-8; invalid bytes replaced with U+FFFD");
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    if serde_json::from_str::<Message>(&text).is_ok() {
        let mut out = format!("Content-Length: {}\r\n\r\n", text.len()).into_bytes();
        out.extend_from_slice(text.as_bytes());
        return Frame::Forward(out);
    }
    let reply = match serde_json::from_str::<Value>(&text) {
        Err(e) => {
            tracing::warn!("a message is not JSON: {e}");
            error_frame(scan_id(&text), -32700, &format!("Parse error: the message is not JSON ({e})"))
        }
        Ok(v) => {
            tracing::warn!("a message is not a JSON-RPC request, notification or response");
            let id =
                v.get("id").filter(|id| id.is_number() || id.is_string()).cloned().unwrap_or(Value::Null);
            error_frame(
                id,
                -32600,
                "Invalid Request: expected {\"jsonrpc\": \"2.0\", \"method\": string, \"id\"?: number | string, \"params\"?: ...}",
            )
        }
    };
    Frame::Reply(reply)
}

/// The top-level `"id"` of a body that is not valid JSON, when it can be read (a number or a
/// string), else `null`.
fn scan_id(text: &str) -> Value {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 && &b[start..(i + 1).min(b.len())] == b"\"id\"" {
                    let rest = text[(i + 1).min(b.len())..].trim_start();
                    if let Some(rest) = rest.strip_prefix(':') {
                        return read_scalar(rest.trim_start());
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Value::Null
}

/// A JSON number or string at the start of `s` (what an `id` can be), else `null`.
fn read_scalar(s: &str) -> Value {
    let mut de = serde_json::Deserializer::from_str(s).into_iter::<Value>();
    match de.next() {
        Some(Ok(v)) if v.is_number() || v.is_string() => v,
        _ => {
            // The value is followed by broken JSON: take the leading number, if any.
            let n: String = s.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
            n.parse::<i64>().map(Value::from).unwrap_or(Value::Null)
        }
    }
}

/// A framed JSON-RPC error response.
pub fn error_frame(id: Value, code: i64, message: &str) -> Vec<u8> {
    let body =
        json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }).to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Reads the client's bytes, forwards checked frames to tower-lsp and sends replies for the
/// others to the writer. Ends (closing tower-lsp's input) when the client's input ends.
pub async fn pump_in(
    mut from_client: impl AsyncRead + Unpin,
    mut to_server: impl AsyncWrite + Unpin,
    replies: UnboundedSender<Vec<u8>>,
) {
    let mut split = Splitter::default();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match from_client.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        split.push(&chunk[..n]);
        while let Some(frame) = split.next_frame() {
            match frame {
                Frame::Forward(bytes) => {
                    if to_server.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Frame::Reply(bytes) => {
                    let _ = replies.send(bytes);
                }
            }
        }
    }
    let _ = to_server.shutdown().await;
}

/// The end of the first complete frame of tower-lsp's own (well-formed) output.
fn frame_end(buf: &[u8]) -> Option<usize> {
    let end = find(buf, HEADER_END)?;
    let n = content_length(&buf[..end]).ok()?;
    let total = end + HEADER_END.len() + n;
    (buf.len() >= total).then_some(total)
}

/// Writes tower-lsp's frames and this module's replies to the client, whole frames at a time so
/// the two never interleave. Ends when tower-lsp's output ends.
pub async fn pump_out(
    mut from_server: impl AsyncRead + Unpin,
    mut replies: UnboundedReceiver<Vec<u8>>,
    mut to_client: impl AsyncWrite + Unpin,
) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut replies_open = true;
    loop {
        tokio::select! {
            read = from_server.read(&mut chunk) => {
                let n = match read { Ok(0) | Err(_) => break, Ok(n) => n };
                buf.extend_from_slice(&chunk[..n]);
                let mut done = 0;
                while let Some(end) = frame_end(&buf[done..]) {
                    done += end;
                }
                if done > 0 {
                    if write_flush(&mut to_client, &buf[..done]).await.is_err() {
                        return;
                    }
                    buf.drain(..done);
                }
            }
            reply = replies.recv(), if replies_open => match reply {
                Some(bytes) => {
                    if write_flush(&mut to_client, &bytes).await.is_err() {
                        return;
                    }
                }
                None => replies_open = false,
            },
        }
    }
    let _ = write_flush(&mut to_client, &buf).await;
    while let Ok(bytes) = replies.try_recv() {
        let _ = write_flush(&mut to_client, &bytes).await;
    }
}

async fn write_flush(w: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

/// The body of a framed message (for tests and logs).
pub fn body_of(frame: &[u8]) -> Cow<'_, str> {
    let start = find(frame, HEADER_END).map(|p| p + HEADER_END.len()).unwrap_or(0);
    String::from_utf8_lossy(&frame[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        v.extend_from_slice(body);
        v
    }

    /// Feeds `input` in one go and describes every frame: `fwd <body>` or `err <body>`.
    fn check(input: &[u8], expect: &[&str]) {
        let mut s = Splitter::default();
        s.push(input);
        let mut got = Vec::new();
        while let Some(f) = s.next_frame() {
            got.push(match f {
                Frame::Forward(b) => format!("fwd {}", body_of(&b)),
                Frame::Reply(b) => format!("err {}", body_of(&b)),
            });
        }
        let got: Vec<&str> = got.iter().map(|s| s.as_str()).collect();
        assert_eq!(got, expect);
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"locus/status"}"#;

    #[test]
    fn good_messages_pass_and_are_reframed() {
        let mut input = format!(
            "Content-Type: application/vscode-jsonrpc; charset=latin1\r\ncontent-length: {}\r\n\r\n",
            PING.len()
        )
        .into_bytes();
        input.extend_from_slice(PING.as_bytes());
        input.extend(framed(br#"{"jsonrpc":"2.0","id":1,"result":null}"#));
        check(&input, &[&format!("fwd {PING}"), r#"fwd {"jsonrpc":"2.0","id":1,"result":null}"#]);
    }

    #[test]
    fn a_body_that_is_not_json_is_answered_with_its_id_and_the_stream_goes_on() {
        let mut input = framed(br#"{"jsonrpc":"2.0","id":42,"method":"x","params":{"text":"\ud800"}}"#);
        input.extend(framed(b"{oops"));
        input.extend(framed(PING.as_bytes()));
        check(
            &input,
            &[
                r#"err {"error":{"code":-32700,"message":"Parse error: the message is not JSON (unexpected end of hex escape at line 1 column 63)"},"id":42,"jsonrpc":"2.0"}"#,
                r#"err {"error":{"code":-32700,"message":"Parse error: the message is not JSON (key must be a string at line 1 column 2)"},"id":null,"jsonrpc":"2.0"}"#,
                &format!("fwd {PING}"),
            ],
        );
    }

    #[test]
    fn json_that_is_not_a_message_is_an_invalid_request() {
        let mut input = framed(br#"{"jsonrpc":"1.0","id":"a","method":"x"}"#);
        input.extend(framed(b"[1,2]"));
        check(
            &input,
            &[
                r#"err {"error":{"code":-32600,"message":"Invalid Request: expected {\"jsonrpc\": \"2.0\", \"method\": string, \"id\"?: number | string, \"params\"?: ...}"},"id":"a","jsonrpc":"2.0"}"#,
                r#"err {"error":{"code":-32600,"message":"Invalid Request: expected {\"jsonrpc\": \"2.0\", \"method\": string, \"id\"?: number | string, \"params\"?: ...}"},"id":null,"jsonrpc":"2.0"}"#,
            ],
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let input =
            framed(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"m\",\"params\":{\"text\":\"a\xff\xfeb\"}}");
        check(&input, &["fwd {\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"m\",\"params\":{\"text\":\"a\u{FFFD}\u{FFFD}b\"}}"]);
    }

    #[test]
    fn wrong_lengths_and_bad_headers_resynchronise() {
        // Too short: the cut body is answered, its tail skipped, the next message passes.
        let body = PING.as_bytes();
        let mut input = format!("Content-Length: {}\r\n\r\n", body.len() - 10).into_bytes();
        input.extend_from_slice(body);
        input.extend(b"Content-Length: abc\r\n\r\n");
        input.extend(b"Content-Length: 99999999999999\r\n\r\n");
        input.extend(framed(body));
        check(
            &input,
            &[
                r#"err {"error":{"code":-32700,"message":"Parse error: the message is not JSON (EOF while parsing a string at line 1 column 38)"},"id":7,"jsonrpc":"2.0"}"#,
                r#"err {"error":{"code":-32700,"message":"Parse error: Content-Length `abc` is not a number"},"id":null,"jsonrpc":"2.0"}"#,
                r#"err {"error":{"code":-32700,"message":"Parse error: Content-Length 99999999999999 is over the 67108864-byte limit"},"id":null,"jsonrpc":"2.0"}"#,
                &format!("fwd {PING}"),
            ],
        );
    }

    #[test]
    fn frames_split_across_reads_are_joined() {
        let input = framed(PING.as_bytes());
        let mut s = Splitter::default();
        for b in &input[..input.len() - 1] {
            s.push(&[*b]);
            assert_eq!(s.next_frame(), None);
        }
        s.push(&input[input.len() - 1..]);
        assert_eq!(s.next_frame(), Some(Frame::Forward(input)));
    }

    #[test]
    fn garbage_without_a_header_is_skipped() {
        let mut input = vec![b'x'; MAX_HEADER_BYTES + 10];
        input.extend(framed(PING.as_bytes()));
        check(&input, &[&format!("fwd {PING}")]);
    }
}
