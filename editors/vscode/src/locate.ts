//! The "Locate issue" command: get the issue text, ask the server with a cancellable progress
//! notification, then present the ranking in the peek view and in a quick pick.
//! It talks to the language client only through `LocusClient`, so it is unit-tested with stubs.

import * as vscode from 'vscode';
import {
  Granularity,
  LOCATE_ISSUE_METHOD,
  LocatedItem,
  LocateIssueParams,
  LocateIssueResult,
  REQUEST_CANCELLED,
} from './protocol';

/** What the command needs from the language client. */
export interface LocusClient {
  sendRequest<R>(method: string, params: unknown, token?: vscode.CancellationToken): Promise<R>;
  /** Subscribe to `$/progress` notifications for a work-done token the client created. */
  onProgress?(token: string, handler: (value: WorkDoneValue) => void): vscode.Disposable;
}

export interface WorkDoneValue {
  kind: 'begin' | 'report' | 'end';
  title?: string;
  message?: string;
  percentage?: number;
}

export interface LocateSettings {
  maxResults: number;
  granularity: Granularity;
  showQuickPick: boolean;
}

export interface LocatePick extends vscode.QuickPickItem {
  item: LocatedItem;
  location: vscode.Location;
}

let tokenCounter = 0;

/** The issue text: an explicit argument, else the selection(s), else a whole `*.issue.md`, else an input box. */
export async function getIssueText(arg?: unknown): Promise<string | undefined> {
  if (typeof arg === 'string' && arg.trim()) return arg;
  const editor = vscode.window.activeTextEditor;
  if (editor) {
    const selected = editor.selections
      .filter((s) => !s.isEmpty)
      .map((s) => editor.document.getText(s))
      .join('\n');
    if (selected.trim()) return selected;
    if (editor.document.fileName.endsWith('.issue.md')) {
      const whole = editor.document.getText();
      if (whole.trim()) return whole;
    }
  }
  const typed = await vscode.window.showInputBox({
    title: 'Locate issue',
    prompt: 'Paste the issue: a bug report, a stack trace or a failing test message',
    placeHolder: 'e.g. TypeError in parse_config when the file is empty',
    ignoreFocusOut: true,
  });
  return typed && typed.trim() ? typed : undefined;
}

export function formatScore(score: number): string {
  return Number.isFinite(score) ? score.toFixed(2) : '?';
}

/** One line per result, the same in every editor: `[0.87] name — reason`. */
export function formatItem(item: LocatedItem): string {
  return item.reason ? `[${formatScore(item.score)}] ${item.name} — ${item.reason}` : `[${formatScore(item.score)}] ${item.name}`;
}

export function toLocation(item: LocatedItem): vscode.Location {
  const r = item.range;
  return new vscode.Location(
    vscode.Uri.parse(item.uri),
    new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character),
  );
}

/**
 * Where the peek view and "open" put the cursor: the start of the item. Items span whole functions;
 * an empty range keeps the peek's preview to the entity's first line instead of its whole body.
 */
export function toAnchor(item: LocatedItem): vscode.Location {
  const s = item.range.start;
  return new vscode.Location(vscode.Uri.parse(item.uri), new vscode.Range(s.line, s.character, s.line, s.character));
}

export function isCancellation(err: unknown, token?: vscode.CancellationToken): boolean {
  if (token?.isCancellationRequested) return true;
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === REQUEST_CANCELLED;
}

/** Sends `locus/locateIssue` under a cancellable notification; `undefined` when cancelled. */
export async function requestLocations(
  client: LocusClient,
  text: string,
  settings: LocateSettings,
): Promise<LocateIssueResult | undefined> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Locus', cancellable: true },
    async (progress, token) => {
      progress.report({ message: 'locating issue…' });
      const workDoneToken = `locus-locate-${process.pid}-${++tokenCounter}`;
      // Forward the server's own progress (indexing, search turns) into the notification.
      const sub = client.onProgress?.(workDoneToken, (v) => {
        if (v && v.kind !== 'end' && (v.message || v.title)) progress.report({ message: v.message ?? v.title });
      });
      const params: LocateIssueParams = {
        text,
        maxResults: settings.maxResults,
        granularity: settings.granularity,
        workDoneToken,
      };
      try {
        const result = await client.sendRequest<LocateIssueResult | null>(LOCATE_ISSUE_METHOD, params, token);
        if (token.isCancellationRequested) return undefined;
        return result ?? { items: [] };
      } catch (err) {
        if (isCancellation(err, token)) return undefined;
        throw err;
      } finally {
        sub?.dispose();
      }
    },
  );
}

export function makePicks(items: LocatedItem[]): LocatePick[] {
  return items.map((item) => {
    const location = toAnchor(item);
    return {
      label: formatItem(item),
      description: item.kind,
      detail: `${vscode.workspace.asRelativePath(location.uri)}:${location.range.start.line + 1}`,
      item,
      location,
    };
  });
}

export function statsLine(result: LocateIssueResult): string {
  const s = result.stats ?? {};
  let head = `${result.items.length} location${result.items.length === 1 ? '' : 's'}`;
  if (typeof s.ms === 'number') head += ` in ${Math.round(s.ms)} ms`;
  const parts = [head];
  if (typeof s.turns === 'number') parts.push(`${s.turns} turns`);
  if (typeof s.calls === 'number') parts.push(`${s.calls} calls`);
  if (typeof s.efficiency === 'number') parts.push(`efficiency ${s.efficiency.toFixed(2)}`);
  return `Locus: ${parts.join(', ')}`;
}

export async function openLocation(location: vscode.Location): Promise<void> {
  const editor = await vscode.window.showTextDocument(location.uri, { selection: location.range, preview: true });
  editor?.revealRange?.(location.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}

/** Shows results in the peek view (anchored at the cursor, or at the top hit) and in a quick pick. */
export async function presentResults(result: LocateIssueResult, settings: LocateSettings): Promise<void> {
  const items = result.items ?? [];
  if (items.length === 0) {
    const notReady = result.stats && result.stats.indexReady === false;
    void vscode.window.showInformationMessage(
      notReady
        ? 'Locus found no location yet: the workspace is still being indexed. Try again in a moment.'
        : 'Locus found no location for this issue.',
    );
    return;
  }
  vscode.window.setStatusBarMessage(statsLine(result), 10_000);
  const locations = items.map(toAnchor);
  let editor = vscode.window.activeTextEditor;
  if (!editor) {
    await openLocation(locations[0]);
    editor = vscode.window.activeTextEditor;
  }
  if (editor) {
    await vscode.commands.executeCommand(
      'editor.action.peekLocations',
      editor.document.uri,
      editor.selection.active,
      locations,
      'peek',
    );
  }
  if (!settings.showQuickPick) return;
  const picked = await vscode.window.showQuickPick(makePicks(items), {
    title: `Locus — ${items.length} location${items.length === 1 ? '' : 's'} (score, name, reason)`,
    placeHolder: 'Open a location',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (picked) await openLocation(picked.location);
}

/** The whole command. Returns the result (for tests and for other extensions), or undefined. */
export async function locateIssueCommand(
  client: LocusClient,
  settings: LocateSettings,
  arg?: unknown,
): Promise<LocateIssueResult | undefined> {
  const text = await getIssueText(arg);
  if (!text) return undefined;
  let result: LocateIssueResult | undefined;
  try {
    result = await requestLocations(client, text, settings);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    void vscode.window.showErrorMessage(`Locus: locating the issue failed: ${msg}`);
    return undefined;
  }
  if (!result) {
    vscode.window.setStatusBarMessage('Locus: cancelled', 5_000);
    return undefined;
  }
  await presentResults(result, settings);
  return result;
}
