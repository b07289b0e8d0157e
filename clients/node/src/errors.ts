/** Errors of the Ember client: what failed remotely (typed), and what the service refused. */

import { status as Status } from "@grpc/grpc-js";

/** Base of every error this package throws. */
export class EmberError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A call failed: the Python code raised (`kind` "CODE": `type` is the
 * exception's class name, `traceback` the Python traceback) or the runtime
 * failed it (`kind` "SYSTEM": `type` is e.g. "ActorDiedError",
 * "WorkerCrashedError", "TaskCancelledError", "ObjectLostError").
 */
export class RemoteError extends EmberError {
  readonly kind: "CODE" | "SYSTEM";
  readonly type: string;
  readonly remoteMessage: string;
  readonly traceback: string;
  readonly function: string;

  constructor(kind: "CODE" | "SYSTEM", type: string, message: string, traceback: string, fn: string) {
    super(`${type}: ${message}${fn ? ` (in ${fn})` : ""}${traceback ? `\n${traceback.trimEnd()}` : ""}`);
    this.kind = kind;
    this.type = type;
    this.remoteMessage = message;
    this.traceback = traceback;
    this.function = fn;
  }
}

/** get() or wait() ran out of time (Ray's GetTimeoutError). */
export class GetTimeoutError extends EmberError {}

/** The service refused a request (bad input, unknown ref, ...): `code` is the gRPC status. */
export class RequestError extends EmberError {
  readonly code: Status;
  readonly details: string;

  constructor(code: Status, details: string) {
    super(`${Status[code] ?? code}: ${details}`);
    this.code = code;
    this.details = details;
  }
}

/** A gRPC error as this package's: timeouts as GetTimeoutError, the rest as RequestError. */
export function fromGrpc(error: unknown): EmberError {
  const e = error as { code?: number; details?: string; message?: string };
  if (typeof e?.code !== "number") {
    return error instanceof EmberError ? error : new EmberError(String(e?.message ?? error));
  }
  if (e.code === Status.DEADLINE_EXCEEDED) {
    return new GetTimeoutError(e.details ?? "timed out");
  }
  return new RequestError(e.code, e.details ?? e.message ?? "");
}
