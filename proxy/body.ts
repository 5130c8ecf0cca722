/**
 * Moving bodies between streams: buffering a small request body so it can be replayed on a
 * retry, writing a request body to an upstream, and piping a response body downstream with
 * backpressure and trailers.
 *
 * Owns: byte movement and its limits. Does not decide when to buffer (layers/retry.ts).
 */
import type { Readable, Writable } from "node:stream";
import type { RequestBody } from "./handler.ts";

/**
 * Reads a streamed body fully when it is at most `limit` bytes. Returns undefined (and leaves
 * the stream untouched) when its declared length is unknown or larger.
 */
export async function bufferBody(body: RequestBody, limit: number): Promise<RequestBody | undefined> {
  if (body.kind !== "stream") return body;
  if (body.length === undefined || body.length > limit) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body.stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new Error(`request body longer than its content-length ${body.length}`);
    chunks.push(buf);
  }
  return { kind: "buffered", data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
}

/** Writes the request body to the upstream request and ends it. */
export function sendBody(body: RequestBody, dst: Writable, onError: (err: Error) => void): void {
  if (body.kind === "empty") {
    dst.end();
  } else if (body.kind === "buffered") {
    dst.end(body.data);
  } else {
    const src = body.stream;
    src.on("error", onError);
    src.pipe(dst);
  }
}

/** Drops a response body nobody will read (a retried attempt, an expired deadline). */
export function discardBody(body: Readable | Buffer | null | undefined): void {
  if (body && !Buffer.isBuffer(body)) body.resume();
}

/**
 * Pipes a response body to the downstream writer with backpressure, then calls `finish` (which
 * writes trailers and ends). Destroys the source if the destination closes early, and the
 * destination with the source's error if the source fails: an HTTP/2 stream is then reset with
 * INTERNAL_ERROR, never NO_ERROR, which a client reads as the end of a complete response (RFC 9113
 * §8.1: NO_ERROR only follows a complete response; §8.1.1: a malformed one is not forwarded).
 */
export function pipeBody(src: Readable, dst: Writable, finish: () => void): void {
  let done = false;
  const onData = (chunk: Buffer) => {
    if (!dst.write(chunk)) src.pause();
  };
  const onDrain = () => src.resume();
  const cleanup = () => {
    src.off("data", onData);
    dst.off("drain", onDrain);
    dst.off("close", onClose);
  };
  const onClose = () => {
    if (done) return;
    done = true;
    cleanup();
    src.destroy();
  };
  src.on("data", onData);
  dst.on("drain", onDrain);
  dst.on("close", onClose);
  src.once("end", () => {
    if (done) return;
    done = true;
    cleanup();
    finish();
  });
  src.once("error", (err: Error) => {
    if (done) return;
    done = true;
    cleanup();
    dst.destroy(err);
  });
}
