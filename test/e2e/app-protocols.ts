// The protocols the end-to-end test's application speaks, client and server side, each the way
// an ordinary program would: HTTP/1.1 (node:http, keep-alive), HTTP/2 with prior knowledge
// (node:http2), gRPC (@grpc/grpc-js, a real gRPC implementation; protobuf messages encoded here
// by hand, one or two string fields) and a server-first TCP "greeting" protocol (the server
// sends a banner before the client says anything, as SMTP or MySQL do). Nothing here knows of a
// mesh: targets are ordinary URLs such as http://server:8080/.
//
// Targets: `http://host:port/path` (HTTP/1.1), `h2c://host:port/path` (HTTP/2),
// `grpc://host:port` (demo.Echo/Say), `greeting://host:port` (banner, PING, PONG).
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";

/** One exchange's outcome: which server answered (pod, or pod/container for HTTP), or why it failed. */
export type Outcome = { ok: true; pod: string } | { ok: false; error: string };

// --- protobuf, the two messages of demo.Echo and grpc.health.v1 ---------------------------------

/** Encodes string fields 1..n (empty strings omitted), as protobuf does. */
export function encodeStrings(...fields: string[]): Buffer {
  const parts: Buffer[] = [];
  fields.forEach((value, i) => {
    const bytes = Buffer.from(value);
    if (bytes.length === 0) return;
    parts.push(Buffer.from([((i + 1) << 3) | 2]), varint(bytes.length), bytes);
  });
  return Buffer.concat(parts);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** Decodes the string (and varint) fields of a flat message: field number → value. */
export function decodeFields(buf: Buffer): Map<number, string | number> {
  const out = new Map<number, string | number>();
  let at = 0;
  const readVarint = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = buf[at++] ?? 0;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0 || at >= buf.length) return value;
      shift += 7;
    }
  };
  while (at < buf.length) {
    const key = readVarint();
    if ((key & 7) === 2) {
      const length = readVarint();
      out.set(key >> 3, buf.subarray(at, at + length).toString());
      at += length;
    } else if ((key & 7) === 0) out.set(key >> 3, readVarint());
    else break;
  }
  return out;
}

const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const method = (path: string) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: bytes.serialize,
  requestDeserialize: bytes.deserialize,
  responseSerialize: bytes.serialize,
  responseDeserialize: bytes.deserialize,
});
const ECHO = { say: method("/demo.Echo/Say") };
const HEALTH = { check: method("/grpc.health.v1.Health/Check") };

// --- servers ------------------------------------------------------------------------------------

/** HTTP/1.1 and HTTP/2 (prior knowledge) on one port: {pod, container, method, path} as JSON. */
export function httpServer(pod: string, container: string): net.Server {
  const answer = (method: string | undefined, path: string | undefined) =>
    JSON.stringify({ pod, container, method, path });
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(answer(req.method, req.url));
    });
  });
  const h2 = http2.createServer();
  h2.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end(answer(headers[":method"] as string, headers[":path"] as string));
    });
    stream.on("error", () => {});
  });
  const preface = Buffer.from("PRI * HTTP/2.0\r\n");
  const server = net.createServer((socket) => {
    socket.once("readable", () => {
      const head: Buffer | null = socket.read(Math.min(preface.length, socket.readableLength));
      if (head === null) return socket.destroy();
      socket.unshift(head);
      (head.equals(preface.subarray(0, head.length)) ? h2 : h1).emit("connection", socket);
    });
    socket.on("error", () => {});
  });
  server.on("close", () => h1.closeAllConnections());
  return server;
}

/** demo.Echo/Say (answers {text, pod}) and grpc.health.v1.Health/Check (SERVING). */
export function grpcServer(pod: string): grpc.Server {
  const server = new grpc.Server();
  server.addService(ECHO, {
    say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      const text = String(decodeFields(call.request).get(1) ?? "");
      done(null, encodeStrings(text, pod));
    },
  });
  server.addService(HEALTH, {
    check: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
      done(null, Buffer.from([0x08, 1])),
  });
  return server;
}

/** The greeting protocol: the server speaks first ("220 <pod> ready"), then PING → PONG <pod>. */
export function greetingServer(pod: string): net.Server {
  return net.createServer((socket) => {
    socket.on("error", () => {});
    socket.write(`220 ${pod} ready\r\n`);
    let line = "";
    socket.on("data", (d) => {
      line += d.toString();
      if (!line.includes("\n")) return;
      if (line.trim() === "PING") socket.end(`PONG ${pod}\r\n`);
      else socket.end("500 what?\r\n");
    });
  });
}

// --- clients ------------------------------------------------------------------------------------

export interface Caller {
  call(timeoutMs: number): Promise<Outcome>;
  close(): void;
}

const podOf = (body: string): Outcome => {
  try {
    const { pod, container } = JSON.parse(body) as { pod?: string; container?: string };
    return pod
      ? { ok: true, pod: `${pod}/${container}` }
      : { ok: false, error: `no pod in ${body.slice(0, 100)}` };
  } catch {
    return { ok: false, error: `not JSON: ${body.slice(0, 100)}` };
  }
};

/** The first outcome resolves the exchange; later ones (a close after an end) are ignored. */
function once(resolve: (o: Outcome) => void): (o: Outcome) => void {
  let settled = false;
  return (o) => {
    if (!settled) resolve(o);
    settled = true;
  };
}

function h1Caller(url: URL): Caller {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  return {
    call: (timeoutMs) =>
      new Promise((resolve) => {
        const settle = once(resolve);
        const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (body += d));
          res.on("end", () =>
            settle(
              res.statusCode === 200 ? podOf(body) : { ok: false, error: `status ${res.statusCode} ${body}` },
            ),
          );
          res.on("error", (err) => settle({ ok: false, error: `response: ${err.message}` }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", (err) => settle({ ok: false, error: `request: ${err.message}` }));
      }),
    close: () => agent.destroy(),
  };
}

function h2Caller(url: URL): Caller {
  const origin = `http://${url.host}`;
  let session: http2.ClientHttp2Session | undefined;
  const current = () => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(origin);
    s.on("error", () => {});
    s.on("close", () => {
      if (session === s) session = undefined;
    });
    session = s;
    return s;
  };
  return {
    call: (timeoutMs) =>
      new Promise((resolve) => {
        const settle = once(resolve);
        let stream: http2.ClientHttp2Stream;
        try {
          stream = current().request({ ":path": url.pathname, ":method": "GET" });
        } catch (err) {
          return settle({ ok: false, error: `request: ${(err as Error).message}` });
        }
        let status = 0;
        let body = "";
        stream.setTimeout(timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
        stream.on("response", (h) => {
          status = Number(h[":status"]);
        });
        stream.setEncoding("utf8");
        stream.on("data", (d: string) => (body += d));
        stream.on("end", () =>
          settle(status === 200 ? podOf(body) : { ok: false, error: `status ${status} ${body}` }),
        );
        stream.on("close", () => settle({ ok: false, error: `stream closed (code ${stream.rstCode})` }));
        stream.on("error", (err) => settle({ ok: false, error: `stream: ${err.message}` }));
        stream.end();
      }),
    close: () => session?.close(),
  };
}

function grpcCaller(url: URL): Caller {
  const Client = grpc.makeGenericClientConstructor(ECHO, "Echo");
  const client = new Client(url.host, grpc.credentials.createInsecure()) as unknown as {
    say(
      req: Buffer,
      meta: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: (e: Error | null, r?: Buffer) => void,
    ): void;
    close(): void;
  };
  let n = 0;
  return {
    call: (timeoutMs) =>
      new Promise((resolve) => {
        const text = `hello ${++n}`;
        client.say(
          encodeStrings(text),
          new grpc.Metadata(),
          { deadline: Date.now() + timeoutMs },
          (err, reply) => {
            if (err || !reply) return resolve({ ok: false, error: `grpc: ${err?.message ?? "no reply"}` });
            const fields = decodeFields(reply);
            resolve(
              fields.get(1) === text
                ? { ok: true, pod: String(fields.get(2)) }
                : { ok: false, error: `grpc: echoed ${String(fields.get(1))}` },
            );
          },
        );
      }),
    close: () => client.close(),
  };
}

function greetingCaller(url: URL): Caller {
  return {
    call: (timeoutMs) =>
      new Promise((resolve) => {
        const started = performance.now();
        const socket = net.connect(Number(url.port), url.hostname);
        // Where the time went, for a failure: name resolution, then the connection.
        const steps: string[] = [];
        const step = (name: string) => steps.push(`${name} ${Math.round(performance.now() - started)} ms`);
        socket.once("lookup", () => step("resolved"));
        socket.once("connect", () => step("connected"));
        let text = "";
        const resolveOnce = once(resolve);
        const settle = (o: Outcome) => {
          resolveOnce(o);
          socket.destroy();
        };
        socket.setTimeout(timeoutMs, () =>
          settle({
            ok: false,
            error: `greeting: timeout after "${text}" (${steps.join(", ") || "not resolved"})`,
          }),
        );
        socket.on("data", (d) => {
          text += d.toString();
          if (/^220 .* ready\r\n$/.test(text)) socket.write("PING\r\n");
          const pong = /\r\nPONG (\S+)\r\n$/.exec(text);
          if (pong?.[1]) settle({ ok: true, pod: pong[1] });
        });
        socket.on("end", () => settle({ ok: false, error: `greeting: closed after "${text}"` }));
        socket.on("error", (err) => settle({ ok: false, error: `greeting: ${err.message}` }));
      }),
    close: () => {},
  };
}

/** A caller for a target URL (see the header for the schemes). */
export function callerFor(target: string): Caller {
  const url = new URL(target);
  switch (url.protocol) {
    case "http:":
      return h1Caller(url);
    case "h2c:":
      return h2Caller(url);
    case "grpc:":
      return grpcCaller(url);
    case "greeting:":
      return greetingCaller(url);
    default:
      throw new Error(`unknown target scheme: ${target}`);
  }
}

/** "class=url,class=url" → [class, url] pairs. */
export function parseTargets(text: string): Array<[string, string]> {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const eq = t.indexOf("=");
      if (eq < 1) throw new Error(`target "${t}" is not class=url`);
      return [t.slice(0, eq), t.slice(eq + 1)] as [string, string];
    });
}
