//! The Locus language server: `locus/locateIssue`, the `locus.locateIssue` command, a code
//! action, references in `*.issue.md` documents, live indexing of the editor's buffers.
//!
//! Architecture invariant: only this crate knows LSP, JSON-RPC and UTF-16. The engine's plain
//! results are converted here.

mod convert;
pub mod framing;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use locus_engine::{Granularity, LocatedItem, Stats, Workspace};
use locus_index::FileId;
use locus_search::{Mode, Options};
use serde::Serialize;
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::notification::Progress;
use tower_lsp_server::ls_types::request::WorkDoneProgressCreate;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

pub use state::{apply_change, Settings, State};

pub const LOCATE_METHOD: &str = "locus/locateIssue";
pub const STATUS_METHOD: &str = "locus/status";
pub const LOCATE_COMMAND: &str = "locus.locateIssue";
/// Pause after a search's progress `end` before its response is released (see `run_locate`).
const PROGRESS_END_GRACE_MS: u64 = 5;
/// Largest issue text accepted over the protocol.
const MAX_TEXT_BYTES: usize = 10 * 1024 * 1024 + 1024;

pub struct Backend {
    client: Client,
    state: Arc<State>,
}

/// Bytes buffered between the framing pumps and tower-lsp.
const PIPE_BYTES: usize = 1024 * 1024;

/// Serves LSP on stdin/stdout until the client exits. Frames pass through `framing`, which
/// answers malformed ones itself (tower-lsp would stop reading at the first).
pub async fn serve_stdio() {
    let (service, socket) = LspService::build(|client| Backend { client, state: Arc::new(State::new()) })
        .custom_method(LOCATE_METHOD, Backend::locate_request)
        .custom_method(STATUS_METHOD, Backend::status_request)
        .custom_method("window/workDoneProgress/cancel", Backend::cancel_progress)
        .finish();
    let (server_in, feed) = tokio::io::duplex(PIPE_BYTES);
    let (drain, server_out) = tokio::io::duplex(PIPE_BYTES);
    let (replies, replies_rx) = tokio::sync::mpsc::unbounded_channel();
    let input = tokio::spawn(framing::pump_in(tokio::io::stdin(), feed, replies));
    let output = tokio::spawn(framing::pump_out(drain, replies_rx, tokio::io::stdout()));
    Server::new(server_in, server_out, socket).serve(service).await;
    input.abort();
    // tower-lsp's output ended with `serve`: write out what it left.
    let _ = output.await;
}

/// Sets a search's cancellation flag when the request's future is dropped (`$/cancelRequest`),
/// and forgets its progress token (a cancelled request never reaches its own clean-up).
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    state: Arc<State>,
    token: Option<String>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Some(t) = &self.token {
            self.state.searches.remove_if(t, |_, f| Arc::ptr_eq(f, &self.flag));
        }
    }
}

/// Parsed `locus/locateIssue` params.
pub struct LocateParams {
    pub text: String,
    pub max_results: Option<usize>,
    pub granularity: Option<Granularity>,
    pub token: Option<NumberOrString>,
}

/// The `locus/locateIssue` result (docs/protocol.md).
#[derive(Serialize)]
struct LocateResult {
    items: Vec<LocatedItem<Location>>,
    stats: Stats,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error { code: ErrorCode::InvalidParams, message: msg.into().into(), data: None }
}

/// Decodes and checks `locus/locateIssue` params (also the `locus.locateIssue` argument): an
/// error names what is wrong and what is expected.
pub fn parse_params(v: &Value) -> Result<LocateParams> {
    let (obj, text) = match v {
        Value::String(s) => (None, s.clone()),
        Value::Array(a) if a.len() == 1 => return parse_params(&a[0]),
        Value::Object(o) => match o.get("text") {
            Some(Value::String(s)) => (Some(o), s.clone()),
            Some(_) => return Err(invalid("`text` must be a string: the issue to locate")),
            None => return Err(invalid("missing `text`: the issue to locate")),
        },
        _ => return Err(invalid("expected { text, maxResults?, granularity?, workDoneToken? } or [text]")),
    };
    if text.trim().is_empty() {
        return Err(invalid("the issue text is empty: select or paste the issue first"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(invalid("the issue text is over 10 MB: paste the relevant part"));
    }
    let max_results = match obj.and_then(|o| o.get("maxResults")) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            Some(n.as_u64().ok_or_else(|| invalid("`maxResults` must be a positive integer"))? as usize)
        }
        Some(_) => return Err(invalid("`maxResults` must be a number")),
    };
    let granularity = match obj.and_then(|o| o.get("granularity")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(s.parse().map_err(|_| invalid("`granularity` must be \"file\" or \"function\""))?)
        }
        Some(_) => return Err(invalid("`granularity` must be \"file\" or \"function\"")),
    };
    let token = match obj.and_then(|o| o.get("workDoneToken")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(NumberOrString::String(s.clone())),
        // LSP tokens are 32-bit integers: a wider one cut to fit would name another request.
        Some(Value::Number(n)) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Some(NumberOrString::Number(i)),
            None => return Err(invalid("`workDoneToken` must be a string or a 32-bit integer")),
        },
        Some(_) => return Err(invalid("`workDoneToken` must be a string or a 32-bit integer")),
    };
    Ok(LocateParams { text, max_results, granularity, token })
}

fn token_key(t: &NumberOrString) -> String {
    match t {
        NumberOrString::String(s) => s.clone(),
        NumberOrString::Number(n) => n.to_string(),
    }
}

impl Backend {
    async fn progress(&self, token: &NumberOrString, p: WorkDoneProgress) {
        self.client
            .send_notification::<Progress>(ProgressParams {
                token: token.clone(),
                value: ProgressParamsValue::WorkDone(p),
            })
            .await;
    }

    /// Runs a search and converts it: `{items, stats}`.
    async fn run_locate(&self, p: LocateParams) -> Result<(Value, Vec<(Location, String)>)> {
        self.state.flush().await;
        // Readiness as of the snapshot this search reads, not as of its answer.
        let index_ready = self.state.ready.load(Ordering::SeqCst);
        let files_pending = self.state.files_pending.load(Ordering::SeqCst);
        let ix = self.state.snapshot();
        // Vectors lent by the snapshot an edit patched (same ids), or moved from the one before
        // an edit that moved ids, are refreshed after this search, not beside it: the answer to
        // a re-run after typing does not share the cores with the re-embedding it does not
        // need. Missing vectors start at once.
        let stale = !self.state.dense_is_current(&ix) && !self.state.encoder_failed();
        let mut vectors = self.state.dense_for(&ix);
        if stale && vectors.is_none() {
            // A few ms; a definition just typed has no vector until the refresh.
            let (st, ix2) = (self.state.clone(), ix.clone());
            vectors = tokio::task::spawn_blocking(move || st.moved_vectors_for(&ix2)).await.ok().flatten();
        }
        let lent = stale && vectors.is_some();
        if stale && !lent {
            self.refresh_vectors();
        }
        let settings = self.state.settings();
        let max = p.max_results.unwrap_or(settings.max_results).clamp(1, 200);
        let granularity = p.granularity.unwrap_or(settings.granularity);
        let flag = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop {
            flag: flag.clone(),
            state: self.state.clone(),
            token: p.token.as_ref().map(token_key),
        };
        if let Some(t) = &p.token {
            self.state.searches.insert(token_key(t), flag.clone());
            self.progress(
                t,
                WorkDoneProgress::Begin(WorkDoneProgressBegin {
                    title: "Locating issue".into(),
                    cancellable: Some(true),
                    message: Some(format!("searching {} files", ix.files.len())),
                    percentage: None,
                }),
            )
            .await;
        }
        let mut ws = Workspace {
            index: ix.clone(),
            vectors,
            scorer: self.state.scorer().ok().map(|s| s as Arc<dyn locus_search::Scorer>),
        };
        let opts = Options {
            mode: Mode::Adaptive,
            max_results: max,
            budget_ms: settings.budget_ms,
            ..Options::default()
        };
        let text = p.text;
        let f2 = flag.clone();
        let ws2 = ws.clone();
        let state = self.state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            // No vectors for this snapshot yet: the search's candidates are embedded on demand.
            let mut ws2 = ws2;
            if ws2.vectors.is_none() && !state.encoder_failed() {
                ws2.vectors = state.on_demand_for(&ws2.index);
            }
            ws2.locate(&text, &opts, &f2).map(|loc| (loc, ws2.vectors))
        })
        .await;
        self.state.free_retired();
        if lent {
            self.refresh_vectors();
        }
        if let Some(t) = &p.token {
            self.progress(t, WorkDoneProgress::End(WorkDoneProgressEnd { message: Some("done".into()) }))
                .await;
            // Notifications and responses reach stdout by different queues; a token is valid
            // only until the response, so let the `end` notification go out first.
            tokio::time::sleep(std::time::Duration::from_millis(PROGRESS_END_GRACE_MS)).await;
        }
        let loc = match outcome {
            Ok(Ok((loc, vectors))) => {
                ws.vectors = vectors;
                loc
            }
            Ok(Err(_)) => return Err(Error::request_cancelled()),
            Err(e) => {
                return Err(Error {
                    code: ErrorCode::InternalError,
                    message: format!("search failed: {e}").into(),
                    data: None,
                })
            }
        };
        let list = match granularity {
            Granularity::File => &loc.files,
            Granularity::Function => &loc.functions,
        };
        let mut items = Vec::new();
        let mut locs = Vec::new();
        for r in list.iter().take(max) {
            let Some(l) = convert::location(&ix, r) else { continue };
            let item = LocatedItem::new(r, l.clone());
            locs.push((l, format!("[{:.2}] {} — {}", r.score, item.name, r.reason)));
            items.push(item);
        }
        let mut stats = Stats::new(&ws, &loc, granularity, index_ready);
        stats.files_pending = (files_pending > 0).then_some(files_pending);
        let result = serde_json::to_value(LocateResult { items, stats }).map_err(|e| Error {
            code: ErrorCode::InternalError,
            message: format!("the result could not be written: {e}").into(),
            data: None,
        })?;
        Ok((result, locs))
    }

    async fn locate_request(&self, params: Value) -> Result<Value> {
        let p = parse_params(&params)?;
        Ok(self.run_locate(p).await?.0)
    }

    async fn cancel_progress(&self, params: WorkDoneProgressCancelParams) {
        if let Some(flag) = self.state.searches.get(&token_key(&params.token)) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Shows a result in the editor: hint diagnostics at each hit (the previous batch cleared)
    /// and the top hit opened.
    async fn present(&self, locs: &[(Location, String)]) {
        let mut by_uri: std::collections::BTreeMap<String, (Uri, Vec<Diagnostic>)> = Default::default();
        for (l, msg) in locs {
            let e = by_uri.entry(l.uri.to_string()).or_insert_with(|| (l.uri.clone(), Vec::new()));
            let start = l.range.start;
            e.1.push(Diagnostic {
                range: Range { start, end: Position { line: start.line, character: start.character + 1 } },
                severity: Some(DiagnosticSeverity::HINT),
                source: Some("locus".into()),
                message: msg.clone(),
                ..Diagnostic::default()
            });
        }
        let previous = std::mem::take(&mut *self.state.diagnosed.lock().unwrap_or_else(|e| e.into_inner()));
        let now: Vec<Uri> = by_uri.values().map(|v| v.0.clone()).collect();
        *self.state.diagnosed.lock().unwrap_or_else(|e| e.into_inner()) = now;
        for u in previous {
            if !by_uri.contains_key(&u.to_string()) {
                self.client.publish_diagnostics(u, Vec::new(), None).await;
            }
        }
        for (_, (uri, diags)) in by_uri {
            self.client.publish_diagnostics(uri, diags, None).await;
        }
        if let Some((top, _)) = locs.first() {
            let _ = self
                .client
                .show_document(ShowDocumentParams {
                    uri: top.uri.clone(),
                    external: Some(false),
                    take_focus: Some(true),
                    selection: Some(Range { start: top.range.start, end: top.range.start }),
                })
                .await;
        }
    }

    fn doc_text(&self, uri: &Uri) -> Option<String> {
        self.state.docs.get(&uri.to_string()).map(|d| d.text.clone())
    }

    /// The workspace-relative path of a source file's URI (whether the index takes it is
    /// `State::admitted`).
    fn rel(&self, uri: &Uri) -> Option<String> {
        let root = self.state.root()?;
        let rel = convert::rel_path(&root, uri)?;
        locus_syntax::Lang::of_path(&rel)?;
        Some(rel)
    }

    /// `locus/status`: the snapshot as of every message sent before it (pending edits folded
    /// in). With `{ "files": true }`, each file's content hash and entities.
    async fn status_request(&self, params: Value) -> Result<Value> {
        let files = match params.get("files") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("`files` must be true or false")),
        };
        if !params.is_object() {
            return Err(invalid("expected { files?: boolean }"));
        }
        self.state.flush().await;
        self.state.free_retired();
        let ix = self.state.snapshot();
        let notices = self.state.notices.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut v = json!({
            "root": self.state.root(),
            "indexReady": self.state.ready.load(Ordering::SeqCst),
            "indexing": self.state.indexing.load(Ordering::SeqCst) > 0,
            "filesPending": self.state.files_pending.load(Ordering::SeqCst),
            "embedding": self.state.embedding.load(Ordering::SeqCst),
            "files": ix.files.len(),
            "entities": ix.n_entities(),
            "skipped": ix.skipped.0,
            "openDocuments": self.state.docs.len(),
            "searches": self.state.searches.len(),
            "notices": notices,
        });
        if files {
            let list: Vec<Value> = (0..ix.files.len())
                .map(|fi| {
                    let f = &ix.files[fi];
                    let names: Vec<String> =
                        ix.entities_of_file(FileId(fi as u32)).skip(1).map(|id| ix.full_name(id)).collect();
                    json!({
                        "path": f.unit.path,
                        "hash": blake3::Hash::from(f.unit.hash).to_hex().as_str(),
                        "entities": names,
                    })
                })
                .collect();
            v["fileList"] = Value::Array(list);
        }
        Ok(v)
    }

    /// Starts (or re-arms) the background vector refresh. Searches never wait for it.
    fn refresh_vectors(&self) {
        if self.state.embedding.swap(true, Ordering::SeqCst) {
            self.state.embed_again.store(true, Ordering::SeqCst);
            return;
        }
        let state = self.state.clone();
        let client = self.client.clone();
        let progress = state.progress_supported.load(Ordering::SeqCst);
        tokio::spawn(async move {
            let token = NumberOrString::String("locus/vectors".into());
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
            let st = state.clone();
            let job = tokio::task::spawn_blocking(move || {
                st.refresh_dense_blocking(|done, total| {
                    let _ = tx.send((done, total));
                })
            });
            let progress = progress && create_progress(&client, &token).await;
            if progress {
                client
                    .send_notification::<Progress>(ProgressParams {
                        token: token.clone(),
                        value: ProgressParamsValue::WorkDone(WorkDoneProgress::Begin(
                            WorkDoneProgressBegin {
                                title: "Locus: embedding".into(),
                                cancellable: Some(false),
                                message: None,
                                percentage: Some(0),
                            },
                        )),
                    })
                    .await;
                while let Some((done, total)) = rx.recv().await {
                    client
                        .send_notification::<Progress>(ProgressParams {
                            token: token.clone(),
                            value: ProgressParamsValue::WorkDone(WorkDoneProgress::Report(
                                WorkDoneProgressReport {
                                    cancellable: Some(false),
                                    message: Some(format!("{done}/{total} entities")),
                                    percentage: Some((done * 100 / total.max(1)) as u32),
                                },
                            )),
                        })
                        .await;
                }
            }
            let msg = job.await.unwrap_or_else(|e| format!("embedding failed: {e}"));
            state.embedding.store(false, Ordering::SeqCst);
            if progress {
                client
                    .send_notification::<Progress>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(WorkDoneProgressEnd {
                            message: Some(msg.clone()),
                        })),
                    })
                    .await;
            }
            if msg.starts_with("semantic search off") {
                client.log_message(MessageType::WARNING, format!("Locus: {msg}")).await;
            }
        });
    }

    /// `locus doctor`'s report in the client's log, once at start: which runtime, encoder and
    /// models this server runs (the very ones it loaded for its searches; nothing is loaded
    /// twice), and the fix for anything missing (a warning then).
    fn log_doctor(&self) {
        let client = self.client.clone();
        let state = self.state.clone();
        tokio::spawn(async move {
            let report = tokio::task::spawn_blocking(move || {
                let (encoder, scorer) = (state.encoder(), state.scorer());
                locus_engine::Doctor::of(
                    locus_engine::doctor::runtime(&state.settings().model_paths()),
                    encoder.as_ref().map(|e| &e.embedder),
                    scorer.as_ref().map(|s| s.as_ref()),
                )
            });
            let Ok(report) = report.await else {
                return;
            };
            let level = if report.ok() { MessageType::INFO } else { MessageType::WARNING };
            client.log_message(level, format!("Locus doctor:\n{}", report.lines().join("\n"))).await;
        });
    }

    async fn index_in_background(&self) {
        // Counted before the first `.await`: a status request sent after the message that
        // asked for this build sees `indexing: true`.
        self.state.indexing.fetch_add(1, Ordering::SeqCst);
        let token = NumberOrString::String("locus/indexing".into());
        // The build runs beside the progress's creation: it does not wait for the client.
        let begun = AtomicBool::new(false);
        let announce = async {
            if self.state.progress_supported.load(Ordering::SeqCst)
                && create_progress(&self.client, &token).await
            {
                self.progress(
                    &token,
                    WorkDoneProgress::Begin(WorkDoneProgressBegin {
                        title: "Locus: indexing".into(),
                        cancellable: Some(false),
                        message: Some("parsing the workspace".into()),
                        percentage: None,
                    }),
                )
                .await;
                begun.store(true, Ordering::SeqCst);
            }
        };
        let build = async {
            let result = match self.state.build_full().await {
                Ok(Some(stage)) => {
                    // Searches run on the first stage's index meanwhile (`stats.filesPending`).
                    if begun.load(Ordering::SeqCst) {
                        let ix = self.state.snapshot();
                        let message = format!(
                            "{} files searchable; parsing {} test files ({:.1} MB)",
                            ix.files.len(),
                            stage.files(),
                            stage.bytes() as f64 / 1e6
                        );
                        self.progress(
                            &token,
                            WorkDoneProgress::Report(WorkDoneProgressReport {
                                cancellable: Some(false),
                                message: Some(message),
                                percentage: None,
                            }),
                        )
                        .await;
                    }
                    self.state.second_stage(stage).await
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            self.state.indexing.fetch_sub(1, Ordering::SeqCst);
            // Before the progress ends, so a client that sees the end (or asks `locus/status`
            // after it) already sees `embedding`.
            if result.is_ok() {
                self.refresh_vectors();
            }
            result
        };
        let ((), result) = tokio::join!(announce, build);
        let progress = begun.load(Ordering::SeqCst);
        let msg = match &result {
            Ok(()) => {
                let ix = self.state.snapshot();
                format!(
                    "{} files, {} entities in {:.1} s",
                    ix.files.len(),
                    ix.n_entities(),
                    ix.build_ms / 1000.0
                )
            }
            Err(e) => e.clone(),
        };
        if progress {
            self.progress(&token, WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(msg.clone()) }))
                .await;
        }
        if let Err(e) = result {
            self.client.show_message(MessageType::ERROR, format!("Locus: {e}")).await;
        }
    }
}

/// How long the server waits for the client to accept a progress token before it goes on
/// without reporting progress.
const PROGRESS_CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Asks the client to create the progress `token`; false when it refused or did not answer within
/// [`PROGRESS_CREATE_WAIT`]. The work the progress is about never waits for this: a client that
/// answered late (or never) held the workspace's indexing back until it did.
async fn create_progress(client: &Client, token: &NumberOrString) -> bool {
    let create =
        client.send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams { token: token.clone() });
    matches!(tokio::time::timeout(PROGRESS_CREATE_WAIT, create).await, Ok(Ok(_)))
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .and_then(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .or_else(|| params.root_uri.as_ref().and_then(|u| u.to_file_path().map(|p| p.into_owned())));
        let root = root.and_then(|r| r.canonicalize().ok());
        *self.state.root.write().unwrap_or_else(|e| e.into_inner()) = root;
        if let Some(opts) = &params.initialization_options {
            let s = self.state.settings().merged(opts);
            *self.state.settings.write().unwrap_or_else(|e| e.into_inner()) = s;
        }
        let wdp = params.capabilities.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false);
        self.state.progress_supported.store(wdp, Ordering::SeqCst);
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    // No `save`: the buffer's text is already tracked change by change.
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    ..TextDocumentSyncOptions::default()
                })),
                references_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![LOCATE_COMMAND.into()],
                    ..ExecuteCommandOptions::default()
                }),
                experimental: Some(json!({ "locus": { "locateIssue": true } })),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "locus".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        // Watch source files when the client can register watchers dynamically.
        let watchers = ["**/*.py", "**/*.rs"]
            .iter()
            .map(|g| FileSystemWatcher { glob_pattern: GlobPattern::String(g.to_string()), kind: None })
            .collect();
        let reg = Registration {
            id: "locus-watch".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: serde_json::to_value(DidChangeWatchedFilesRegistrationOptions { watchers })
                .ok(),
        };
        // Indexing must not wait for the client's answer to the registration.
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.register_capability(vec![reg]).await;
        });
        self.log_doctor();
        self.index_in_background().await;
    }

    async fn shutdown(&self) -> Result<()> {
        for s in self.state.searches.iter() {
            s.value().store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        let rel = self.rel(&d.uri);
        let admitted = rel.clone().filter(|r| self.state.admitted(&[r.as_str()])[0]);
        self.state.docs.insert(
            d.uri.to_string(),
            state::Doc { version: d.version, text: d.text.clone(), rel: admitted.clone() },
        );
        match (admitted, rel) {
            (Some(rel), _) => {
                // The file's tree, off the request path: its first edit is parsed incrementally.
                let ix = self.state.snapshot();
                let path = rel.clone();
                tokio::task::spawn_blocking(move || ix.keep_tree(&path));
                self.state.queue(rel, Some(d.text))
            }
            // Not the index's (a link on the way, ignored, excluded): make sure it is not in it.
            (None, Some(rel)) => self.state.queue(rel, None),
            (None, None) => {}
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let key = params.text_document.uri.to_string();
        let (text, rel) = {
            let Some(mut doc) = self.state.docs.get_mut(&key) else {
                self.state.notice("didChange for a document that is not open (ignored)");
                return;
            };
            if params.text_document.version <= doc.version {
                // Applied all the same: the changes are relative to the text as it is now.
                self.state.notice("didChange with a version not above the document's (applied)");
            }
            for change in params.content_changes {
                apply_change(&mut doc.text, change);
            }
            doc.version = params.text_document.version;
            (doc.text.clone(), doc.rel.clone())
        };
        if let Some(rel) = rel {
            self.state.queue(rel, Some(text));
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        self.state.docs.remove(&params.text_document.uri.to_string());
        if let Some(rel) = self.rel(&params.text_document.uri) {
            // Back to what is on disk (or gone, if the buffer was never saved).
            let disk =
                if self.state.admitted(&[rel.as_str()])[0] { self.state.read_disk(&rel) } else { None };
            self.state.queue(rel, disk);
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let mut events = Vec::new();
        for ev in params.changes {
            let Some(rel) = self.rel(&ev.uri) else { continue };
            match self.state.docs.get(&ev.uri.to_string()) {
                // The open buffer wins; but one the index did not take (a new file in a new
                // directory) may be taken now that the file exists.
                Some(d) if d.rel.is_some() || ev.typ == FileChangeType::DELETED => continue,
                Some(_) => events.push((rel, ev.typ == FileChangeType::DELETED, Some(ev.uri.to_string()))),
                None => events.push((rel, ev.typ == FileChangeType::DELETED, None)),
            }
        }
        let rels: Vec<&str> = events.iter().map(|(r, ..)| r.as_str()).collect();
        let admitted = self.state.admitted(&rels);
        for ((rel, deleted, open), ok) in events.into_iter().zip(admitted) {
            if let Some(key) = open {
                if let (true, Some(mut d)) = (ok, self.state.docs.get_mut(&key)) {
                    d.rel = Some(rel.clone());
                    let text = d.text.clone();
                    drop(d);
                    self.state.queue(rel, Some(text));
                }
                continue;
            }
            let text = if deleted || !ok { None } else { self.state.read_disk(&rel) };
            self.state.queue(rel, text);
        }
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let old = self.state.settings();
        let new = old.merged(&params.settings);
        let exclude_changed = new.exclude != old.exclude;
        if new.model_dir != old.model_dir || new.runtime_path != old.runtime_path {
            // Load the models again with the new paths at the next search.
            *self.state.encoder.lock().unwrap_or_else(|e| e.into_inner()) = None;
            *self.state.scorer.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        *self.state.settings.write().unwrap_or_else(|e| e.into_inner()) = new;
        if exclude_changed {
            // Before the first `.await`, so edits after this message follow the new rules; and
            // a build even while the first one runs, as that one walks with the old rules.
            self.state.readmit();
            self.index_in_background().await;
        }
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        if params.command != LOCATE_COMMAND {
            return Err(invalid(format!(
                "unknown command `{}`; Locus offers `{LOCATE_COMMAND}`",
                params.command
            )));
        }
        let arg = match params.arguments.len() {
            0 => return Err(invalid("locus.locateIssue needs the issue: [text] or [{ text, ... }]")),
            _ => params.arguments[0].clone(),
        };
        let p = parse_params(&arg)?;
        let (result, locs) = self.run_locate(p).await?;
        self.present(&locs).await;
        Ok(Some(result))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let r = params.range;
        if r.start == r.end {
            return Ok(None);
        }
        let Some(text) = self.doc_text(&params.text_document.uri) else { return Ok(None) };
        let s = convert::offset_of(&text, r.start);
        let e = convert::offset_of(&text, r.end).max(s);
        let selected = text[s..e].to_string();
        if selected.trim().is_empty() {
            return Ok(None);
        }
        let action = CodeAction {
            title: "Locate issue from selection".into(),
            kind: Some(CodeActionKind::new("source.locus.locateIssue")),
            command: Some(Command {
                title: "Locate issue from selection".into(),
                command: LOCATE_COMMAND.into(),
                arguments: Some(vec![json!({ "text": selected })]),
            }),
            ..CodeAction::default()
        };
        Ok(Some(vec![CodeActionOrCommand::CodeAction(action)]))
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let uri = params.text_document_position.text_document.uri;
        if !uri.as_str().ends_with(".issue.md") {
            return Ok(None);
        }
        let text = match self.doc_text(&uri) {
            Some(t) => t,
            None => return Ok(None),
        };
        let p = parse_params(&Value::String(text))?;
        let (_, locs) = self.run_locate(p).await?;
        Ok(Some(locs.into_iter().map(|(l, _)| l).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_with_clear_errors() {
        assert!(parse_params(&json!({"text": "a bug"})).is_ok());
        assert!(parse_params(&json!(["a bug"])).is_ok());
        assert!(parse_params(&json!("a bug")).is_ok());
        let e = parse_params(&json!({"text": 3})).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidParams);
        assert!(parse_params(&json!({"text": "  "})).is_err());
        assert!(parse_params(&json!({"text": "x", "maxResults": "ten"})).is_err());
        assert!(parse_params(&json!({"text": "x", "granularity": "line"})).is_err());
        assert!(parse_params(&json!({})).is_err());
    }

    /// Found by review and pinned by the `locate_params` fuzz target's invariant: a numeric
    /// token wider than 32 bits was cut to fit (4294967297 became 1) and progress went out
    /// under another token; a fractional one was dropped silently.
    #[test]
    fn a_token_that_is_not_a_32_bit_integer_is_refused() {
        let token = |t: Value| parse_params(&json!({"text": "x", "workDoneToken": t}));
        assert!(matches!(token(json!(7)).unwrap().token, Some(NumberOrString::Number(7))));
        assert!(matches!(token(json!(-7)).unwrap().token, Some(NumberOrString::Number(-7))));
        for bad in [json!(4294967297u64), json!(2147483648u64), json!(u64::MAX), json!(1.5)] {
            assert_eq!(token(bad).err().unwrap().code, ErrorCode::InvalidParams);
        }
    }

    #[test]
    fn empty_path_settings_mean_unset() {
        let s = Settings::default().merged(&json!({"locus": {"modelDir": "", "runtimePath": "  "}}));
        assert_eq!(s.model_dir, None);
        assert_eq!(s.runtime_path, None);
    }

    #[test]
    fn settings_merge_keeps_good_fields_and_ignores_bad() {
        let s = Settings::default().merged(&json!({"locus": {"maxResults": 5, "granularity": 7}}));
        assert_eq!(s.max_results, 5);
        assert_eq!(s.granularity, Granularity::Function);
    }
}
