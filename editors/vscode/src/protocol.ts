//! The Locus LSP extension: the custom request and its data, as the server defines them.

/** The custom request that ranks code locations for an issue text. */
export const LOCATE_ISSUE_METHOD = 'locus/locateIssue';

/** JSON-RPC error code for a request the client cancelled (LSP `RequestCancelled`). */
export const REQUEST_CANCELLED = -32800;

export type Granularity = 'file' | 'function';

export interface LocateIssueParams {
  text: string;
  maxResults?: number;
  granularity?: Granularity;
  workDoneToken?: string | number;
}

export interface LspPosition { line: number; character: number; }
export interface LspRange { start: LspPosition; end: LspPosition; }

/** A valid LSP `Location` plus what Locus knows about it. */
export interface LocatedItem {
  uri: string;
  range: LspRange;
  score: number;
  name: string;
  kind: string;
  reason: string;
}

export interface LocateStats {
  ms?: number;
  turns?: number;
  calls?: number;
  efficiency?: number;
  indexReady?: boolean;
  files?: number;
  entities?: number;
  [key: string]: unknown;
}

export interface LocateIssueResult {
  items: LocatedItem[];
  stats?: LocateStats;
}
