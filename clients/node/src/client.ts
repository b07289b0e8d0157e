/**
 * The Ember client: Python functions and actors called by name, objects put
 * and got, over the client API (proto/ember/v1/client_api.proto) of one
 * raylet. Submissions made in the same tick go in one message (or a few, so
 * the first tasks start while later ones are sent), on the session's one
 * calls stream, as do gets and sync calls; refs are
 * known at once (the client names each call's task id) and counted: a ref
 * that is released, or garbage collected, stops holding its object, and
 * everything the session holds is released when it closes.
 */

import * as crypto from "node:crypto";
import {
  credentials, Metadata, status as Status, type ClientDuplexStream, type ClientReadableStream, type ServiceError,
} from "@grpc/grpc-js";

import { makeCodec, ObjectRef } from "./codec";
import { resolveTarget, type TlsOptions } from "./cluster";
import { EmberError, fromGrpc, GetTimeoutError, RemoteError, RequestError } from "./errors";
import {
  ActorOptions as ActorOptionsMessage,
  ActorRef,
  Call,
  ClientApiClient,
  ConnectRequest,
  Connected,
  CreateActorReply,
  CreateActorRequest,
  Error_Kind,
  type Error as GrpcError,
  GetReply,
  GetRequest,
  KillActorRequest,
  LookupActorReply,
  LookupActorRequest,
  NodesReply,
  NodesRequest,
  PutReply,
  PutRequest,
  ReleaseRequest,
  RunRequest,
  SessionEvent,
  SubmitRequest,
  TaskOptions as TaskOptionsMessage,
  WaitReply,
  WaitRequest,
} from "./generated/ember/v1/client_api";
import { ClientCallsClient, TaggedReply, TaggedRun } from "./generated/ember/v1/client_calls";
import { GcsClient, GetAllNodesReply, GetAllNodesRequest } from "./generated/ember/v1/gcs";

export interface ConnectOptions {
  /** The cluster's GCS, "HOST:PORT" (default EMBER_ADDRESS, then this machine's latest `ember start`). */
  address?: string;
  /** The cluster token (default EMBER_AUTH_TOKEN, then the session's token file). */
  token?: string;
  /** Directories on the cluster's machines put first on the workers' import path for this client's calls. */
  codeSearchPath?: string[];
  /** The namespace of named actors (default: a fresh anonymous one). */
  namespace?: string;
  /** Print what the client's tasks print, and warnings (default true). */
  logToDriver?: boolean;
  /**
   * Mutual TLS for a cluster started with --tls: its CA and a certificate and key it signed (PEM, or their files).
   * Default: EMBER_TLS_CA / EMBER_TLS_CERT / EMBER_TLS_KEY, then the session directory's tls/ files when the
   * cluster was found there. false: plaintext.
   */
  tls?: TlsOptions | false;
}

/** Ray's task options (num_cpus -> numCpus, ...), and keyword arguments. */
export interface TaskOptions {
  numCpus?: number;
  numGpus?: number;
  memory?: number;
  resources?: Record<string, number>;
  numReturns?: number;
  maxRetries?: number;
  retryExceptions?: boolean;
  name?: string;
  kwargs?: Record<string, unknown>;
}

export interface ActorOptions {
  name?: string;
  namespace?: string;
  lifetime?: "detached" | "non_detached";
  maxRestarts?: number;
  maxTaskRetries?: number;
  maxConcurrency?: number;
  numCpus?: number;
  numGpus?: number;
  memory?: number;
  resources?: Record<string, number>;
  getIfExists?: boolean;
  kwargs?: Record<string, unknown>;
}

export interface NodeInfo {
  NodeID: string;
  Alive: boolean;
  NodeManagerAddress: string;
  NodeManagerPort: number;
  IsHead: boolean;
  Resources: Record<string, number>;
  Available: Record<string, number>;
  Labels: Record<string, string>;
}

type Target = string | { actorId: Buffer; method: string };

type Unary<Req, Rep> = (request: Req, metadata: Metadata, callback: (error: ServiceError | null, reply: Rep) => void) => unknown;

/** A handle to an actor: call its methods by name. */
export class ActorHandle {
  constructor(
    private readonly client: Client,
    readonly actorId: Buffer,
    readonly className: string,
    readonly name: string,
    readonly namespace: string,
    /** The actor's creation: ready once its constructor ran. Held while this handle lives. */
    readonly readyRef: ObjectRef | null,
  ) {}

  /** Call a method and wait for its result. */
  async call(method: string, ...args: unknown[]): Promise<any> {
    return this.client._call({ actorId: this.actorId, method }, args, {});
  }

  /** Call a method: its ref (or refs, with numReturns != 1), at once. */
  submit(method: string, args: unknown[] = [], options: TaskOptions = {}): ObjectRef | ObjectRef[] {
    return this.client._submit({ actorId: this.actorId, method }, args, options);
  }

  /** Wait until the constructor ran (throws its error if it raised). */
  async ready(): Promise<void> {
    if (this.readyRef) await this.client.get(this.readyRef);
  }

  toString(): string {
    return `Actor(${this.className}, ${this.actorId.toString("hex")})`;
  }
}

export class Client {
  readonly sessionId: Buffer;
  readonly namespace: string;
  private readonly codec = makeCodec({ makeRef: (id) => this.makeRef(id) });
  private readonly counts = new Map<string, number>();
  private readonly registry = new FinalizationRegistry<string>((hex) => this.dropOne(hex));
  private pendingCalls: { call: Call; done: Deferred }[] = [];
  private pendingReleases: Buffer[] = [];
  private readonly inFlight = new Map<string, Promise<void>>(); // ref hex -> its submission
  private readonly refused = new Map<string, unknown>(); // ref hex -> why its submission was refused
  private readonly released = new WeakSet<ObjectRef>(); // refs given to release()
  private chain: Promise<void> = Promise.resolve(); // settles once the submissions sent so far are answered
  private releasing: Promise<void> = Promise.resolve(); // releases, each after the submissions made before it
  private flushScheduled = false;
  private runs: ClientDuplexStream<TaggedRun, TaggedReply> | null = null; // sync calls, one message each way
  private nextTag = 1;
  private readonly running = new Map<number, PendingRun>();
  private closed = false;
  private lost: string | null = null;

  /** @internal use connect() */
  constructor(
    private readonly api: ClientApiClient,
    private readonly calls: ClientCallsClient,
    private readonly metadata: Metadata,
    private readonly events: ClientReadableStream<SessionEvent>,
    readonly connected: Connected,
    logToDriver: boolean,
  ) {
    this.sessionId = connected.sessionId;
    this.namespace = connected.namespace;
    events.on("data", (event: SessionEvent) => {
      if (!logToDriver) return;
      if (event.warning) process.stderr.write(`(ember) warning: ${event.warning}\n`);
      if (event.output) {
        const out = event.output.isStderr ? process.stderr : process.stdout;
        for (const line of event.output.lines) out.write(`(${event.output.taskName} pid=${event.output.pid}) ${line}\n`);
      }
    });
    events.on("error", (error: ServiceError) => {
      if (!this.closed) this.lost = `${error.code}: ${error.details}`;
    });
    events.on("end", () => {
      if (!this.closed) this.lost = "the raylet ended the session";
    });
  }

  // ---- refs ---------------------------------------------------------------

  private makeRef(id: Buffer): ObjectRef {
    const ref = new ObjectRef(id);
    const hex = ref.hex();
    this.counts.set(hex, (this.counts.get(hex) ?? 0) + 1);
    this.registry.register(ref, hex, ref);
    return ref;
  }

  private dropOne(hex: string): void {
    const left = (this.counts.get(hex) ?? 1) - 1;
    if (left > 0) {
      this.counts.set(hex, left);
      return;
    }
    this.counts.delete(hex);
    if (this.refused.delete(hex) || this.closed) return; // (a refused call's refs are held by nothing)
    this.pendingReleases.push(Buffer.from(hex, "hex"));
    this.scheduleFlush();
  }

  /** Stop holding these refs (their objects are freed when nothing else holds them). */
  release(refs: ObjectRef | ObjectRef[]): void {
    for (const ref of Array.isArray(refs) ? refs : [refs]) {
      if (this.registry.unregister(ref)) {
        this.released.add(ref);
        this.dropOne(ref.hex());
      }
    }
  }

  // ---- submission -----------------------------------------------------------

  /** Run a Python function by name and wait for its result: call("pkg.mod:fn", 1, 2). */
  async call(fn: string, ...args: unknown[]): Promise<any> {
    return this._call(fn, args, {});
  }

  /** Submit a Python function by name: its ref (an array of refs with numReturns != 1), at once. */
  submit(fn: string, args: unknown[] = [], options: TaskOptions = {}): ObjectRef | ObjectRef[] {
    return this._submit(fn, args, options);
  }

  /** @internal */
  _submit(target: Target, args: unknown[], options: TaskOptions): ObjectRef | ObjectRef[] {
    this.checkOpen();
    const { call, returnIds } = this.buildCall(target, args, options);
    const refs = returnIds.map((id) => this.makeRef(id));
    const done = deferred();
    this.pendingCalls.push({ call, done });
    if (this.pendingCalls.length >= SUBMIT_BATCH) this.flush(); // (the raylet starts the first while we build more)
    for (const ref of refs) {
      const hex = ref.hex();
      this.inFlight.set(hex, done.promise);
      done.promise.then(() => this.inFlight.delete(hex), (e) => {
        this.inFlight.delete(hex);
        this.refused.set(hex, e); // (reported by whoever gets or waits on it, until it is dropped)
      });
    }
    this.scheduleFlush();
    return refs.length === 1 && (options.numReturns ?? 1) === 1 ? refs[0] : refs;
  }

  /** @internal Submit and get in one round trip (earlier submissions go first). */
  async _call(target: Target, args: unknown[], options: TaskOptions): Promise<any> {
    this.checkOpen();
    const { call, returnIds } = this.buildCall(target, args, options);
    await this.flushed();
    // One message each way on the session's Runs stream (a new gRPC call costs grpc-js about a millisecond of
    // CPU); release: the raylet lets the returns go once it sent them, no Release call after.
    const values = await this.request({ run: RunRequest.fromPartial({ sessionId: this.sessionId, calls: [call],
                                                                      release: true }) }, returnIds.length);
    return (options.numReturns ?? 1) === 1 ? values[0] : values;
  }

  /** A Run, Submit or Get on the calls stream: the values of its `count` objects once it is done. */
  private request(request: Omit<TaggedRun, "tag">, count: number): Promise<unknown[]> {
    const tag = this.nextTag++;
    return new Promise<unknown[]>((resolve, reject) => {
      this.running.set(tag, { pieces: Array.from({ length: count }, () => []), errors: new Array(count).fill(null),
                              resolve, reject });
      this.runStream().write(TaggedRun.fromPartial({ tag, ...request }));
    });
  }

  private runStream(): ClientDuplexStream<TaggedRun, TaggedReply> {
    if (this.runs) return this.runs;
    const stream = this.calls.runs(this.metadata);
    const fail = (error: EmberError) => {
      if (this.runs === stream) this.runs = null; // (the next call opens a new one)
      for (const pending of this.running.values()) pending.reject(error);
      this.running.clear();
    };
    stream.on("data", (tagged: TaggedReply) => {
      const pending = this.running.get(tagged.tag);
      if (!pending) return;
      if (!tagged.done) {
        for (const reply of tagged.reply ? [tagged.reply] : tagged.replies) {
          if (reply.index >= pending.pieces.length) continue;
          if (reply.error) pending.errors[reply.index] = remoteError(reply.error);
          else pending.pieces[reply.index].push(reply.data);
        }
        return;
      }
      this.running.delete(tagged.tag);
      if (tagged.code !== 0) {
        pending.reject(fromGrpc({ code: tagged.code, details: tagged.message }));
        return;
      }
      try {
        pending.resolve(this.values(pending.pieces, pending.errors));
      } catch (e) {
        pending.reject(e);
      }
    });
    stream.on("error", (error: ServiceError) => fail(fromGrpc(error)));
    stream.on("end", () => fail(new EmberError("the raylet ended the calls stream")));
    this.runs = stream;
    return stream;
  }

  private buildCall(target: Target, args: unknown[], options: TaskOptions): { call: Call; returnIds: Buffer[] } {
    if (!Array.isArray(args)) throw new TypeError("args must be an array of arguments");
    const isMethod = typeof target !== "string";
    const taskId = crypto.randomBytes(16);
    taskId[15] = isMethod ? taskId[15] | 1 : taskId[15] & ~1;
    const numReturns = options.numReturns ?? 1;
    const call = Call.fromPartial({
      function: isMethod ? undefined : target,
      method: isMethod ? { actorId: target.actorId, method: target.method } : undefined,
      args: this.codec.encode(args),
      kwargs: options.kwargs ? this.codec.encode(options.kwargs) : Buffer.alloc(0),
      options: taskOptions(options),
      taskId,
    });
    const returnIds: Buffer[] = [];
    for (let i = 1; i <= numReturns; i++) {
      const id = Buffer.alloc(20);
      taskId.copy(id, 0);
      id.writeUInt32BE(i, 16);
      returnIds.push(id);
    }
    return { call, returnIds };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
      if (this.pendingReleases.length) {
        const submitted = this.chain;
        this.releasing = Promise.all([submitted, this.releasing]).then(() => this.sendReleases());
      }
    });
  }

  /** Send the submissions not sent yet, in one message on the calls stream (which keeps them in order). */
  private flush(): void {
    const calls = this.pendingCalls;
    this.pendingCalls = [];
    if (!calls.length) return;
    const answered = this.request({ submit: SubmitRequest.fromPartial({ sessionId: this.sessionId,
                                                                         calls: calls.map((c) => c.call) }) }, 0);
    answered.then(() => calls.forEach((c) => c.done.resolve()), (e) => calls.forEach((c) => c.done.reject(e)));
    // (answers come in the order sent, or all fail with the stream: the last one settled, all did)
    this.chain = answered.then(() => undefined, () => undefined);
  }

  private async sendReleases(): Promise<void> {
    const releases = this.pendingReleases;
    this.pendingReleases = [];
    if (releases.length && !this.closed) {
      try {
        await this.unary<ReleaseRequest, unknown>(this.api.release.bind(this.api),
          ReleaseRequest.fromPartial({ sessionId: this.sessionId, objectIds: releases }));
      } catch {
        // (the session is gone: so are its refs)
      }
    }
  }

  /** Wait until the submissions made so far were accepted (throws a submission's refusal). */
  async flushed(refs?: ObjectRef[]): Promise<void> {
    this.flush(); // (the scheduled flush then finds nothing left)
    await this.chain;
    if (!refs) {
      await Promise.allSettled([...this.inFlight.values()]);
      return;
    }
    await Promise.allSettled(refs.map((r) => this.inFlight.get(r.hex())));
    for (const r of refs) {
      const refusal = this.refused.get(r.hex());
      if (refusal) throw refusal;
    }
  }

  // ---- objects ----------------------------------------------------------------

  /** The value of a ref, or the values of refs (throws RemoteError if one holds an error). Timeout in seconds. */
  async get(refs: ObjectRef | ObjectRef[], options: { timeout?: number } = {}): Promise<any> {
    this.checkOpen();
    const list = Array.isArray(refs) ? refs : [refs];
    this.checkRefs(list);
    // The submissions not sent yet go first on the same stream: the Get finds them submitted, with no round trip
    // to wait for in between. (Values come as they are ready, several in a message.)
    this.flush();
    const request = GetRequest.fromPartial({ sessionId: this.sessionId, objectIds: list.map((r) => r.id),
                                            timeoutS: options.timeout });
    let values: unknown[];
    try {
      values = await this.request({ get: request }, list.length);
    } catch (e) {
      await this.flushed(list); // (a ref whose submission was refused: that refusal says more)
      throw e;
    }
    return Array.isArray(refs) ? values : values[0];
  }

  /** Each object's value from its pieces (throws the first error, in order). */
  private values(pieces: Buffer[][], errors: (RemoteError | null)[]): unknown[] {
    return pieces.map((parts, i) => {
      const error = errors[i];
      if (error) throw error;
      return this.codec.decodePieces(parts);
    });
  }

  /** Put a value in the cluster: its ref. */
  async put(value: unknown): Promise<ObjectRef> {
    this.checkOpen();
    const document = this.codec.encodePieces(value);
    await this.flushed();
    const chunk = this.connected.chunkBytes || 1 << 20;
    const reply = await new Promise<PutReply>((resolve, reject) => {
      const stream = this.api.put(this.metadata, (error: ServiceError | null, r?: PutReply) =>
        error ? reject(fromGrpc(error)) : resolve(r as PutReply));
      let first = true;
      for (const piece of document) {
        for (let start = 0; start < Math.max(piece.length, 1); start += chunk) {
          stream.write(PutRequest.fromPartial({ sessionId: first ? this.sessionId : Buffer.alloc(0),
                                                data: piece.subarray(start, start + chunk) }));
          first = false;
        }
      }
      stream.end();
    });
    return this.makeRef(reply.objectId);
  }

  /** Ray's wait: [ready, notReady] once numReturns (default 1) are ready or the timeout (seconds) passes. */
  async wait(refs: ObjectRef[], options: { numReturns?: number; timeout?: number } = {}): Promise<[ObjectRef[], ObjectRef[]]> {
    this.checkOpen();
    this.checkRefs(refs);
    await this.flushed(refs);
    const reply = await this.unary<WaitRequest, WaitReply>(this.api.wait.bind(this.api), WaitRequest.fromPartial({
      sessionId: this.sessionId, objectIds: refs.map((r) => r.id), numReturns: options.numReturns ?? 1,
      timeoutS: options.timeout }));
    const ready = new Set(reply.ready);
    return [refs.filter((_, i) => ready.has(i)), refs.filter((_, i) => !ready.has(i))];
  }

  // ---- actors -------------------------------------------------------------------

  /** Create an actor of a Python class by name: createActor("pkg.mod:Cls", [args], { name, lifetime, ... }). */
  async createActor(className: string, args: unknown[] = [], options: ActorOptions = {}): Promise<ActorHandle> {
    this.checkOpen();
    const request = CreateActorRequest.fromPartial({
      sessionId: this.sessionId, className, args: this.codec.encode(args),
      kwargs: options.kwargs ? this.codec.encode(options.kwargs) : Buffer.alloc(0),
      options: ActorOptionsMessage.fromPartial({
        name: options.name ?? "", namespace: options.namespace, lifetime: options.lifetime ?? "",
        maxRestarts: options.maxRestarts ?? 0, maxTaskRetries: options.maxTaskRetries ?? 0,
        maxConcurrency: options.maxConcurrency ?? 0, numCpus: options.numCpus, numGpus: options.numGpus,
        memory: options.memory, resources: options.resources ?? {}, getIfExists: options.getIfExists ?? false,
      }),
    });
    await this.flushed();
    const reply = await this.unary<CreateActorRequest, CreateActorReply>(this.api.createActor.bind(this.api), request);
    return this.handle(reply.actor as ActorRef);
  }

  /** The live actor named `name` (in `namespace`, default this client's), created by any client or Python driver. */
  async getActor(name: string, options: { namespace?: string } = {}): Promise<ActorHandle> {
    this.checkOpen();
    const reply = await this.unary<LookupActorRequest, LookupActorReply>(this.api.lookupActor.bind(this.api),
      LookupActorRequest.fromPartial({ sessionId: this.sessionId, name, namespace: options.namespace }));
    return this.handle(reply.actor as ActorRef);
  }

  private handle(actor: ActorRef): ActorHandle {
    const ready = actor.readyObjectId.length ? this.makeRef(actor.readyObjectId) : null;
    return new ActorHandle(this, actor.actorId, actor.className, actor.name, actor.namespace, ready);
  }

  /** End an actor at once (Ray's kill): its calls fail with ActorDiedError. */
  async kill(actor: ActorHandle, options: { noRestart?: boolean } = {}): Promise<void> {
    this.checkOpen();
    await this.flushed();
    await this.unary(this.api.killActor.bind(this.api), KillActorRequest.fromPartial({
      sessionId: this.sessionId, actorId: actor.actorId, noRestart: options.noRestart ?? true }));
  }

  // ---- the cluster ------------------------------------------------------------------

  /** The cluster's nodes, with Ray's keys. */
  async nodes(): Promise<NodeInfo[]> {
    this.checkOpen();
    const reply = await this.unary<NodesRequest, NodesReply>(this.api.nodes.bind(this.api),
      NodesRequest.fromPartial({ sessionId: this.sessionId }));
    return reply.nodes.map((n) => ({
      NodeID: n.nodeId.toString("hex"), Alive: n.alive, NodeManagerAddress: n.address, NodeManagerPort: n.rayletPort,
      IsHead: n.isHead, Resources: { ...n.total }, Available: { ...n.available }, Labels: { ...n.labels },
    }));
  }

  /** Total resources of the alive nodes. */
  async clusterResources(): Promise<Record<string, number>> {
    return sum((await this.nodes()).filter((n) => n.Alive).map((n) => n.Resources));
  }

  /** Free resources of the alive nodes. */
  async availableResources(): Promise<Record<string, number>> {
    return sum((await this.nodes()).filter((n) => n.Alive).map((n) => n.Available));
  }

  /** End the session: everything it holds is released, its non-detached actors end. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flushed();
    await this.releasing;
    this.closed = true;
    this.runs?.end();
    this.events.cancel();
    this.api.close();
  }

  // ---- plumbing ------------------------------------------------------------------------

  private checkRefs(refs: ObjectRef[]): void {
    for (const r of refs as unknown[]) {
      if (!(r instanceof ObjectRef)) {
        throw new TypeError(`expected ObjectRefs, got ${typeof r === "object" ? (r as object)?.constructor?.name : typeof r}`);
      }
      if (this.released.has(r)) {
        throw new RequestError(Status.NOT_FOUND, `${r} was released by this client: it holds its object no more`);
      }
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new EmberError("the client is closed");
    if (this.lost) throw new EmberError(`lost the session with the cluster (${this.lost})`);
  }

  private unary<Req, Rep>(method: Unary<Req, Rep>, request: Req): Promise<Rep> {
    return new Promise((resolve, reject) =>
      method(request, this.metadata, (error, reply) => (error ? reject(fromGrpc(error)) : resolve(reply))));
  }
}

/** Connect to a cluster and open a session on one of its nodes' raylets. */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const target = resolveTarget(options.address, options.token, options.tls);
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${target.token}`);
  // (flow_control_window: grpc-js receives with a 64 KB HTTP/2 window by default, which holds a large get to
  // one window update round trip per 64 KB)
  const channelOptions = { "grpc.max_receive_message_length": 64 << 20, "grpc.max_send_message_length": 64 << 20,
                           "grpc-node.flow_control_window": 16 << 20 };
  const channelCredentials = () => (target.tls ? credentials.createSsl(target.tls.ca, target.tls.key, target.tls.cert)
    : credentials.createInsecure());
  const gcs = new GcsClient(target.address, channelCredentials(), channelOptions);
  let nodes: GetAllNodesReply;
  try {
    nodes = await new Promise<GetAllNodesReply>((resolve, reject) =>
      gcs.getAllNodes(GetAllNodesRequest.fromPartial({}), metadata, { deadline: Date.now() + 30_000 },
        (error, reply) => {
          if (!error) return resolve(reply);
          if (error.code === Status.UNAVAILABLE) {
            error.details += target.tls ? " (with TLS: are the CA and the certificate the cluster's?)"
              : " (if the cluster uses TLS, give its CA and a certificate and key it signed: the tls option)";
          }
          reject(fromGrpc(error));
        }));
  } finally {
    gcs.close();
  }
  const host = target.address.slice(0, target.address.lastIndexOf(":"));
  const alive = nodes.nodes.filter((n) => n.alive);
  const node = alive.find((n) => n.nodeAddress === host && n.isHead) ?? alive.find((n) => n.nodeAddress === host)
    ?? alive.find((n) => n.isHead) ?? alive[0];
  if (!node) throw new EmberError(`the cluster at ${target.address} has no alive node`);
  const api = new ClientApiClient(`${node.nodeAddress}:${node.rayletPort}`, channelCredentials(), channelOptions);
  const calls = new ClientCallsClient(`${node.nodeAddress}:${node.rayletPort}`, channelCredentials(),
                                      { ...channelOptions, channelOverride: api.getChannel() });
  const events = api.connect(ConnectRequest.fromPartial({
    namespace: options.namespace ?? "", codeSearchPath: options.codeSearchPath ?? [], language: "node",
    pid: process.pid }), metadata);
  const connected = await new Promise<Connected>((resolve, reject) => {
    const onError = (error: ServiceError) => {
      api.close();
      reject(fromGrpc(error));
    };
    events.once("error", onError);
    events.once("data", (event: SessionEvent) => {
      events.off("error", onError);
      if (event.connected) resolve(event.connected);
      else reject(new EmberError("the raylet's first session event was not `connected`"));
    });
  });
  return new Client(api, calls, metadata, events, connected, options.logToDriver ?? true);
}

/** Submissions per message at most: the raylet starts the first tasks while it reads the next ones. */
const SUBMIT_BATCH = 100;

function taskOptions(o: TaskOptions): TaskOptionsMessage {
  return TaskOptionsMessage.fromPartial({
    numCpus: o.numCpus, numGpus: o.numGpus, memory: o.memory, resources: o.resources ?? {},
    numReturns: o.numReturns, maxRetries: o.maxRetries, retryExceptions: o.retryExceptions ?? false, name: o.name ?? "",
  });
}


function sum(sets: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const set of sets) for (const [k, v] of Object.entries(set)) total[k] = (total[k] ?? 0) + v;
  return total;
}

interface PendingRun {
  pieces: Buffer[][];
  errors: (RemoteError | null)[];
  resolve(values: unknown[]): void;
  reject(e: unknown): void;
}

function remoteError(e: GrpcError): RemoteError {
  return new RemoteError(e.kind === Error_Kind.SYSTEM ? "SYSTEM" : "CODE", e.type, e.message, e.traceback, e.function);
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // (a refusal is reported to whoever awaits the refs)
  return { promise, resolve, reject };
}

export { GetTimeoutError };
