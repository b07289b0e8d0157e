// What bench/client_api.py measures for the Node client: sync call and get
// round trips, and 1,000 tasks submitted then got. Prints one JSON line.
//
//   node bench/client_api.js CODE_DIR CALLS TASKS ROUNDS   (cluster from EMBER_ADDRESS / EMBER_AUTH_TOKEN; after npm run build)
"use strict";

// (EMBER_NODE_CLIENT: another build of the client, e.g. an older tree's, to compare)
const { connect } = require(process.env.EMBER_NODE_CLIENT || "..");

async function main() {
  const [code, calls, tasks, rounds] = [process.argv[2], ...process.argv.slice(3).map(Number)];
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

  const tasksPerS = [];
  for (let r = 0; r < rounds; r++) {
    t0 = now();
    const refs = [];
    for (let i = 0; i < tasks; i++) refs.push(client.submit("polyglot_fns:add", [i, 1]));
    await client.get(refs);
    tasksPerS.push(tasks / (now() - t0));
  }
  console.log(JSON.stringify({ call_ms: callMs, get_ms: getMs, tasks_per_s: tasksPerS }));
  await client.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
