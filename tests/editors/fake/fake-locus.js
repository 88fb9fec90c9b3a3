#!/usr/bin/env node
// A stand-in for `locus lsp`, for developing the editor integrations before the real server exists.
// It speaks the same protocol (see DESIGN.md §5) but ranks by naive word overlap. A dev aid only:
// every editor test is meant to run against the real server (LOCUS_BIN defaults to target/release/locus).
'use strict';
const fs = require('fs');
const path = require('path');
const { pathToFileURL, fileURLToPath } = require('url');

const DELAY_MS = Number(process.env.LOCUS_FAKE_DELAY_MS || 0);
if (process.argv.includes('--version')) { process.stdout.write('locus 0.0.0-fake\n'); process.exit(0); }

let root = process.cwd();
let settings = { maxResults: 10, granularity: 'function' };
let clientProgress = false;
const docs = new Map();
const cancelled = new Set();
let nextId = 1;
const pending = new Map();
let lastDiagUris = [];

function send(msg) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...msg }), 'utf8');
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}
const notify = (method, params) => send({ method, params });
function request(method, params) {
  const id = `s${nextId++}`;
  send({ id, method, params });
  return new Promise((resolve) => pending.set(id, resolve));
}

let buf = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const sep = buf.indexOf('\r\n\r\n');
    if (sep < 0) return;
    const m = /Content-Length: *(\d+)/i.exec(buf.slice(0, sep).toString());
    const len = Number(m[1]);
    if (buf.length < sep + 4 + len) return;
    const msg = JSON.parse(buf.slice(sep + 4, sep + 4 + len).toString('utf8'));
    buf = buf.slice(sep + 4 + len);
    handle(msg).catch((e) => process.stderr.write(`fake-locus: ${e.stack}\n`));
  }
});
process.stdin.on('end', () => process.exit(0));

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || e.name === 'node_modules' || e.name === 'target') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(py|rs)$/.test(e.name)) out.push(p);
  }
  return out;
}

function rank(text, max, granularity) {
  const words = new Set((text.match(/[A-Za-z_][A-Za-z0-9_]{2,}/g) || []).map((w) => w.toLowerCase()));
  const items = [];
  for (const file of walk(root)) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    if (granularity === 'file') {
      const hits = lines.join(' ').toLowerCase().match(/[a-z_][a-z0-9_]{2,}/g) || [];
      const n = hits.filter((w) => words.has(w)).length;
      if (n) items.push({ uri: pathToFileURL(file).href, range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
        score: n, name: rel, kind: 'file', reason: `${n} words of the issue` });
      continue;
    }
    lines.forEach((line, i) => {
      const m = /^\s*(?:pub\s+)?(?:async\s+)?(def|fn|class|struct)\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(line);
      if (!m) return;
      const name = m[2];
      const body = lines.slice(i, i + 15).join(' ').toLowerCase().match(/[a-z_][a-z0-9_]{2,}/g) || [];
      const n = body.filter((w) => words.has(w)).length + (words.has(name.toLowerCase()) ? 10 : 0);
      if (!n) return;
      items.push({ uri: pathToFileURL(file).href,
        range: { start: { line: i, character: 0 }, end: { line: i, character: line.length } },
        score: n, name: `${rel}:${name}`, kind: m[1] === 'class' || m[1] === 'struct' ? 'class' : 'function',
        reason: words.has(name.toLowerCase()) ? `defines \`${name}\` mentioned in the issue` : 'shares words with the issue' });
    });
  }
  items.sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
  const top = items.slice(0, max);
  const best = top.length ? top[0].score : 1;
  for (const it of top) it.score = Math.round((it.score / best) * 100) / 100;
  return top;
}

async function locate(id, params) {
  const t0 = Date.now();
  const token = params.workDoneToken;
  if (token !== undefined) notify('$/progress', { token, value: { kind: 'begin', title: 'Locating issue', cancellable: true } });
  for (let waited = 0; waited < DELAY_MS; waited += 20) {
    if (cancelled.has(id)) {
      if (token !== undefined) notify('$/progress', { token, value: { kind: 'end', message: 'cancelled' } });
      throw Object.assign(new Error('request cancelled'), { code: -32800 });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (token !== undefined) notify('$/progress', { token, value: { kind: 'report', message: 'turn 1' } });
  const items = rank(String(params.text || ''), params.maxResults || settings.maxResults, params.granularity || settings.granularity);
  if (token !== undefined) notify('$/progress', { token, value: { kind: 'end', message: `${items.length} locations` } });
  return { items, stats: { ms: Date.now() - t0, turns: 1, calls: 1, efficiency: 1, indexReady: true, files: walk(root).length, entities: 0 } };
}

async function handle(msg) {
  if (msg.id !== undefined && msg.method === undefined) { const r = pending.get(msg.id); pending.delete(msg.id); if (r) r(msg); return; }
  const { id, method, params } = msg;
  const reply = (result) => send({ id, result });
  const fail = (code, message) => send({ id, error: { code, message } });
  try {
    switch (method) {
      case 'initialize': {
        if (params.rootUri) root = fileURLToPath(params.rootUri);
        else if (params.workspaceFolders && params.workspaceFolders[0]) root = fileURLToPath(params.workspaceFolders[0].uri);
        Object.assign(settings, params.initializationOptions || {});
        clientProgress = !!(params.capabilities && params.capabilities.window && params.capabilities.window.workDoneProgress);
        return reply({
          serverInfo: { name: 'locus', version: '0.0.0-fake' },
          capabilities: {
            textDocumentSync: 1,
            referencesProvider: true,
            codeActionProvider: true,
            executeCommandProvider: { commands: ['locus.locateIssue'] },
            experimental: { locus: { locateIssue: true } },
          },
        });
      }
      case 'initialized': {
        if (clientProgress) {
          const token = 'locus-index';
          await request('window/workDoneProgress/create', { token });
          notify('$/progress', { token, value: { kind: 'begin', title: 'Locus: indexing', percentage: 0 } });
          notify('$/progress', { token, value: { kind: 'end', message: `${walk(root).length} files` } });
        }
        return;
      }
      case 'shutdown': return reply(null);
      case 'exit': return process.exit(0);
      case '$/cancelRequest': cancelled.add(params.id); return;
      case 'workspace/didChangeConfiguration': Object.assign(settings, (params.settings && params.settings.locus) || {}); return;
      case 'textDocument/didOpen': docs.set(params.textDocument.uri, params.textDocument.text); return;
      case 'textDocument/didChange': docs.set(params.textDocument.uri, params.contentChanges[params.contentChanges.length - 1].text); return;
      case 'textDocument/didClose': docs.delete(params.textDocument.uri); return;
      case 'locus/locateIssue': return reply(await locate(id, params));
      case 'workspace/executeCommand': {
        if (params.command !== 'locus.locateIssue') return fail(-32602, `unknown command ${params.command}`);
        const a = (params.arguments || [])[0];
        const res = await locate(id, typeof a === 'string' ? { text: a } : a || {});
        const byUri = new Map();
        for (const it of res.items) {
          if (!byUri.has(it.uri)) byUri.set(it.uri, []);
          byUri.get(it.uri).push({ range: it.range, severity: 4, source: 'locus', message: `[${it.score.toFixed(2)}] ${it.name} — ${it.reason}` });
        }
        for (const u of lastDiagUris) if (!byUri.has(u)) notify('textDocument/publishDiagnostics', { uri: u, diagnostics: [] });
        for (const [u, d] of byUri) notify('textDocument/publishDiagnostics', { uri: u, diagnostics: d });
        lastDiagUris = [...byUri.keys()];
        if (res.items[0]) request('window/showDocument', { uri: res.items[0].uri, selection: res.items[0].range, takeFocus: true });
        return reply(res);
      }
      case 'textDocument/codeAction': {
        const r = params.range;
        const text = docs.get(params.textDocument.uri);
        if (!text || (r.start.line === r.end.line && r.start.character === r.end.character)) return reply([]);
        const lines = text.split('\n');
        const sel = r.start.line === r.end.line ? lines[r.start.line].slice(r.start.character, r.end.character)
          : [lines[r.start.line].slice(r.start.character), ...lines.slice(r.start.line + 1, r.end.line), (lines[r.end.line] || '').slice(0, r.end.character)].join('\n');
        return reply([{ title: 'Locate issue from selection', kind: 'source',
          command: { title: 'Locate issue from selection', command: 'locus.locateIssue', arguments: [sel] } }]);
      }
      case 'textDocument/references': {
        const uri = params.textDocument.uri;
        if (!uri.endsWith('.issue.md')) return reply(null);
        const text = docs.get(uri) ?? fs.readFileSync(fileURLToPath(uri), 'utf8');
        return reply((await locate(id, { text })).items);
      }
      default:
        if (id !== undefined) return fail(-32601, `method not found: ${method}`);
    }
  } catch (e) {
    if (id !== undefined) fail(e.code || -32603, e.message);
  } finally {
    if (id !== undefined) cancelled.delete(id);
  }
}
