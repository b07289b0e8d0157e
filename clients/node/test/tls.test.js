// ember-client against a cluster started with `ember start --head --tls`:
// mutual TLS with the cluster's files (as options, from the environment, or
// found in the session directory); plaintext and another CA's certificate
// refused.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const { connect, RequestError } = require("..");
const { startCluster, otherCa } = require("./cluster");

let cluster;
let other;
let tlsDir;

before(async () => {
  cluster = await startCluster("--tls");
  tlsDir = path.join(cluster.sessionDir, "tls");
  other = otherCa(cluster.env);
});

after(() => {
  if (other) other.remove();
  if (cluster) cluster.stop();
});

function files(dir) {
  return { caFile: path.join(dir, "ca.crt"), certFile: path.join(dir, "node.crt"), keyFile: path.join(dir, "node.key") };
}

test("mutual TLS with the cluster's files as options (files or PEM contents)", async () => {
  const client = await connect({ address: cluster.address, token: cluster.token, codeSearchPath: [cluster.code],
                                 tls: files(tlsDir) });
  assert.equal(await client.call("polyglot_fns:add", 2, 3), 5);
  const big = Buffer.alloc(3 << 20, 9);
  assert.ok((await client.get(await client.put(big))).equals(big));
  await client.close();
  const pem = { ca: fs.readFileSync(path.join(tlsDir, "ca.crt")), cert: fs.readFileSync(path.join(tlsDir, "node.crt")),
                key: fs.readFileSync(path.join(tlsDir, "node.key")).toString() };
  const again = await connect({ address: cluster.address, token: cluster.token, codeSearchPath: [cluster.code], tls: pem });
  assert.equal(await again.call("polyglot_fns:add", 1, 1), 2);
  await again.close();
});

test("TLS files from EMBER_TLS_* and from the session directory", async () => {
  const saved = { ...process.env };
  try {
    const f = files(tlsDir);
    Object.assign(process.env, { EMBER_TLS_CA: f.caFile, EMBER_TLS_CERT: f.certFile, EMBER_TLS_KEY: f.keyFile });
    const byEnv = await connect({ address: cluster.address, token: cluster.token, codeSearchPath: [cluster.code] });
    assert.equal(await byEnv.call("polyglot_fns:add", 4, 5), 9);
    await byEnv.close();
    delete process.env.EMBER_TLS_CA;
    delete process.env.EMBER_TLS_CERT;
    delete process.env.EMBER_TLS_KEY;
    process.env.EMBER_SESSION_ROOT = cluster.root; // (this machine's latest `ember start`: its token and tls/ files)
    const bySession = await connect({ codeSearchPath: [cluster.code] });
    assert.equal(await bySession.call("polyglot_fns:add", 20, 22), 42);
    await bySession.close();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test("plaintext, another CA's certificate and incomplete options are refused", async () => {
  await assert.rejects(connect({ address: cluster.address, token: cluster.token, tls: false }),
    (e) => e instanceof RequestError && e.code === 14 && /if the cluster uses TLS/.test(e.details));
  await assert.rejects(connect({ address: cluster.address, token: cluster.token, tls: files(other.dir) }),
    (e) => e instanceof RequestError && e.code === 14);
  const mixed = { ...files(other.dir), caFile: path.join(tlsDir, "ca.crt") }; // the right CA, another CA's client
  await assert.rejects(connect({ address: cluster.address, token: cluster.token, tls: mixed }),
    (e) => e instanceof RequestError && e.code === 14);
  await assert.rejects(connect({ address: cluster.address, token: cluster.token, tls: { caFile: files(tlsDir).caFile } }),
    /TLS needs all three/);
  await assert.rejects(connect({ address: cluster.address, token: cluster.token,
                                 tls: { ...files(tlsDir), keyFile: "/nonexistent.key" } }), /\/nonexistent\.key/);
});
