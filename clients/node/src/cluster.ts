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

export function resolveTarget(address?: string, token?: string): ClusterTarget {
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
  if (!tok) {
    sessionDir = sessionDir ?? sessionFor(addr);
    if (sessionDir) tok = fs.readFileSync(path.join(sessionDir, "token"), "utf8").trim();
  }
  if (!tok) {
    throw new Error(`no token for the cluster at ${addr}: give token, or set EMBER_AUTH_TOKEN (the head's session ` +
      "directory has it in its `token` file)");
  }
  return { address: addr, token: tok };
}
