// Unit tests of the "Locate issue" command logic against a stubbed `vscode` module (no VS Code needed).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { load, Selection } = require('./vscode-stub');
const { resolveServerPath, ServerNotFoundError } = require('../out/serverPath.js');

const ITEMS = [
  {
    uri: 'file:///ws/pkg/config.py',
    range: { start: { line: 41, character: 0 }, end: { line: 55, character: 10 } },
    score: 0.8734, name: 'pkg/config.py:Config.load', kind: 'method', reason: 'named in the traceback',
  },
  {
    uri: 'file:///ws/src/lib.rs',
    range: { start: { line: 3, character: 4 }, end: { line: 9, character: 5 } },
    score: 0.41, name: 'src/lib.rs:parse', kind: 'function', reason: 'calls the leading candidate',
  },
];
const SETTINGS = { maxResults: 7, granularity: 'function', showQuickPick: true };

function fakeClient(answer, opts = {}) {
  const sent = [];
  const progressHandlers = new Map();
  return {
    sent,
    progressHandlers,
    onProgress(token, handler) {
      progressHandlers.set(token, handler);
      return { dispose: () => progressHandlers.delete(token) };
    },
    async sendRequest(method, params, token) {
      sent.push({ method, params, token });
      const h = progressHandlers.get(params.workDoneToken);
      if (h) { h({ kind: 'begin', title: 'Locating' }); h({ kind: 'report', message: 'turn 1: 6 calls' }); }
      if (opts.waitForCancel) {
        await new Promise((resolve) => token.onCancellationRequested(resolve));
        const err = new Error('The client cancelled the request'); err.code = -32800; throw err;
      }
      if (opts.error) throw opts.error;
      return typeof answer === 'function' ? answer(params) : answer;
    },
  };
}

test('selection text is sent with the settings and a work-done token', async () => {
  const t = load();
  const text = 'line one\nTypeError in Config.load\nlast';
  const ed = t.fakeEditor('file:///ws/bug.txt', text, null);
  ed.selections = [new Selection(1, 0, 1, 24)];
  ed.selection = ed.selections[0];
  t.state.activeTextEditor = ed;
  const client = fakeClient({ items: ITEMS, stats: { ms: 12, turns: 2, calls: 9, efficiency: 0.75, indexReady: true } });
  const res = await t.locate.locateIssueCommand(client, SETTINGS);
  assert.equal(client.sent.length, 1);
  const { method, params } = client.sent[0];
  assert.equal(method, 'locus/locateIssue');
  assert.equal(params.text, 'TypeError in Config.load');
  assert.equal(params.maxResults, 7);
  assert.equal(params.granularity, 'function');
  assert.match(String(params.workDoneToken), /^locus-locate-/);
  assert.equal(res.items.length, 2);
  // no input box when there is a selection
  assert.ok(!t.calls.some((c) => c.name === 'showInputBox'));
  // a cancellable notification, fed with the server's progress messages
  const wp = t.calls.find((c) => c.name === 'withProgress');
  assert.equal(wp.args[0].cancellable, true);
  assert.equal(wp.args[0].location, 15);
  assert.ok(wp.args[1].some((r) => r.message === 'turn 1: 6 calls'));
  assert.equal(client.progressHandlers.size, 0, 'progress subscription disposed');
});

test('results go to the peek view at the cursor and to a quick pick with score, name and reason', async () => {
  const t = load();
  const ed = t.fakeEditor('file:///ws/bug.issue.md', '', null);
  t.state.activeTextEditor = ed;
  let shown;
  t.state.quickPickAnswer = (items) => { shown = items; return items[1]; };
  await t.locate.locateIssueCommand(fakeClient({ items: ITEMS, stats: {} }), SETTINGS, 'crash in parse');
  const peek = t.calls.find((c) => c.name === 'executeCommand' && c.args[0] === 'editor.action.peekLocations');
  assert.ok(peek, 'peekLocations called');
  assert.equal(peek.args[1].toString(), 'file:///ws/bug.issue.md');
  const locs = peek.args[3];
  assert.equal(locs.length, 2);
  assert.equal(locs[0].uri.toString(), 'file:///ws/pkg/config.py');
  assert.deepEqual([locs[0].range.start.line, locs[0].range.end.line, locs[0].range.end.character], [41, 41, 0], 'anchored at the start of the item');
  assert.equal(peek.args[4], 'peek');
  assert.deepEqual(shown.map((p) => p.label), [
    '[0.87] pkg/config.py:Config.load — named in the traceback',
    '[0.41] src/lib.rs:parse — calls the leading candidate',
  ]);
  assert.equal(shown[0].detail, 'pkg/config.py:42');
  // picking the second entry opens it with its range selected
  const open = t.calls.filter((c) => c.name === 'showTextDocument').pop();
  assert.equal(open.args[0].toString(), 'file:///ws/src/lib.rs');
  assert.equal(open.args[1].selection.start.line, 3);
  // peek before quick pick
  const order = t.calls.map((c) => c.name);
  assert.ok(order.indexOf('executeCommand') < order.indexOf('showQuickPick'));
});

test('without an editor or selection it asks with an input box; no answer sends nothing', async () => {
  const t = load();
  const client = fakeClient({ items: ITEMS });
  t.state.inputBoxAnswer = undefined;
  assert.equal(await t.locate.locateIssueCommand(client, SETTINGS), undefined);
  assert.equal(client.sent.length, 0);
  assert.ok(t.calls.some((c) => c.name === 'showInputBox'));

  t.state.inputBoxAnswer = 'KeyError: missing section';
  await t.locate.locateIssueCommand(client, SETTINGS);
  assert.equal(client.sent[0].params.text, 'KeyError: missing section');
});

test('with no editor, the top hit is opened and the peek is anchored there', async () => {
  const t = load();
  t.state.inputBoxAnswer = 'boom';
  await t.locate.locateIssueCommand(fakeClient({ items: ITEMS }), { ...SETTINGS, showQuickPick: false });
  const open = t.calls.find((c) => c.name === 'showTextDocument');
  assert.equal(open.args[0].toString(), 'file:///ws/pkg/config.py');
  const peek = t.calls.find((c) => c.name === 'executeCommand');
  assert.equal(peek.args[1].toString(), 'file:///ws/pkg/config.py');
  assert.ok(!t.calls.some((c) => c.name === 'showQuickPick'), 'quick pick can be turned off');
});

test('an empty *.issue.md selection sends the whole document', async () => {
  const t = load();
  t.state.activeTextEditor = t.fakeEditor('file:///ws/crash.issue.md', '# Crash\nValueError in load()\n', null);
  const client = fakeClient({ items: [] });
  await t.locate.locateIssueCommand(client, SETTINGS);
  assert.equal(client.sent[0].params.text, '# Crash\nValueError in load()\n');
});

test('cancelling the notification cancels the request and shows no error', async () => {
  const t = load();
  t.state.onProgressStarted = (cts) => setTimeout(() => cts.cancel(), 10);
  const client = fakeClient(null, { waitForCancel: true });
  const res = await t.locate.locateIssueCommand(client, SETTINGS, 'slow issue');
  assert.equal(res, undefined);
  assert.equal(client.sent[0].token.isCancellationRequested, true);
  assert.ok(!t.calls.some((c) => c.name === 'showErrorMessage'));
  assert.ok(t.calls.some((c) => c.name === 'setStatusBarMessage' && /cancelled/.test(c.args[0])));
  assert.ok(!t.calls.some((c) => c.name === 'executeCommand'));
});

test('a server error is reported, not thrown', async () => {
  const t = load();
  const res = await t.locate.locateIssueCommand(fakeClient(null, { error: new Error('index failed') }), SETTINGS, 'x');
  assert.equal(res, undefined);
  const err = t.calls.find((c) => c.name === 'showErrorMessage');
  assert.match(err.args[0], /index failed/);
});

test('no results: an information message, mentioning indexing when the index is not ready', async () => {
  const t = load();
  await t.locate.locateIssueCommand(fakeClient({ items: [], stats: { indexReady: false } }), SETTINGS, 'x');
  const info = t.calls.find((c) => c.name === 'showInformationMessage');
  assert.match(info.args[0], /still being indexed/);
  assert.ok(!t.calls.some((c) => c.name === 'executeCommand'));
});

test('formatting: scores with two decimals, reason optional; full ranges kept for the API', () => {
  const { locate } = load();
  const full = locate.toLocation(ITEMS[0]);
  assert.deepEqual([full.range.start.line, full.range.end.line, full.range.end.character], [41, 55, 10]);
  assert.equal(locate.formatItem({ ...ITEMS[0], score: 1 }), '[1.00] pkg/config.py:Config.load — named in the traceback');
  assert.equal(locate.formatItem({ ...ITEMS[0], reason: '' }), '[0.87] pkg/config.py:Config.load');
  assert.equal(locate.formatScore(NaN), '?');
  assert.match(locate.statsLine({ items: ITEMS, stats: { ms: 12.4, turns: 2, calls: 9, efficiency: 0.754 } }),
    /2 locations in 12 ms, 2 turns, 9 calls, efficiency 0.75/);
});

test('server path: setting, then bundled, then PATH, else a clear error', () => {
  const exists = (set) => (p) => set.has(p);
  const base = { extensionPath: '/ext', workspaceFolder: '/ws', envPath: '/usr/bin:/opt/bin', platform: 'linux', makeExecutable: () => false };
  assert.deepEqual(resolveServerPath({ ...base, setting: '/x/locus', isExecutable: exists(new Set(['/x/locus', '/ext/server/locus'])) }),
    { path: '/x/locus', source: 'setting' });
  assert.deepEqual(resolveServerPath({ ...base, setting: '${workspaceFolder}/target/release/locus', isExecutable: exists(new Set(['/ws/target/release/locus'])) }),
    { path: '/ws/target/release/locus', source: 'setting' });
  assert.deepEqual(resolveServerPath({ ...base, setting: 'target/release/locus', isExecutable: exists(new Set(['/ws/target/release/locus'])) }),
    { path: '/ws/target/release/locus', source: 'setting' });
  assert.deepEqual(resolveServerPath({ ...base, setting: '', isExecutable: exists(new Set(['/ext/server/locus', '/opt/bin/locus'])) }),
    { path: '/ext/server/locus', source: 'bundled' });
  // The release bundle of a platform .vsix comes before a lone bundled binary.
  assert.deepEqual(resolveServerPath({ ...base, setting: '', isExecutable: exists(new Set(['/ext/server/bin/locus', '/ext/server/locus'])) }),
    { path: '/ext/server/bin/locus', source: 'bundled' });
  // A bundled file whose executable bit the zip lost is made executable, not skipped for PATH.
  const fixed = [];
  assert.deepEqual(resolveServerPath({ ...base, setting: '', isExecutable: exists(new Set(['/opt/bin/locus'])),
    makeExecutable: (p) => { fixed.push(p); return p === '/ext/server/bin/locus'; } }),
    { path: '/ext/server/bin/locus', source: 'bundled' });
  assert.deepEqual(fixed, ['/ext/server/bin/locus']);
  assert.deepEqual(resolveServerPath({ ...base, setting: '  ', isExecutable: exists(new Set(['/opt/bin/locus'])) }),
    { path: '/opt/bin/locus', source: 'path' });
  assert.throws(() => resolveServerPath({ ...base, setting: '/missing/locus', isExecutable: exists(new Set(['/opt/bin/locus'])) }),
    (e) => e instanceof ServerNotFoundError && /not an executable/.test(e.message));
  assert.throws(() => resolveServerPath({ ...base, setting: '', isExecutable: exists(new Set()) }),
    (e) => e instanceof ServerNotFoundError && /locus\.serverPath/.test(e.message));
  assert.equal(path.basename(resolveServerPath({ ...base, platform: 'win32', envPath: 'C:\\bin', setting: '',
    isExecutable: (p) => p.endsWith('locus.exe') }).path), 'locus.exe');
});

test('package.json: palette command differs from the server command and is in the editor context menu', () => {
  const pkg = require('../package.json');
  const cmds = pkg.contributes.commands.map((c) => c.command);
  assert.ok(cmds.includes('locus.locateIssue.run'));
  assert.ok(!cmds.includes('locus.locateIssue'), 'locus.locateIssue is registered by vscode-languageclient');
  assert.equal(pkg.contributes.commands.find((c) => c.command === 'locus.locateIssue.run').title, 'Locate issue');
  assert.ok(pkg.contributes.menus['editor/context'].some((m) => m.command === 'locus.locateIssue.run'));
  for (const k of ['locus.serverPath', 'locus.maxResults', 'locus.granularity']) assert.ok(pkg.contributes.configuration.properties[k], k);
  assert.equal(pkg.dependencies['vscode-languageclient'], '9.0.1');
  assert.equal(pkg.engines.vscode, '^1.82.0');
});
