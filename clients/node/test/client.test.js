// ember-client against a real cluster (`ember start --head`), with Python
// drivers of the same cluster for interop both ways.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { tableFromArrays, Table } = require("apache-arrow");

const { connect, ObjectRef, RemoteError, RequestError, GetTimeoutError } = require("..");
const { startCluster } = require("./cluster");

let cluster;
let client;

before(async () => {
  cluster = await startCluster();
  client = await connect({ address: cluster.address, token: cluster.token, codeSearchPath: [cluster.code],
                           namespace: "interop" });
});

after(async () => {
  if (client) await client.close();
  if (cluster) cluster.stop();
});

test("call runs a Python function by name", async () => {
  assert.equal(await client.call("polyglot_fns:add", 2, 3), 5);
  assert.equal(await client.call("polyglot_fns:decorated_fn", 4), 40);
});

test("values arrive in Python as its natural types and come back as Node's", async () => {
  const got = await client.call("polyglot_fns:echo", Buffer.from([0, 255]), { k: [1, 2.5, null, true] }, "text",
                                2n ** 62n);
  assert.deepEqual(got.types, ["bytes", "dict", "str", "int"]);
  assert.ok(Buffer.isBuffer(got.args[0]) && got.args[0].equals(Buffer.from([0, 255])));
  assert.deepEqual(got.args[1], { k: [1, 2.5, null, true] });
  assert.equal(got.args[3], 2n ** 62n);
});

test("submit returns refs at once; get, kwargs and num_returns", async () => {
  const refs = [1, 2, 3].map((i) => client.submit("polyglot_fns:add", [i, 10]));
  assert.ok(refs.every((r) => r instanceof ObjectRef));
  assert.deepEqual(await client.get(refs), [11, 12, 13]);
  const [a, b] = client.submit("polyglot_fns:pair", [7], { numReturns: 2 });
  assert.deepEqual(await client.get([a, b]), [7, -7]);
  const echoed = await client.get(client.submit("polyglot_fns:echo", [], { kwargs: { flag: true }, numCpus: 0.5 }));
  assert.deepEqual(echoed.kwargs, { flag: true });
});

test("a Python exception is a typed RemoteError with the traceback", async () => {
  await assert.rejects(client.call("polyglot_fns:fail", "bad input 7"), (e) => {
    assert.ok(e instanceof RemoteError);
    assert.equal(e.kind, "CODE");
    assert.equal(e.type, "ValueError");
    assert.equal(e.remoteMessage, "bad input 7");
    assert.match(e.traceback, /polyglot_fns\.py/);
    return true;
  });
  await assert.rejects(client.call("no_such_module:fn"), (e) => e instanceof RemoteError && e.type === "ImportError"
    && /code search path/.test(e.remoteMessage));
  await assert.rejects(client.call("polyglot_fns:unsendable"), (e) => e.type === "TypeError"
    && /has no language-neutral encoding/.test(e.remoteMessage));
});

test("bad input is refused with what to fix, and the client goes on", async () => {
  await assert.rejects(client.call("not a name"), (e) => e instanceof RequestError
    && /is not an importable name/.test(e.details));
  assert.throws(() => client.submit("polyglot_fns:add", [() => 1]), /function, which has no language-neutral/);
  assert.throws(() => client.submit("polyglot_fns:add", [new Date()]), /Date, which has no language-neutral/);
  const ref = await client.put(1);
  client.release(ref);
  await assert.rejects(client.get(ref), (e) => e instanceof RequestError && /was released/.test(e.details));
  const forged = new ObjectRef(Buffer.alloc(20, 7)); // a ref the session never had: the raylet refuses it
  await assert.rejects(client.get(forged), (e) => e instanceof RequestError && /not held by this session/.test(e.details));
  assert.equal(await client.call("polyglot_fns:add", 1, 1), 2);
  await assert.rejects(connect({ address: cluster.address, token: "wrong" }), (e) => e instanceof RequestError
    && e.code === 16);
});

test("put and get: maps, bytes, big values and Arrow tables", async () => {
  const map = await client.put({ a: [1, 2], b: Buffer.from("xy") });
  assert.deepEqual(await client.get(map), { a: [1, 2], b: Buffer.from("xy") });
  const big = Buffer.alloc(5 << 20, 7);
  const bigRef = await client.put(big);
  assert.ok((await client.get(bigRef)).equals(big));
  const table = tableFromArrays({ x: Int32Array.from([1, 2, 3]), y: Float64Array.from([0.5, 1.5, 2.5]) });
  const tableRef = await client.put(table);
  const back = await client.get(tableRef);
  assert.ok(back instanceof Table);
  assert.deepEqual([...back.getChild("x")], [1, 2, 3]);
  assert.equal(await client.call("polyglot_fns:table_sum", table, "y"), 4.5);
  assert.equal(await client.call("polyglot_fns:describe", tableRef), "pyarrow.lib.Table");
  // A table of several chunks (sent as its IPC stream behind a header, read back from the pieces in one copy),
  // alone and inside a map (decoded whole).
  const n = 400_000;
  const wide = tableFromArrays({ i: Float64Array.from({ length: n }, (_, k) => k) });
  const wideRef = await client.put(wide);
  const wideBack = await client.get(wideRef);
  assert.equal(wideBack.numRows, n);
  assert.equal(wideBack.getChild("i").get(n - 1), n - 1);
  assert.equal(await client.call("polyglot_fns:table_sum", wideRef, "i"), (n * (n - 1)) / 2);
  const inMap = await client.get(await client.put({ t: wide, k: 1 }));
  assert.equal(inMap.k, 1);
  assert.equal(inMap.t.getChild("i").get(n - 1), n - 1);
  const made = await client.call("polyglot_fns:table_of", 300_000); // (a Python table of several chunks)
  assert.equal(Number(made.getChild("sq").get(299_999)), 299_999 ** 2);
});

test("a Python task's table, bytes and dict are Node's Table, Buffer and object", async () => {
  const table = await client.call("polyglot_fns:table_of", 4);
  assert.ok(table instanceof Table);
  assert.deepEqual([...table.getChild("sq")].map(Number), [0, 1, 4, 9]);
  const echoed = await client.call("polyglot_fns:echo", Buffer.from("raw"));
  assert.ok(Buffer.isBuffer(echoed.args[0]));
});

test("wait and get timeouts", async () => {
  const slow = client.submit("polyglot_fns:sleep_then", [3, "late"]);
  const fast = client.submit("polyglot_fns:add", [1, 2]);
  const [ready, notReady] = await client.wait([slow, fast], { numReturns: 1, timeout: 20 });
  assert.deepEqual(ready, [fast]);
  assert.deepEqual(notReady, [slow]);
  await assert.rejects(client.get(slow, { timeout: 0.2 }), (e) => e instanceof GetTimeoutError);
  assert.equal(await client.get(slow), "late");
});

test("submissions of one tick go in several messages, in order; get takes values as they come", async () => {
  // 250 calls in one tick: more than one Submit message on the calls stream, sent before the first is answered.
  const counter = await client.createActor("polyglot_fns:Counter", [0]);
  const adds = [];
  const incs = [];
  for (let i = 0; i < 250; i++) {
    adds.push(client.submit("polyglot_fns:add", [i, 1]));
    incs.push(counter.submit("inc"));
  }
  const later = client.submit("polyglot_fns:add", [adds[0], 100]); // a ref from the first message, in the third
  assert.deepEqual(await client.get(adds), adds.map((_, i) => i + 1));
  assert.deepEqual(await client.get(incs), incs.map((_, i) => i + 1)); // (an actor's calls in order across messages)
  assert.equal(await client.get(later), 101);
  // The fast value arrives first; each lands in its place, a ref asked twice in both.
  const slow = client.submit("polyglot_fns:sleep_then", [1, "slow"], { numCpus: 0 });
  const fast = client.submit("polyglot_fns:add", [1, 2]);
  assert.deepEqual(await client.get([slow, fast, fast]), ["slow", 3, 3]);
  // A refused submission among good ones of the same tick: all of its message is refused, and get says why.
  const good = client.submit("polyglot_fns:add", [2, 2]);
  const bad = client.submit("not a name");
  await assert.rejects(client.get(bad), (e) => e instanceof RequestError && /is not an importable name/.test(e.details));
  await assert.rejects(client.get(good), (e) => e instanceof RequestError && /is not an importable name/.test(e.details));
  assert.equal(await client.get(client.submit("polyglot_fns:add", [2, 2])), 4);
  await client.kill(counter);
});

test("actors: state, ordered calls, kill", async () => {
  const counter = await client.createActor("polyglot_fns:Counter", [10]);
  await counter.ready();
  const refs = [counter.submit("inc"), counter.submit("inc"), counter.submit("inc", [], { kwargs: { by: 5 } })];
  assert.deepEqual(await client.get(refs), [11, 12, 17]);
  await assert.rejects(counter.call("fail"), (e) => e instanceof RemoteError && e.type === "KeyError");
  await client.kill(counter);
  await assert.rejects(counter.call("inc"), (e) => e instanceof RemoteError && e.kind === "SYSTEM"
    && e.type === "ActorDiedError");
});

test("a named actor made in Node is called from a Python driver", async () => {
  const made = await client.createActor("polyglot_fns:Counter", [100], { name: "node-made", lifetime: "detached" });
  assert.equal(await made.call("inc"), 101);
  const fromPython = cluster.python(
    'h = ember.get_actor("node-made", namespace="interop")\nprint(json.dumps(ember.get(h.inc.remote(5))))');
  assert.equal(fromPython, 106);
  const again = await client.getActor("node-made");
  assert.equal(await again.call("value"), 106);
  await client.kill(again);
});

test("a named actor made in Python is called from Node", async () => {
  cluster.python('from polyglot_fns import Decorated\n' +
    'h = Decorated.options(name="py-made", namespace="interop", lifetime="detached").remote()\n' +
    'print(json.dumps(ember.get(h.hello.remote("python"))))');
  const actor = await client.getActor("py-made", { namespace: "interop" });
  assert.equal(await actor.call("hello", "node"), "hello node");
  await client.kill(actor);
});

test("objects put from Node are a dict, bytes and a pyarrow.Table in Python", async () => {
  const store = await client.createActor("polyglot_fns:Store", [], { name: "store", lifetime: "detached" });
  const table = tableFromArrays({ v: Float64Array.from([1, 2, 3]) });
  const refs = [await client.put({ answer: 42 }), await client.put(Buffer.from("raw bytes")), await client.put(table)];
  // Passed at top level: Python gets the values.
  assert.equal(await store.call("put", "map", refs[0]), "builtins.dict");
  assert.equal(await store.call("put", "bytes", refs[1]), "builtins.bytes");
  assert.equal(await store.call("put", "table", refs[2]), "pyarrow.lib.Table");
  // Nested: the refs themselves, which a Python driver gets.
  assert.equal(await store.call("keep_refs", "refs", refs), 3);
  const seen = cluster.python(
    'import pyarrow as pa\ns = ember.get_actor("store", namespace="interop")\n' +
    'm, b, t = ember.get(ember.get(s.get.remote("refs")))\n' +
    'print(json.dumps([type(m).__name__, m, type(b).__name__, b.decode(), type(t).__name__, t.column("v").to_pylist()]))');
  assert.deepEqual(seen, ["dict", { answer: 42 }, "bytes", "raw bytes", "Table", [1, 2, 3]]);
  await client.kill(store);
});

test("nodes and cluster resources", async () => {
  const nodes = await client.nodes();
  assert.equal(nodes.length, 1);
  assert.ok(nodes[0].Alive && nodes[0].IsHead);
  assert.equal((await client.clusterResources()).CPU, 2);
});

test("address and token default to this machine's latest `ember start`", async () => {
  const saved = process.env.EMBER_SESSION_ROOT;
  process.env.EMBER_SESSION_ROOT = cluster.root;
  try {
    const c = await connect({ codeSearchPath: [cluster.code] });
    assert.equal(await c.call("polyglot_fns:add", 20, 22), 42);
    await c.close();
  } finally {
    if (saved === undefined) delete process.env.EMBER_SESSION_ROOT;
    else process.env.EMBER_SESSION_ROOT = saved;
  }
});
