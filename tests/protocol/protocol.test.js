// End-to-end protocol test: a real LSP client (vscode-languageserver-protocol over stdio) drives
// `locus lsp` on the example workspace through everything an editor uses: initialize, indexing
// progress, locus/locateIssue, workspace/executeCommand (diagnostics + showDocument), references in a
// *.issue.md, the code action, $/cancelRequest, shutdown/exit.
//
// Inputs (set by run.sh): LOCUS_BIN, LOCUS_EXAMPLE (workspace folder), LOCUS_ISSUE (issue file),
// LOCUS_EXPECT_TOP (a substring the top hit's `name` must contain; optional).
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL, fileURLToPath } = require('node:url');
const rpc = require('vscode-jsonrpc/node');
const P = require('vscode-languageserver-protocol');

const BIN = process.env.LOCUS_BIN;
const WS = process.env.LOCUS_EXAMPLE;
const ISSUE = process.env.LOCUS_ISSUE;
const EXPECT_TOP = process.env.LOCUS_EXPECT_TOP || '';
const INDEX_TIMEOUT_MS = Number(process.env.LOCUS_INDEX_TIMEOUT_MS || 120_000);
for (const [k, v] of Object.entries({ LOCUS_BIN: BIN, LOCUS_EXAMPLE: WS, LOCUS_ISSUE: ISSUE })) {
  if (!v) throw new Error(`${k} is not set: run tests/protocol/run.sh`);
}

const wsUri = pathToFileURL(WS).href;
const issueUri = pathToFileURL(ISSUE).href;
const issueText = fs.readFileSync(ISSUE, 'utf8');
const LOCATE = new P.RequestType('locus/locateIssue');

let proc;
let conn;
let stderr = '';
let exitCode;
const progress = []; // { token, value, at }
const diagnostics = new Map(); // uri -> Diagnostic[] (latest)
const diagEvents = [];
const showDocs = [];
const created = [];
const logs = [];

function waitFor(pred, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      let v;
      try { v = pred(); } catch (e) { return reject(e); }
      if (v) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error(`timed out after ${ms} ms waiting for ${what}\nserver stderr (tail):\n${stderr.slice(-3000)}`));
      setTimeout(tick, 25);
    };
    tick();
  });
}

function assertInside(uri) {
  assert.match(uri, /^file:\/\//, `uri ${uri}`);
  const p = fileURLToPath(uri);
  const rel = path.relative(fs.realpathSync(WS), fs.realpathSync(p));
  assert.ok(!rel.startsWith('..') && !path.isAbsolute(rel), `${uri} is outside the workspace`);
}

function assertPosition(p) {
  assert.ok(Number.isInteger(p.line) && p.line >= 0, `line ${JSON.stringify(p)}`);
  assert.ok(Number.isInteger(p.character) && p.character >= 0, `character ${JSON.stringify(p)}`);
}

function assertItem(it) {
  assert.equal(typeof it.uri, 'string');
  assertInside(it.uri);
  assertPosition(it.range.start);
  assertPosition(it.range.end);
  assert.ok(it.range.start.line < it.range.end.line || (it.range.start.line === it.range.end.line && it.range.start.character <= it.range.end.character), 'range start <= end');
  assert.equal(typeof it.score, 'number');
  assert.ok(Number.isFinite(it.score), 'finite score');
  for (const k of ['name', 'kind', 'reason']) assert.equal(typeof it[k], 'string', `${k} is a string`);
  assert.ok(it.name.length > 0, 'non-empty name');
}

function assertRanking(items) {
  assert.ok(Array.isArray(items), 'items is an array');
  items.forEach(assertItem);
  for (let i = 1; i < items.length; i++) assert.ok(items[i - 1].score >= items[i].score, 'sorted by score, best first');
}

async function locate(params, token) {
  return conn.sendRequest(LOCATE, params, token);
}

describe(`locus lsp (${path.basename(BIN)}) on ${path.basename(WS)}`, () => {
  let init;

  before(async () => {
    proc = spawn(BIN, ['lsp'], { cwd: WS, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RUST_BACKTRACE: '1' } });
    proc.stderr.on('data', (d) => { stderr += d.toString(); });
    proc.on('exit', (code, sig) => { exitCode = code ?? sig; });
    conn = P.createProtocolConnection(new rpc.StreamMessageReader(proc.stdout), new rpc.StreamMessageWriter(proc.stdin));
    conn.onRequest(P.WorkDoneProgressCreateRequest.type, (p) => { created.push(p.token); return null; });
    conn.onRequest(P.ShowDocumentRequest.type, (p) => { showDocs.push(p); return { success: true }; });
    conn.onRequest(P.ConfigurationRequest.type, (p) => p.items.map((i) => (i.section === 'locus' ? { maxResults: 10 } : null)));
    conn.onRequest(P.RegistrationRequest.type, () => null);
    conn.onRequest(P.UnregistrationRequest.type, () => null);
    conn.onNotification(P.LogMessageNotification.type, (p) => logs.push(p));
    conn.onNotification(P.ShowMessageNotification.type, (p) => logs.push(p));
    conn.onNotification(P.PublishDiagnosticsNotification.type, (p) => { diagnostics.set(p.uri, p.diagnostics); diagEvents.push(p); });
    conn.onNotification('$/progress', (p) => progress.push({ ...p, at: Date.now() }));
    conn.listen();
  });

  after(async () => {
    if (proc && exitCode === undefined) proc.kill('SIGKILL');
    conn?.dispose();
  });

  it('initialize advertises the Locus capabilities', async () => {
    init = await conn.sendRequest(P.InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: 'locus-protocol-test' },
      rootUri: wsUri,
      workspaceFolders: [{ uri: wsUri, name: path.basename(WS) }],
      initializationOptions: { maxResults: 10, granularity: 'function' },
      capabilities: {
        window: { workDoneProgress: true, showDocument: { support: true } },
        workspace: { configuration: true, workspaceFolders: true, didChangeConfiguration: { dynamicRegistration: false } },
        textDocument: {
          publishDiagnostics: { relatedInformation: true },
          codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix', 'refactor', 'source'] } } },
          references: {},
          synchronization: { didSave: true },
        },
        general: { positionEncodings: ['utf-16'] },
      },
    });
    const caps = init.capabilities;
    assert.equal(caps.experimental?.locus?.locateIssue, true, 'experimental.locus.locateIssue');
    assert.ok(caps.executeCommandProvider?.commands?.includes('locus.locateIssue'), 'executeCommandProvider has locus.locateIssue');
    assert.ok(caps.referencesProvider, 'referencesProvider');
    assert.ok(caps.codeActionProvider, 'codeActionProvider');
    if (caps.positionEncoding) assert.equal(caps.positionEncoding, 'utf-16');
    await conn.sendNotification(P.InitializedNotification.type, {});
  });

  it('indexing reports work-done progress and finishes', async () => {
    // The server creates a token (window/workDoneProgress/create) and reports begin … end on it.
    await waitFor(() => created.length > 0, 30_000, 'window/workDoneProgress/create');
    const token = created[0];
    await waitFor(() => progress.some((p) => p.token === token && p.value.kind === 'begin'), 30_000, 'indexing begin');
    await waitFor(() => progress.some((p) => p.token === token && p.value.kind === 'end'), INDEX_TIMEOUT_MS, 'indexing end');
    const begin = progress.find((p) => p.token === token && p.value.kind === 'begin');
    assert.equal(typeof begin.value.title, 'string');
  });

  let top;
  it('locus/locateIssue ranks valid locations with scores and reasons, reporting progress on the given token', async () => {
    let res;
    for (let i = 0; i < 50; i++) {
      res = await locate({ text: issueText, maxResults: 10, workDoneToken: 'pt-locate' });
      if (res.stats?.indexReady !== false && res.items.length > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(res && Array.isArray(res.items), 'result has items');
    assert.ok(res.items.length > 0, `no items; stats ${JSON.stringify(res.stats)}`);
    assert.ok(res.items.length <= 10, 'maxResults respected');
    assertRanking(res.items);
    const s = res.stats;
    assert.ok(s && typeof s === 'object', 'stats present');
    for (const k of ['ms', 'turns', 'calls', 'efficiency', 'files', 'entities']) assert.equal(typeof s[k], 'number', `stats.${k}`);
    assert.equal(s.indexReady, true);
    assert.ok(s.efficiency >= 0 && s.efficiency <= 1, 'efficiency in [0,1]');
    top = res.items[0];
    if (EXPECT_TOP) assert.ok(top.name.includes(EXPECT_TOP), `top hit ${top.name} should contain ${EXPECT_TOP} (tests/editors/example.env: update it if the ranking changed on purpose); ranking ${res.items.map((i) => i.name).join(', ')}`);
    const mine = progress.filter((p) => p.token === 'pt-locate');
    assert.ok(mine.some((p) => p.value.kind === 'begin'), 'progress begin on the request token');
    await waitFor(() => progress.some((p) => p.token === 'pt-locate' && p.value.kind === 'end'), 5_000, 'progress end on the request token');
    console.log(`# top hit: [${top.score.toFixed(2)}] ${top.name} — ${top.reason}; stats ${JSON.stringify(s)}`);
  });

  it('granularity "file" and maxResults are honoured', async () => {
    const res = await locate({ text: issueText, maxResults: 2, granularity: 'file' });
    assertRanking(res.items);
    assert.ok(res.items.length >= 1 && res.items.length <= 2, `1..2 items, got ${res.items.length}`);
    for (const it of res.items) assert.equal(it.kind, 'file');
    // Files and functions are ranked by separate models; the two lists must still agree on
    // where to look: the top function's file is among the top files.
    assert.ok(res.items.some((it) => it.uri === top.uri), `the top function's file ${top.uri} is among ${res.items.map((i) => i.uri).join(', ')}`);
  });

  it('bad input gets an answer, not a crash: empty text and a missing text', async () => {
    const empty = await locate({ text: '' }).then((r) => ({ r }), (e) => ({ e }));
    if (empty.r) assert.deepEqual(empty.r.items, []);
    else assert.equal(typeof empty.e.code, 'number');
    const missing = await locate({}).then((r) => ({ r }), (e) => ({ e }));
    if (missing.e) assert.equal(missing.e.code, P.ErrorCodes.InvalidParams);
    assert.equal(exitCode, undefined, 'server still running');
  });

  it('workspace/executeCommand locus.locateIssue returns the ranking, publishes hint diagnostics and shows the top hit', async () => {
    const shown = showDocs.length;
    const events = diagEvents.length;
    const res = await conn.sendRequest(P.ExecuteCommandRequest.type, {
      command: 'locus.locateIssue',
      arguments: [{ text: issueText, maxResults: 5 }],
    });
    assertRanking(res.items);
    assert.ok(res.items.length > 0 && res.items.length <= 5);
    assert.equal(res.items[0].uri, top.uri);
    await waitFor(() => showDocs.length > shown, 5_000, 'window/showDocument');
    const sd = showDocs[showDocs.length - 1];
    assert.equal(sd.uri, res.items[0].uri);
    if (sd.selection) assert.equal(sd.selection.start.line, res.items[0].range.start.line);
    await waitFor(() => diagEvents.length > events && (diagnostics.get(top.uri) || []).length > 0, 5_000, 'publishDiagnostics at the top hit');
    const all = [...diagnostics.values()].flat();
    assert.equal(all.length, res.items.length, 'one diagnostic per hit');
    for (const d of all) {
      assert.equal(d.source, 'locus');
      assert.equal(d.severity, P.DiagnosticSeverity.Hint);
      assert.match(d.message, /^\[\d+\.\d\d\] .+ — .+/);
    }
    const topDiag = diagnostics.get(top.uri).find((d) => d.range.start.line === res.items[0].range.start.line);
    assert.ok(topDiag, 'a diagnostic at the top hit');
    assert.ok(topDiag.message.includes(res.items[0].name));
  });

  it('executeCommand with [text] works too, and replaces the previous batch of diagnostics', async () => {
    const res = await conn.sendRequest(P.ExecuteCommandRequest.type, { command: 'locus.locateIssue', arguments: [issueText] });
    assertRanking(res.items);
    await new Promise((r) => setTimeout(r, 300));
    const all = [...diagnostics.values()].flat();
    assert.equal(all.length, res.items.length, 'old diagnostics cleared: one per current hit');
  });

  it('textDocument/references in a *.issue.md answers with the ranking', async () => {
    await conn.sendNotification(P.DidOpenTextDocumentNotification.type, {
      textDocument: { uri: issueUri, languageId: 'markdown', version: 1, text: issueText },
    });
    const locs = await conn.sendRequest(P.ReferencesRequest.type, {
      textDocument: { uri: issueUri },
      position: { line: 0, character: 0 },
      context: { includeDeclaration: true },
    });
    assert.ok(Array.isArray(locs) && locs.length > 0, 'references returned locations');
    for (const l of locs) { assertInside(l.uri); assertPosition(l.range.start); assertPosition(l.range.end); }
    assert.equal(locs[0].uri, top.uri);
    assert.equal(locs[0].range.start.line, top.range.start.line);
  });

  it('an unsaved edit of the issue buffer is what references rank', async () => {
    const change = (version, text) => conn.sendNotification(P.DidChangeTextDocumentNotification.type, {
      textDocument: { uri: issueUri, version }, contentChanges: [{ text }],
    });
    const refs = () => conn.sendRequest(P.ReferencesRequest.type, {
      textDocument: { uri: issueUri }, position: { line: 0, character: 0 }, context: { includeDeclaration: true },
    }).then((r) => ({ r }), (e) => ({ e }));
    try {
      await change(2, '');
      const empty = await refs();
      // An emptied buffer: no locations, or a clear InvalidParams error (editors show its message).
      if (empty.e) assert.equal(empty.e.code, P.ErrorCodes.InvalidParams, `error ${empty.e.code} ${empty.e.message}`);
      else assert.ok(empty.r === null || empty.r.length === 0, `empty issue buffer gives no references, got ${JSON.stringify(empty.r)?.slice(0, 200)}`);
      // Only the unsaved text counts: the ranking follows the buffer, not the file on disk.
      const lines = issueText.split('\n');
      await change(3, lines.slice(0, 1).join('\n'));
      const titleOnly = await refs();
      const direct = await locate({ text: lines[0] });
      const got = titleOnly.r || [];
      assert.deepEqual(got.map((l) => `${l.uri}:${l.range.start.line}`), direct.items.map((l) => `${l.uri}:${l.range.start.line}`),
        'references rank the edited buffer text');
    } finally {
      await change(4, issueText);
    }
  });

  it('a code action on a selection runs locus.locateIssue with the selected text', async () => {
    const lines = issueText.split('\n');
    const last = Math.min(lines.length - 1, 3);
    const range = { start: { line: 0, character: 0 }, end: { line: last, character: lines[last].length } };
    const actions = await conn.sendRequest(P.CodeActionRequest.type, {
      textDocument: { uri: issueUri }, range, context: { diagnostics: [] },
    });
    assert.ok(Array.isArray(actions), 'code actions returned');
    const a = actions.find((x) => x.title === 'Locate issue from selection');
    assert.ok(a, `a "Locate issue from selection" action among ${JSON.stringify(actions.map((x) => x.title))}`);
    const cmd = P.Command.is(a) ? a : a.command;
    assert.equal(cmd.command, 'locus.locateIssue');
    const arg = cmd.arguments[0];
    const text = typeof arg === 'string' ? arg : arg.text;
    assert.equal(text.trim(), lines.slice(0, last + 1).join('\n').trim());
    // and running it is an ordinary executeCommand
    const res = await conn.sendRequest(P.ExecuteCommandRequest.type, cmd);
    assertRanking(res.items);
    const empty = await conn.sendRequest(P.CodeActionRequest.type, {
      textDocument: { uri: issueUri }, range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, context: { diagnostics: [] },
    });
    assert.ok(!(empty || []).some((x) => x.title === 'Locate issue from selection'), 'no action on an empty selection');
  });

  it('didChangeConfiguration under "locus" changes the default maxResults', async () => {
    await conn.sendNotification(P.DidChangeConfigurationNotification.type, { settings: { locus: { maxResults: 1 } } });
    await new Promise((r) => setTimeout(r, 100));
    const res = await locate({ text: issueText });
    assert.equal(res.items.length, 1, 'maxResults from the settings');
    await conn.sendNotification(P.DidChangeConfigurationNotification.type, { settings: { locus: { maxResults: 10 } } });
  });

  it('$/cancelRequest stops a running search with -32800 and the server answers the next request at once', async () => {
    // A big issue text (the issue plus ~2 MB of workspace-like words) makes the search take a while.
    const words = issueText.match(/[A-Za-z_][A-Za-z0-9_]{2,}/g) || ['parse', 'config'];
    let filler = '';
    for (let i = 0; filler.length < 2_000_000; i++) filler += `${words[i % words.length]}_${i % 997} `;
    const big = `${issueText}\n${filler}`;
    // The example is small and the search fast, so the cancel is sent right behind the request; a
    // search that still wins the race is retried (up to 5 times) rather than counted as a failure.
    let out;
    let took;
    const outcomes = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const src = new rpc.CancellationTokenSource();
      const t0 = Date.now();
      const pending = locate({ text: big, workDoneToken: `pt-cancel-${attempt}` }, src.token).then((r) => ({ r }), (e) => ({ e }));
      src.cancel();
      out = await pending;
      took = Date.now() - t0;
      outcomes.push(out.e ? `error ${out.e.code} after ${took} ms` : `result after ${took} ms`);
      assert.ok(took < 5_000, `answered in ${took} ms`);
      if (out.e) break;
    }
    assert.ok(out.e, `never cancelled: ${outcomes.join('; ')}`);
    assert.equal(out.e.code, P.LSPErrorCodes.RequestCancelled, `error ${out.e.code} ${out.e.message}`);
    console.log(`# cancel attempts: ${outcomes.join('; ')}`);
    const t1 = Date.now();
    const res = await locate({ text: issueText, maxResults: 3 });
    assert.ok(res.items.length > 0);
    assert.ok(Date.now() - t1 < 5_000, `next request answered in ${Date.now() - t1} ms`);
    console.log(`# cancel answered after ${took} ms; next locate took ${Date.now() - t1} ms`);
  });

  it('shutdown and exit end the process with code 0', async () => {
    const r = await conn.sendRequest(P.ShutdownRequest.type);
    assert.equal(r, null);
    await conn.sendNotification(P.ExitNotification.type);
    await waitFor(() => exitCode !== undefined, 5_000, 'process exit');
    assert.equal(exitCode, 0, `exit code ${exitCode}`);
    assert.ok(!/panicked at/.test(stderr), `a panic in stderr:\n${stderr.slice(-2000)}`);
  });
});
