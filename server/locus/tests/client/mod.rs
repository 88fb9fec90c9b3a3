//! A small LSP client for end-to-end tests of the real `locus` binary: Content-Length framed
//! JSON-RPC over the child's stdin and stdout (pipes, no sockets), the server's own requests
//! answered, responses matched to requests by id, notifications kept.

#![allow(dead_code)] // Each test binary uses its own part of it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long any single request may take before the test calls it hung. Generous: CI machines
/// are slow and shared.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Notifications kept (the oldest are dropped: a long run sends many `$/progress`).
const MAX_NOTIFICATIONS: usize = 10_000;

#[derive(Default)]
struct Inbox {
    /// Responses by id, with the time they arrived.
    responses: HashMap<String, (Value, Instant)>,
    notifications: Vec<Value>,
    closed: bool,
}

pub struct Client {
    child: Mutex<Child>,
    stdin: Arc<Mutex<ChildStdin>>,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    stderr: Arc<Mutex<String>>,
    next_id: AtomicI64,
    pub root: PathBuf,
}

pub fn uri_of(path: &Path) -> String {
    let mut s = String::from("file://");
    for b in path.to_str().expect("utf-8 test path").bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => s.push(b as char),
            _ => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}

/// The path of a `file://` URI (percent-decoded).
pub fn path_of(uri: &str) -> PathBuf {
    let raw = uri.strip_prefix("file://").unwrap_or_else(|| panic!("not a file URI: {uri}"));
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(h, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(String::from_utf8(out).unwrap())
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

/// Reads one frame; `None` at the end of the stream.
fn read_frame(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0u8; len?];
    r.read_exact(&mut body).ok()?;
    Some(body)
}

/// The answer to a request the server sends the client.
fn answer(method: &str, params: &Value) -> Value {
    match method {
        "workspace/configuration" => {
            Value::Array(vec![Value::Null; params["items"].as_array().map_or(0, |a| a.len())])
        }
        "window/showDocument" => json!({ "success": true }),
        _ => Value::Null,
    }
}

impl Client {
    /// Starts `locus --stdio` on `root` and initializes it with these options.
    pub fn start(root: &Path, init_options: Value) -> Client {
        Self::start_with_env(root, init_options, &[])
    }

    pub fn start_with_env(root: &Path, init_options: Value, env: &[(&str, &str)]) -> Client {
        Self::start_ignoring(root, init_options, env, &[])
    }

    /// [`Client::start_with_env`], never answering the server's requests of these methods (a
    /// client that is slow to answer, or never does).
    pub fn start_ignoring(
        root: &Path,
        init_options: Value,
        env: &[(&str, &str)],
        ignored: &'static [&'static str],
    ) -> Client {
        let root = root.canonicalize().expect("workspace root");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_locus"));
        cmd.arg("--stdio")
            .current_dir(&root)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn locus");
        let stdin = Arc::new(Mutex::new(child.stdin.take().unwrap()));
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let inbox = inbox.clone();
            let stdin = stdin.clone();
            std::thread::spawn(move || {
                while let Some(body) = read_frame(&mut out) {
                    let msg: Value = match serde_json::from_slice(&body) {
                        Ok(v) => v,
                        Err(e) => panic!("the server sent a body that is not JSON: {e}"),
                    };
                    let method = msg.get("method").and_then(Value::as_str);
                    match (method, msg.get("id")) {
                        (Some(m), Some(_)) if ignored.contains(&m) => {}
                        (Some(m), Some(id)) => {
                            let reply =
                                json!({"jsonrpc": "2.0", "id": id, "result": answer(m, &msg["params"])});
                            let bytes = frame(reply.to_string().as_bytes());
                            let _ = stdin.lock().unwrap().write_all(&bytes);
                        }
                        (Some(_), None) => {
                            let mut ib = inbox.0.lock().unwrap();
                            if ib.notifications.len() >= MAX_NOTIFICATIONS {
                                ib.notifications.drain(..MAX_NOTIFICATIONS / 2);
                            }
                            ib.notifications.push(msg);
                        }
                        (None, _) => {
                            let key = id_key(msg.get("id").unwrap_or(&Value::Null));
                            let mut ib = inbox.0.lock().unwrap();
                            if key == "null" {
                                // Errors the server could not tie to a request (a body it could
                                // not read): kept with the notifications.
                                ib.notifications.push(msg);
                            } else {
                                ib.responses.insert(key, (msg, Instant::now()));
                            }
                            inbox.1.notify_all();
                        }
                    }
                }
                inbox.0.lock().unwrap().closed = true;
                inbox.1.notify_all();
            });
        }
        {
            let mut err = child.stderr.take().unwrap();
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if s.len() > 1 << 20 {
                        let cut = s.len() - (1 << 19);
                        let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap();
                        s.drain(..cut);
                    }
                }
            });
        }
        let c = Client { child: Mutex::new(child), stdin, inbox, stderr, next_id: AtomicI64::new(1), root };
        let uri = uri_of(&c.root);
        let init = c.call(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri,
                "workspaceFolders": [{ "uri": uri, "name": "ws" }],
                "capabilities": {
                    "window": { "workDoneProgress": true },
                    "workspace": { "didChangeWatchedFiles": { "dynamicRegistration": true } }
                },
                "initializationOptions": init_options,
            }),
        );
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        c.notify("initialized", json!({}));
        c
    }

    pub fn send_raw(&self, bytes: &[u8]) {
        self.stdin.lock().unwrap().write_all(bytes).expect("write to the server");
        self.stdin.lock().unwrap().flush().unwrap();
    }

    pub fn send(&self, msg: &Value) {
        self.send_raw(&frame(msg.to_string().as_bytes()));
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends a request and returns its id.
    pub fn request(&self, method: &str, params: Value) -> i64 {
        let id = self.next_id();
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// The response to `id` (the whole message), or `None` after `timeout`.
    pub fn wait(&self, id: &Value, timeout: Duration) -> Option<Value> {
        let key = id_key(id);
        let deadline = Instant::now() + timeout;
        let mut ib = self.inbox.0.lock().unwrap();
        loop {
            if let Some((m, _)) = ib.responses.remove(&key) {
                return Some(m);
            }
            let now = Instant::now();
            if now >= deadline || ib.closed {
                return None;
            }
            ib = self.inbox.1.wait_timeout(ib, deadline - now).unwrap().0;
        }
    }

    /// The response to `id` if it has arrived, with the time it arrived; does not wait.
    pub fn take(&self, id: i64) -> Option<(Value, Instant)> {
        self.inbox.0.lock().unwrap().responses.remove(&id_key(&json!(id)))
    }

    /// Sends a request and waits for its response; a missing one fails the test.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let id = self.request(method, params);
        self.expect_response(id)
    }

    pub fn expect_response(&self, id: i64) -> Value {
        match self.wait(&json!(id), REQUEST_TIMEOUT) {
            Some(m) => m,
            None => panic!(
                "no response to request {id} within {REQUEST_TIMEOUT:?} (server running: {})\nstderr tail:\n{}",
                self.running(),
                self.stderr_tail(4000)
            ),
        }
    }

    /// `locus/locateIssue`'s result; an error response fails the test.
    pub fn locate(&self, params: Value) -> Value {
        let r = self.call("locus/locateIssue", params);
        match r.get("result") {
            Some(v) => v.clone(),
            None => panic!("locateIssue failed: {r}\nstderr tail:\n{}", self.stderr_tail(4000)),
        }
    }

    pub fn status(&self, files: bool) -> Value {
        let r = self.call("locus/status", json!({ "files": files }));
        r.get("result").cloned().unwrap_or_else(|| panic!("locus/status failed: {r}"))
    }

    /// Waits until the index is built and no full build is pending.
    pub fn wait_indexed(&self, timeout: Duration) -> Value {
        let t = Instant::now();
        loop {
            let s = self.status(false);
            if s["indexReady"] == true && s["indexing"] == false {
                return s;
            }
            assert!(
                t.elapsed() < timeout,
                "index not ready after {timeout:?}: {s}\n{}",
                self.stderr_tail(3000)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Notifications received so far whose method is `method`.
    pub fn notifications(&self, method: &str) -> Vec<Value> {
        let ib = self.inbox.0.lock().unwrap();
        ib.notifications.iter().filter(|n| n["method"] == method).cloned().collect()
    }

    /// Error responses with a `null` id (bodies the server could not read).
    pub fn null_id_errors(&self) -> Vec<Value> {
        let ib = self.inbox.0.lock().unwrap();
        ib.notifications.iter().filter(|n| n.get("method").is_none()).cloned().collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    pub fn running(&self) -> bool {
        matches!(self.child.lock().unwrap().try_wait(), Ok(None))
    }

    pub fn stderr_tail(&self, n: usize) -> String {
        let s = self.stderr.lock().unwrap();
        let start = s.len().saturating_sub(n);
        let start = (start..=s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s[start..].to_string()
    }

    pub fn stderr_all(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Resident memory of the server process, KiB (Linux).
    pub fn rss_kb(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The server's open file descriptors that are sockets (Linux).
    pub fn socket_fds(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|t| t.to_string_lossy().into_owned())
            .filter(|t| t.starts_with("socket:"))
            .collect()
    }

    /// `shutdown` then `exit`; returns the exit code.
    pub fn shutdown(self) -> Option<i32> {
        let r = self.call("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "shutdown failed: {r}");
        self.notify("exit", Value::Null);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(st)) = self.child.lock().unwrap().try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server did not exit within 10 s of `exit`");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The names of a ranking's items (`qualifiedName`), best first.
pub fn names(result: &Value) -> Vec<String> {
    result["items"]
        .as_array()
        .map(|a| a.iter().map(|i| i["qualifiedName"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// Asserts every item of a ranking is a file inside `root`, symbolic links resolved.
pub fn assert_inside(root: &Path, result: &Value) {
    let root = root.canonicalize().unwrap();
    for item in result["items"].as_array().into_iter().flatten() {
        let uri = item["uri"].as_str().expect("uri");
        let p = path_of(uri);
        assert!(p.starts_with(&root), "{uri} is outside the workspace {}", root.display());
        if let Ok(real) = p.canonicalize() {
            assert!(real.starts_with(&root), "{uri} resolves to {} outside the workspace", real.display());
        }
    }
}
