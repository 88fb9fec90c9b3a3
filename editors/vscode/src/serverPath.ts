//! Finding the `locus` executable: the setting, then the server bundled in the extension, then `PATH`.
//! Pure logic (no `vscode` import) so it can be unit-tested.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export type ServerSource = 'setting' | 'bundled' | 'path';

export interface ResolvedServer {
  path: string;
  source: ServerSource;
}

export interface ResolveInput {
  /** The `locus.serverPath` setting ("" when unset). */
  setting: string;
  /** The extension's install folder: a platform `.vsix` carries the release bundle in `server/`
   *  (`server/bin/locus` beside its runtime and models); a plain one may carry `server/locus`. */
  extensionPath: string;
  /** The first workspace folder, to resolve a relative setting and `${workspaceFolder}`. */
  workspaceFolder?: string;
  /** The `PATH` to search last. */
  envPath?: string;
  platform?: NodeJS.Platform;
  isExecutable?: (p: string) => boolean;
  /** Makes a bundled file executable when the archive lost its mode; true when it now is. */
  makeExecutable?: (p: string) => boolean;
}

export class ServerNotFoundError extends Error {}

function defaultMakeExecutable(p: string): boolean {
  try {
    if (!fs.statSync(p).isFile()) return false;
    fs.chmodSync(p, 0o755);
    return defaultIsExecutable(p);
  } catch {
    return false;
  }
}

function defaultIsExecutable(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function expand(setting: string, workspaceFolder: string | undefined): string {
  let p = setting.trim();
  if (p === '~' || p.startsWith('~/')) p = path.join(os.homedir(), p.slice(1));
  if (workspaceFolder) p = p.split('${workspaceFolder}').join(workspaceFolder);
  if (!path.isAbsolute(p) && workspaceFolder && p.includes(path.sep)) p = path.resolve(workspaceFolder, p);
  return p;
}

export function resolveServerPath(input: ResolveInput): ResolvedServer {
  const isExec = input.isExecutable ?? defaultIsExecutable;
  const platform = input.platform ?? process.platform;
  const exe = platform === 'win32' ? 'locus.exe' : 'locus';
  const setting = input.setting.trim();
  if (setting) {
    const p = expand(setting, input.workspaceFolder);
    if (path.isAbsolute(p)) {
      if (isExec(p)) return { path: p, source: 'setting' };
      throw new ServerNotFoundError(
        `locus.serverPath is "${setting}", but ${p} is not an executable file. Fix the setting or clear it to use the bundled server or the one on PATH.`,
      );
    }
    // A bare command name: look it up on PATH like a shell would.
    const found = searchPath(p, input.envPath, platform, isExec);
    if (found) return { path: found, source: 'setting' };
    throw new ServerNotFoundError(`locus.serverPath is "${setting}", which is not found on PATH.`);
  }
  // The release bundle first (it finds its runtime, encoder and models beside itself), then a lone
  // binary. A .vsix is a zip, which may not keep the executable bit: restore it once.
  const makeExec = input.makeExecutable ?? defaultMakeExecutable;
  for (const bundled of [path.join(input.extensionPath, 'server', 'bin', exe), path.join(input.extensionPath, 'server', exe)]) {
    if (isExec(bundled) || (platform !== 'win32' && makeExec(bundled))) return { path: bundled, source: 'bundled' };
  }
  const onPath = searchPath(exe, input.envPath, platform, isExec);
  if (onPath) return { path: onPath, source: 'path' };
  throw new ServerNotFoundError(
    'Cannot find the Locus server: set "locus.serverPath" to the locus executable ' +
      '(built with `cargo build --release -p locus`), or put `locus` on PATH.',
  );
}

function searchPath(
  name: string,
  envPath: string | undefined,
  platform: NodeJS.Platform,
  isExec: (p: string) => boolean,
): string | undefined {
  const sep = platform === 'win32' ? ';' : ':';
  for (const dir of (envPath ?? '').split(sep)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExec(candidate)) return candidate;
  }
  return undefined;
}
