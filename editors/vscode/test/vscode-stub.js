// A small stand-in for the `vscode` module: enough API for src/locate.ts and src/serverPath.ts,
// with every UI call recorded in `calls` so tests can assert what the user would see.
'use strict';
const Module = require('module');

class Position {
  constructor(line, character) { this.line = line; this.character = character; }
}
class Range {
  constructor(a, b, c, d) {
    if (a instanceof Position) { this.start = a; this.end = b; } else { this.start = new Position(a, b); this.end = new Position(c, d); }
  }
  get isEmpty() { return this.start.line === this.end.line && this.start.character === this.end.character; }
}
class Selection extends Range {
  constructor(a, b, c, d) { super(a, b, c, d); this.active = this.end; this.anchor = this.start; }
}
class Location { constructor(uri, range) { this.uri = uri; this.range = range; } }
class Uri {
  constructor(s) { this._s = s; this.scheme = s.split(':')[0]; this.fsPath = decodeURIComponent(s.replace(/^file:\/\//, '')); }
  static parse(s) { return new Uri(s); }
  static file(p) { return new Uri('file://' + p); }
  toString() { return this._s; }
}
class CancellationTokenSource {
  constructor() {
    this._listeners = [];
    const self = this;
    this.token = {
      isCancellationRequested: false,
      onCancellationRequested(fn) { self._listeners.push(fn); return { dispose() {} }; },
    };
  }
  cancel() { this.token.isCancellationRequested = true; for (const f of this._listeners) f(); }
}

function createStub() {
  const calls = [];
  const state = {
    activeTextEditor: undefined,
    inputBoxAnswer: undefined,
    quickPickAnswer: (items) => undefined,
    // Set to a function (cts) => void to cancel the progress notification while a request runs.
    onProgressStarted: undefined,
  };
  const record = (name, ...args) => { calls.push({ name, args }); };
  const vscode = {
    Position, Range, Selection, Location, Uri, CancellationTokenSource,
    ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
    TextEditorRevealType: { Default: 0, InCenter: 1, InCenterIfOutsideViewport: 2, AtTop: 3 },
    window: {
      get activeTextEditor() { return state.activeTextEditor; },
      async showInputBox(opts) { record('showInputBox', opts); return state.inputBoxAnswer; },
      async showQuickPick(items, opts) { const list = await items; record('showQuickPick', list, opts); return state.quickPickAnswer(list); },
      async showInformationMessage(msg, ...rest) { record('showInformationMessage', msg, ...rest); return undefined; },
      async showErrorMessage(msg, ...rest) { record('showErrorMessage', msg, ...rest); return undefined; },
      setStatusBarMessage(msg) { record('setStatusBarMessage', msg); return { dispose() {} }; },
      async showTextDocument(uri, opts) {
        record('showTextDocument', uri, opts);
        const editor = fakeEditor(uri.toString(), '', opts && opts.selection);
        editor.revealRange = (r) => record('revealRange', r);
        state.activeTextEditor = editor;
        return editor;
      },
      async withProgress(opts, task) {
        const cts = new CancellationTokenSource();
        const reports = [];
        record('withProgress', opts, reports);
        const progress = { report(v) { reports.push(v); } };
        const p = task(progress, cts.token);
        if (state.onProgressStarted) state.onProgressStarted(cts);
        return p;
      },
    },
    commands: {
      async executeCommand(cmd, ...args) { record('executeCommand', cmd, ...args); return undefined; },
    },
    workspace: {
      asRelativePath(uri) { return String(uri.fsPath || uri).replace(/^\/ws\//, ''); },
    },
  };
  return { vscode, calls, state };
}

function fakeEditor(uri, text, selection) {
  const sel = selection ? new Selection(selection.start, selection.end) : new Selection(0, 0, 0, 0);
  const lines = text.split('\n');
  const offset = (pos) => lines.slice(0, pos.line).reduce((n, l) => n + l.length + 1, 0) + pos.character;
  return {
    document: {
      uri: Uri.parse(uri),
      fileName: Uri.parse(uri).fsPath,
      getText(r) { return r ? text.slice(offset(r.start), offset(r.end)) : text; },
    },
    selection: sel,
    selections: [sel],
  };
}

/** Installs the stub as the module `vscode` and returns it with fresh copies of the compiled modules. */
function load() {
  const stub = createStub();
  const origLoad = Module._load;
  Module._load = function (request, parent, isMain) {
    if (request === 'vscode') return stub.vscode;
    return origLoad.call(this, request, parent, isMain);
  };
  for (const k of Object.keys(require.cache)) if (k.includes('/out/')) delete require.cache[k];
  const locate = require('../out/locate.js');
  Module._load = origLoad;
  return { ...stub, locate, fakeEditor };
}

module.exports = { load, fakeEditor, Position, Range, Selection };
