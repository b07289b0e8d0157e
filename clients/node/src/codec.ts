/**
 * The language-neutral value encoding (docs/other-languages.md): one
 * MessagePack document per value, ext type 1 for an object ref (its 20-byte
 * id), ext type 2 for an Arrow table (an Arrow IPC stream).
 *
 * Node values: null/undefined, boolean, number (integers go as ints, others
 * as float64), bigint (int64), string, Buffer/Uint8Array (bytes), arrays,
 * plain objects and Maps with string keys, apache-arrow Tables, ObjectRefs.
 * Decoded: bytes are Buffers, maps plain objects, int64 beyond 2^53 bigints.
 */

import { Decoder, Encoder, ExtensionCodec } from "@msgpack/msgpack";
import { Table, tableFromIPC, tableToIPC } from "apache-arrow";

export const EXT_OBJECT_REF = 1;
export const EXT_ARROW_TABLE = 2;
export const OBJECT_ID_SIZE = 20;

/** A reference to an object in the cluster (a task's return, a put value). */
export class ObjectRef {
  readonly id: Buffer;

  constructor(id: Buffer) {
    if (id.length !== OBJECT_ID_SIZE) {
      throw new TypeError(`an object id is ${OBJECT_ID_SIZE} bytes, got ${id.length}`);
    }
    this.id = id;
  }

  hex(): string {
    return this.id.toString("hex");
  }

  toString(): string {
    return `ObjectRef(${this.hex()})`;
  }
}

/** Hooks a client gives the codec: refs it decodes are counted by it. */
export interface RefHooks {
  makeRef(id: Buffer): ObjectRef;
}

export interface Codec {
  encode(value: unknown): Buffer;
  decode(data: Uint8Array): unknown;
  /** A value's document in pieces whose concatenation is `encode(value)` (a table: no copy of its IPC stream). */
  encodePieces(value: unknown): Buffer[];
  /** The value of a document in pieces (a table: copied once, into a buffer Arrow reads in place). */
  decodePieces(pieces: Buffer[]): unknown;
}

export function makeCodec(hooks: RefHooks): Codec {
  const extensions = new ExtensionCodec();
  extensions.register({
    type: EXT_OBJECT_REF,
    encode: (value: unknown) => (value instanceof ObjectRef ? value.id : null),
    decode: (data: Uint8Array) => {
      if (data.length !== OBJECT_ID_SIZE) {
        throw new TypeError(`an ObjectRef (ext 1) holds a ${OBJECT_ID_SIZE}-byte id, got ${data.length} bytes`);
      }
      return hooks.makeRef(Buffer.from(data));
    },
  });
  extensions.register({
    type: EXT_ARROW_TABLE,
    encode: (value: unknown) => (value instanceof Table ? tableToIPC(value, "stream") : null),
    decode: (data: Uint8Array) => tableFromIPC(data),
  });
  const encoder = new Encoder({ extensionCodec: extensions, useBigInt64: true, ignoreUndefined: false });
  const decoder = new Decoder({ extensionCodec: extensions, useBigInt64: true });
  return {
    encode(value: unknown): Buffer {
      check(value, "value", 0);
      const out = encoder.encode(value);
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    },
    decode(data: Uint8Array): unknown {
      return toNode(decoder.decode(data));
    },
    encodePieces(value: unknown): Buffer[] {
      if (!(value instanceof Table)) return [this.encode(value)];
      const ipc = tableToIPC(value, "stream");
      const header = Buffer.alloc(EXT32_HEADER);
      header[0] = 0xc9;
      header.writeUInt32BE(ipc.byteLength, 1);
      header[5] = EXT_ARROW_TABLE;
      return [header, Buffer.from(ipc.buffer, ipc.byteOffset, ipc.byteLength)];
    },
    decodePieces(pieces: Buffer[]): unknown {
      return wholeTable(pieces) ?? this.decode(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces));
    },
  };
}

const EXT32_HEADER = 6; // msgpack ext 32: 0xc9, a 4-byte length, the type

/**
 * A document that is one Arrow table (ext 32 of type 2, the raylet's header for a stored table) as a Table, or
 * null. Joining the pieces and then decoding would copy the table twice: Arrow copies a message body that is not
 * 8-byte aligned, and behind the 6-byte header none is.
 */
function wholeTable(pieces: Buffer[]): Table | null {
  const first = pieces[0];
  if (!first || first.length < EXT32_HEADER || first[0] !== 0xc9 || first[5] !== EXT_ARROW_TABLE) return null;
  const size = first.readUInt32BE(1);
  let total = 0;
  for (const piece of pieces) total += piece.length;
  if (total !== size + EXT32_HEADER) return null;
  const ipc = Buffer.allocUnsafeSlow(size); // (its own memory, at offset 0)
  let at = 0;
  for (let i = 0; i < pieces.length; i++) {
    const part = i === 0 ? pieces[0].subarray(EXT32_HEADER) : pieces[i];
    part.copy(ipc, at);
    at += part.length;
  }
  return tableFromIPC(ipc);
}

/** Refuse, naming where, what has no neutral encoding (functions, symbols, class instances, ...). */
function check(value: unknown, where: string, depth: number): void {
  if (depth > 100) {
    throw new TypeError(`${where} nests deeper than 100 levels`);
  }
  if (value === null || value === undefined) return;
  switch (typeof value) {
    case "boolean":
    case "number":
    case "string":
      return;
    case "bigint":
      if (value < -(2n ** 63n) || value >= 2n ** 63n) {
        throw new TypeError(`${where} is a bigint out of the 64-bit range`);
      }
      return;
    case "object":
      break;
    default:
      throw new TypeError(`${where} is a ${typeof value}, which has no language-neutral encoding`);
  }
  if (value instanceof Uint8Array || value instanceof ObjectRef || value instanceof Table) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => check(item, `${where}[${i}]`, depth + 1));
    return;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      if (typeof k !== "string") throw new TypeError(`${where} has a ${typeof k} key: map keys must be strings`);
      check(v, `${where}[${JSON.stringify(k)}]`, depth + 1);
    }
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as object).constructor?.name ?? "object";
    throw new TypeError(`${where} is a ${name}, which has no language-neutral encoding: send null, booleans, ` +
      "numbers, bigints, strings, Buffers, arrays, plain objects, Maps, apache-arrow Tables or ObjectRefs");
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    check(v, `${where}[${JSON.stringify(k)}]`, depth + 1);
  }
}

/** Bytes as Buffers (no copy), recursively. */
function toNode(value: unknown): unknown {
  if (value instanceof Uint8Array && !(value instanceof Buffer)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = toNode(value[i]);
    return value;
  }
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const k of Object.keys(record)) record[k] = toNode(record[k]);
  }
  return value;
}
