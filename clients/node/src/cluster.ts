/**
 * Finding the cluster: its address and token from the options, then
 * EMBER_ADDRESS / EMBER_AUTH_TOKEN, then this machine's latest `ember start`
 * (the session directory's cluster.json and token), as a Python driver's
 * init(address="auto") does.
 */

import * as fs from "node:fs";
import * as path from "node:path";

export const DEFAULT_SESSION_ROOT = "/tmp/ember-sessions";

export interface ClusterTarget {
  address: string; // the GCS, HOST:PORT
  token: string;
  tls: TlsFiles | null; // null: plaintext
}

/** Mutual TLS (clusters started with --tls): the cluster CA's certificate, and a certificate and key it signed (PEM). */
export interface TlsOptions {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  /** Or the files that hold them. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface TlsFiles {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function sessionRoot(): string {
  return process.env.EMBER_SESSION_ROOT || DEFAULT_SESSION_ROOT;
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

/** The newest session on this machine whose cluster serves `address` (a token to use). */
function sessionFor(address: string): string | null {
  let best: { dir: string; mtime: number } | null = null;
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(sessionRoot());
  } catch {
    return null;
  }
  for (const name of entries) {
    if (!name.startsWith("session_")) continue;
    const dir = path.join(sessionRoot(), name);
    const record = readJson(path.join(dir, "cluster.json"));
    const served = String(record?.gcs_address ?? "").split(",");
    if (!served.includes(address) || !fs.existsSync(path.join(dir, "token"))) continue;
    const mtime = fs.statSync(path.join(dir, "cluster.json")).mtimeMs;
    if (!best || mtime > best.mtime) best = { dir, mtime };
  }
  return best?.dir ?? null;
}

export function resolveTarget(address?: string, token?: string, tls?: TlsOptions | false): ClusterTarget {
  let addr = address || process.env.EMBER_ADDRESS || "";
  let sessionDir: string | null = null;
  if (!addr || addr === "auto") {
    const latest = path.join(sessionRoot(), "session_latest");
    const record = readJson(path.join(latest, "cluster.json"));
    if (!record?.gcs_address) {
      throw new Error(`no cluster address given (address, EMBER_ADDRESS) and no \`ember start\` on this machine ` +
        `(${latest}/cluster.json)`);
    }
    addr = String(record.gcs_address).split(",")[0];
    sessionDir = latest;
  }
  let tok = token || process.env.EMBER_AUTH_TOKEN || "";
  if (!tok || tls === undefined) sessionDir = sessionDir ?? sessionFor(addr);
  if (!tok) {
    if (sessionDir) tok = fs.readFileSync(path.join(sessionDir, "token"), "utf8").trim();
  }
  if (!tok) {
    throw new Error(`no token for the cluster at ${addr}: give token, or set EMBER_AUTH_TOKEN (the head's session ` +
      "directory has it in its `token` file)");
  }
  return { address: addr, token: tok, tls: tls === false ? null : tlsFiles(tls, sessionDir) };
}

function pem(value: Buffer | string | undefined, file: string | undefined, what: string): Buffer | undefined {
  if (value !== undefined) return Buffer.from(value);
  if (!file) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read the TLS ${what} file ${file}: ${(e as Error).message}`);
  }
}

/**
 * The TLS files: the options, else EMBER_TLS_CA / EMBER_TLS_CERT / EMBER_TLS_KEY
 * (as Ray's RAY_TLS_*), else the session directory's tls/ files (a client on a
 * node of the cluster, as its token); none of them: plaintext.
 */
function tlsFiles(options: TlsOptions | undefined, sessionDir: string | null): TlsFiles | null {
  let o: TlsOptions = options ?? {};
  if (!Object.values(o).some((v) => v !== undefined)) {
    const env = process.env;
    o = { caFile: env.EMBER_TLS_CA || undefined, certFile: env.EMBER_TLS_CERT || undefined,
          keyFile: env.EMBER_TLS_KEY || undefined };
  }
  if (!Object.values(o).some((v) => v !== undefined) && sessionDir) {
    const dir = path.join(sessionDir, "tls");
    const files = { caFile: path.join(dir, "ca.crt"), certFile: path.join(dir, "node.crt"), keyFile: path.join(dir, "node.key") };
    if (Object.values(files).every((f) => fs.existsSync(f))) o = files;
  }
  const ca = pem(o.ca, o.caFile, "CA");
  const cert = pem(o.cert, o.certFile, "certificate");
  const key = pem(o.key, o.keyFile, "key");
  if (!ca && !cert && !key) return null;
  if (!ca || !cert || !key) {
    throw new Error("TLS needs all three: the cluster's CA (tls.ca / tls.caFile / EMBER_TLS_CA), a certificate it " +
      "signed (tls.cert / tls.certFile / EMBER_TLS_CERT) and its key (tls.key / tls.keyFile / EMBER_TLS_KEY)");
  }
  return { ca, cert, key };
}
