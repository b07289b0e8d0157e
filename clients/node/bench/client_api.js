// What bench/client_api.py measures for the Node client: sync call and get
// round trips, 1,000 tasks submitted then got, an actor's methods called
// the same two ways, and put and get of a 100 MB Arrow table. Prints one
// JSON line.
//
//   node bench/client_api.js CODE_DIR CALLS TASKS ROUNDS [TABLE_MB]   (cluster from EMBER_ADDRESS / EMBER_AUTH_TOKEN; after npm run build)
"use strict";

// (EMBER_NODE_CLIENT: another build of the client, e.g. an older tree's, to compare)
const { connect } = require(process.env.EMBER_NODE_CLIENT || "..");
const { tableFromArrays } = require("apache-arrow");

async function main() {
  const [code, calls, tasks, rounds, tableMb] = [process.argv[2], ...process.argv.slice(3).map(Number)];
  const client = await connect({ codeSearchPath: [code], logToDriver: false });
  for (let i = 0; i < 20; i++) await client.call("polyglot_fns:add", i, 1); // (warm: workers, channels)
  const now = () => performance.now() / 1000;

  let t0 = now();
  for (let i = 0; i < calls; i++) await client.call("polyglot_fns:add", i, 1);
  const callMs = [((now() - t0) * 1000) / calls];

  const small = await client.put({ k: 1 });
  t0 = now();
  for (let i = 0; i < calls; i++) await client.get(small);
  const getMs = [((now() - t0) * 1000) / calls];

  const throughput = async (submit) => {
    const rates = [];
    for (let r = 0; r < rounds; r++) {
      t0 = now();
      const refs = [];
      for (let i = 0; i < tasks; i++) refs.push(submit(i));
      await client.get(refs);
      rates.push(tasks / (now() - t0));
    }
    return rates;
  };
  const tasksPerS = await throughput((i) => client.submit("polyglot_fns:add", [i, 1]));

  const actor = await client.createActor("polyglot_fns:Counter", [0]);
  for (let i = 0; i < 20; i++) await actor.call("inc", 1);
  t0 = now();
  for (let i = 0; i < calls; i++) await actor.call("inc", 1);
  const actorCallMs = [((now() - t0) * 1000) / calls];
  const actorCallsPerS = await throughput(() => actor.submit("inc", [1]));
  await client.kill(actor);

  const out = { call_ms: callMs, get_ms: getMs, tasks_per_s: tasksPerS, actor_call_ms: actorCallMs,
                actor_calls_per_s: actorCallsPerS };
  if (tableMb) {
    // One float64 column of TABLE_MB * 1e6 bytes; GB/s of 1e9 bytes of column data.
    const n = Math.floor((tableMb * 1e6) / 8);
    const table = tableFromArrays({ x: Float64Array.from({ length: n }, (_, i) => i) });
    out.table_put_gb_s = [];
    out.table_get_gb_s = [];
    for (let r = 0; r <= rounds; r++) { // (round 0 warms up)
      t0 = now();
      const ref = await client.put(table);
      const put = now() - t0;
      t0 = now();
      const got = await client.get(ref);
      const get = now() - t0;
      if (got.numRows !== n || got.getChild("x").get(n - 1) !== n - 1) throw new Error("the table came back wrong");
      client.release(ref);
      if (r === 0) continue;
      out.table_put_gb_s.push((n * 8) / 1e9 / put);
      out.table_get_gb_s.push((n * 8) / 1e9 / get);
    }
  }
  console.log(JSON.stringify(out));
  await client.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
