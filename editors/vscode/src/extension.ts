//! Extension entry point: starts `locus lsp` with vscode-languageclient and registers the commands.
//! The palette command is `locus.locateIssue.run`; `locus.locateIssue` belongs to the server
//! (vscode-languageclient registers it from `executeCommandProvider`).

import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  WorkDoneProgress,
} from 'vscode-languageclient/node';
import { locateIssueCommand, LocateSettings, LocusClient, presentResults } from './locate';
import { LocateIssueResult } from './protocol';
import { resolveServerPath, ServerNotFoundError } from './serverPath';

let client: LanguageClient | undefined;
let starting: Promise<LanguageClient | undefined> | undefined;
let output: vscode.OutputChannel | undefined;
let lastResult: LocateIssueResult | undefined;

function settings(): LocateSettings {
  const c = vscode.workspace.getConfiguration('locus');
  const g = c.get<string>('granularity', 'function');
  return {
    maxResults: c.get<number>('maxResults', 10),
    granularity: g === 'file' ? 'file' : 'function',
    showQuickPick: c.get<boolean>('showQuickPick', true),
  };
}

/** The settings the server reads (`initializationOptions` and `didChangeConfiguration` under `locus`). */
function serverSettings(): Record<string, unknown> {
  const c = vscode.workspace.getConfiguration('locus');
  const out: Record<string, unknown> = {};
  for (const key of ['maxResults', 'granularity', 'modelDir', 'runtimePath', 'budgetMs', 'exclude']) {
    const v = c.get(key);
    if (v !== undefined && v !== null && v !== '') out[key] = v;
  }
  return out;
}

async function startClient(context: vscode.ExtensionContext): Promise<LanguageClient | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  let server;
  try {
    server = resolveServerPath({
      setting: vscode.workspace.getConfiguration('locus').get<string>('serverPath', ''),
      extensionPath: context.extensionPath,
      workspaceFolder: folder,
      envPath: process.env.PATH,
    });
  } catch (err) {
    if (err instanceof ServerNotFoundError) {
      const choice = await vscode.window.showErrorMessage(err.message, 'Open Settings');
      if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'locus.serverPath');
      return undefined;
    }
    throw err;
  }
  output?.appendLine(`Starting ${server.path} lsp (found via ${server.source})`);
  const serverOptions: ServerOptions = {
    run: { command: server.path, args: ['lsp'] },
    debug: { command: server.path, args: ['lsp'], options: { env: { ...process.env, RUST_LOG: 'debug' } } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'file', language: 'rust' },
      { scheme: 'file', pattern: '**/*.issue.md' },
    ],
    initializationOptions: serverSettings(),
    synchronize: { configurationSection: 'locus' },
    outputChannel: output,
  };
  const c = new LanguageClient('locus', 'Locus', serverOptions, clientOptions);
  await c.start();
  client = c;
  return c;
}

async function ensureClient(context: vscode.ExtensionContext): Promise<LanguageClient | undefined> {
  if (client && client.state === State.Running) return client;
  if (client && client.state === State.Starting && starting) return starting;
  if (!starting) {
    starting = startClient(context).finally(() => {
      starting = undefined;
    });
  }
  return starting;
}

async function stopClient(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    try {
      await c.stop();
    } catch (err) {
      output?.appendLine(`Stopping the server failed: ${String(err)}`);
    }
  }
}

function adapter(c: LanguageClient): LocusClient {
  return {
    sendRequest: <R>(method: string, params: unknown, token?: vscode.CancellationToken) =>
      c.sendRequest<R>(method, params, token),
    onProgress: (token, handler) => c.onProgress(WorkDoneProgress.type, token, handler),
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<{ locate: (text: string) => Promise<LocateIssueResult | undefined> }> {
  output = vscode.window.createOutputChannel('Locus');
  context.subscriptions.push(output);

  const run = async (arg?: unknown) => {
    const c = await ensureClient(context);
    if (!c) return undefined;
    const result = await locateIssueCommand(adapter(c), settings(), arg);
    if (result && result.items.length > 0) {
      lastResult = result;
      void vscode.commands.executeCommand('setContext', 'locus.hasResults', true);
    }
    return result;
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('locus.locateIssue.run', run),
    vscode.commands.registerCommand('locus.showResults', async () => {
      if (lastResult) await presentResults(lastResult, settings());
    }),
    vscode.commands.registerCommand('locus.restartServer', async () => {
      await stopClient();
      await ensureClient(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('locus.serverPath')) {
        await stopClient();
        await ensureClient(context);
      }
    }),
    { dispose: () => void stopClient() },
  );

  try {
    await ensureClient(context);
  } catch (err) {
    void vscode.window.showErrorMessage(`Locus: the server did not start: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { locate: (text: string) => run(text) };
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
