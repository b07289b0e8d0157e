// A real cluster for the tests: `ember start --head` on loopback with a
// session root of its own (so it never touches another cluster), stopped
// (`ember stop`) after. `ember` and `python` are the ones on PATH, or
// EMBER_BIN / EMBER_PYTHON.
"use strict";

const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const EMBER = process.env.EMBER_BIN || "ember";
const PYTHON = process.env.EMBER_PYTHON || "python3";
const CODE = path.resolve(__dirname, "../../../tests/polyglot_code");

async function startCluster(...flags) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "ember-node-test-"));
  // (the GCS and the dashboard pick free ports themselves: no port chosen here and taken meanwhile)
  const env = { ...process.env, EMBER_SESSION_ROOT: root, EMBER_DASHBOARD_PORT: "0" };
  delete env.EMBER_ADDRESS;
  delete env.EMBER_AUTH_TOKEN;
  delete env.EMBER_TLS_CA;
  delete env.EMBER_TLS_CERT;
  delete env.EMBER_TLS_KEY;
  execFileSync(EMBER, ["start", "--head", "--port", "0", "--num-cpus", "2", ...flags],
               { env, stdio: "pipe", timeout: 120_000 });
  const sessionDir = fs.realpathSync(path.join(root, "session_latest"));
  const token = fs.readFileSync(path.join(sessionDir, "token"), "utf8").trim();
  const address = JSON.parse(fs.readFileSync(path.join(sessionDir, "cluster.json"), "utf8")).gcs_address;
  return {
    root, env, address, token, sessionDir, code: CODE,
    stop() {
      const out = spawnSync(EMBER, ["stop"], { env, encoding: "utf8", timeout: 120_000 });
      fs.rmSync(root, { recursive: true, force: true });
      if (out.status !== 0) throw new Error(`ember stop failed: ${out.stderr}`);
    },
    /** Run a Python driver on the cluster; its stdout's last line, parsed as JSON. */
    python(source) {
      const program = `import json, sys\nsys.path.insert(0, ${JSON.stringify(CODE)})\nimport ember\n` +
        `from ember.job_config import JobConfig\n` +
        `ember.init(address="${address}", job_config=JobConfig(code_search_path=[${JSON.stringify(CODE)}]), ` +
        `log_to_driver=False)\n${source}\n`;
      const out = spawnSync(PYTHON, ["-c", program], { env, encoding: "utf8", timeout: 120_000 });
      if (out.status !== 0) throw new Error(`python driver failed (${out.status}):\n${out.stderr}`);
      const lines = out.stdout.trim().split("\n");
      return JSON.parse(lines[lines.length - 1]);
    },
  };
}

/** Files of a CA that is not the cluster's, and a 127.0.0.1 certificate it signed (`ember tls`). */
function otherCa(env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ember-other-ca-"));
  execFileSync(EMBER, ["tls", "ca", dir, "--name", "other"], { env, stdio: "pipe" });
  execFileSync(EMBER, ["tls", "node", dir, "--ca-dir", dir, "--host", "127.0.0.1"], { env, stdio: "pipe" });
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

module.exports = { startCluster, otherCa };
