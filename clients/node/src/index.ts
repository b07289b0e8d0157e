/**
 * ember-client: call Python functions and actors of an Ember cluster from
 * Node.js, and put and get objects, over Ember's language-neutral client API.
 *
 *   const { connect } = require("ember-client");
 *   const client = await connect({ codeSearchPath: ["/srv/code"] });
 *   await client.call("mymod:add", 1, 2);   // 3
 *   await client.close();
 */

export { ActorHandle, Client, connect } from "./client";
export type { ActorOptions, ConnectOptions, NodeInfo, TaskOptions } from "./client";
export type { TlsOptions } from "./cluster";
export { ObjectRef } from "./codec";
export { EmberError, GetTimeoutError, RemoteError, RequestError } from "./errors";
