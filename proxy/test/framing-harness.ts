/**
 * Differential framing harness: the same bytes go to node:http (llhttp, strict: the reference)
 * and through a real proxy to an application that is node:http too; what each one reads as
 * messages is compared. A failure is an input the proxy forwards where the reference refuses, or
 * one the two split into different messages (count, method, target, host or body) — the shape of
 * every request smuggling bug. The proxy may be stricter: refusing (4xx) where the reference
 * accepts is reported, not failed.
 *
 * Every case half-closes after its bytes, so both sides finish deterministically: complete
 * messages are answered, an incomplete one is dropped.
 *
 * Used by framing-differential.test.ts (a fixed corpus) and bench/framing-mutation.ts (seeded
 * random mutations of it).
 */
import http from "node:http";
import type net from "node:net";
import type { AddressInfo } from "node:net";
import { rawExchange } from "./raw-peers.ts";

/** A request as a parser read it. */
export interface Message {
  method: string;
  path: string;
  host: string;
  body: string;
}

/** What one parser did with one input: the complete messages, then maybe a refusal. */
export interface Reading {
  messages: Message[];
  /** llhttp's error code when it refused (not counting a message cut short by the end of input). */
  error: string | undefined;
}

export type Verdict =
  | { kind: "same" }
  /** The proxy refused (answered 4xx/5xx) where the reference read more messages: allowed. */
  | { kind: "stricter"; detail: string }
  /** Only the method vocabulary differs: llhttp knows a fixed list, the proxy any token. */
  | { kind: "extension-method"; detail: string }
  | { kind: "fail"; detail: string };

const knownMethods = new Set(http.METHODS);

/**
 * A node:http server that records the complete messages it reads and the errors it refuses
 * input with; answers each message `200 ok`, and each refusal `400`.
 */
export class RecordingServer {
  readonly server: http.Server;
  private items: (Message | { error: string; method: string | undefined })[] = [];
  /** performance.now() of the last thing that happened here. */
  private lastActivity = 0;

  constructor() {
    // requireHostHeader off: node would answer a request without Host 400 yet read on, and
    // report the next one as if the first had not been there. Host is compared instead.
    this.server = http.createServer({ requireHostHeader: false }, (req, res) => {
      this.touch();
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.touch();
        this.items.push(message(req, Buffer.concat(chunks)));
        res.writeHead(200, { "content-length": "2" });
        res.end("ok");
      });
      req.on("error", () => {});
    });
    this.server.on("clientError", (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
      this.touch();
      // A message cut short by the end of input is not a refusal of what was sent.
      if (err.code !== "HPE_INVALID_EOF_STATE") {
        this.items.push({ error: err.code ?? "unknown", method: firstToken(err.rawPacket) });
      }
      // End rather than destroy: a message read before the refused bytes still finishes.
      if (socket.writable)
        socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      else socket.destroy();
    });
    this.server.on("connect", (_req, socket: net.Socket) => socket.destroy());
    this.server.on("connection", (socket: net.Socket) => {
      this.touch();
      socket.on("data", () => this.touch());
      socket.on("close", () => this.touch());
    });
  }

  private touch(): void {
    this.lastActivity = performance.now();
  }

  /** Resolves once nothing has happened here for `ms` (or after `maxMs`). */
  async quiet(ms: number, maxMs = 3_000): Promise<void> {
    const deadline = performance.now() + maxMs;
    while (performance.now() - this.lastActivity < ms && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, ms));
    }
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    return (this.server.address() as AddressInfo).port;
  }

  /** Everything recorded since the last call. */
  take(): RecordingServer["items"] {
    const out = this.items;
    this.items = [];
    return out;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function message(req: http.IncomingMessage, body: Buffer): Message {
  let path = req.url ?? "";
  let host = req.headers.host ?? "";
  const m = /^http:\/\/([^/?]*)(.*)$/i.exec(path);
  if (m) {
    host = m[1]!;
    path = m[2]!.startsWith("?") ? `/${m[2]}` : m[2] || "/";
  }
  return { method: req.method ?? "", path, host, body: body.toString("latin1") };
}

/** The request-line method the proxy forwarded (its output starts each head on a fresh read). */
function firstToken(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  const space = raw.indexOf(0x20);
  const token = raw.toString("latin1", 0, space === -1 ? 0 : space);
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(token) ? token : undefined;
}

/** Writes `input`, half-closes, and returns everything answered once the peer closes. */
async function sendAndClose(port: number, input: Buffer): Promise<{ text: string; timedOut: boolean }> {
  const r = await rawExchange(port, input, { end: true, waitMs: 15_000 });
  return { text: r.text, timedOut: !r.closed };
}

/** What `server` (listening on `port`) reads from `input`. */
export async function readDirectly(server: RecordingServer, port: number, input: Buffer): Promise<Reading> {
  server.take();
  await sendAndClose(port, input);
  return toReading(server.take());
}

/**
 * The messages, then the first refusal. node reports a refusal as soon as it parses the bad
 * bytes, which can be before the message read just ahead of them has ended: order by meaning.
 */
function toReading(items: ReturnType<RecordingServer["take"]>): Reading {
  const messages: Message[] = [];
  let error: string | undefined;
  for (const item of items) {
    if ("error" in item) error ??= item.error;
    else messages.push(item);
  }
  return { messages, error };
}

/** What reached `app` when `input` was sent to the proxy at `proxyPort`, and what the proxy answered. */
export async function readThroughProxy(
  app: RecordingServer,
  proxyPort: number,
  input: Buffer,
): Promise<{ items: ReturnType<RecordingServer["take"]>; answer: string; timedOut: boolean }> {
  app.take();
  const { text, timedOut } = await sendAndClose(proxyPort, input);
  return { items: app.take(), answer: text, timedOut };
}

function same(a: Message, b: Message): boolean {
  return a.method === b.method && a.path === b.path && a.host === b.host && a.body === b.body;
}

function show(m: Message): string {
  return `${m.method} ${m.path} host=${JSON.stringify(m.host)} body=${JSON.stringify(m.body.slice(0, 40))}`;
}

/** Compares the reference's reading with what the proxy delivered; see the module comment. */
export function compare(reference: Reading, proxied: Awaited<ReturnType<typeof readThroughProxy>>): Verdict {
  if (proxied.timedOut) return { kind: "fail", detail: "the proxy did not finish the exchange" };
  const ref = reference.messages;
  const items = proxied.items;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (i >= ref.length) {
      if (
        reference.error === "HPE_INVALID_METHOD" &&
        "error" in item &&
        item.error === "HPE_INVALID_METHOD" &&
        item.method !== undefined &&
        !knownMethods.has(item.method)
      ) {
        return { kind: "extension-method", detail: `message ${i + 1}: ${item.method}` };
      }
      const what = "error" in item ? `bytes the application refused (${item.error})` : show(item);
      return {
        kind: "fail",
        detail: `the proxy forwarded message ${i + 1} (${what}) where the reference ${reference.error ? `refused (${reference.error})` : "read no more"}`,
      };
    }
    if ("error" in item) {
      return {
        kind: "fail",
        detail: `the proxy forwarded bytes the application refused (${item.error}) as message ${i + 1}`,
      };
    }
    if (!same(item, ref[i]!)) {
      return {
        kind: "fail",
        detail: `message ${i + 1} differs: proxy ${show(item)}, reference ${show(ref[i]!)}`,
      };
    }
  }
  if (items.length < ref.length) {
    if (/HTTP\/1\.1 [45]\d\d/.test(proxied.answer)) {
      return { kind: "stricter", detail: `${items.length} of ${ref.length} messages, then refused` };
    }
    return {
      kind: "fail",
      detail: `the proxy delivered ${items.length} of the reference's ${ref.length} messages without refusing`,
    };
  }
  return { kind: "same" };
}
