/**
 * The response side of the differential framing harness: an upstream on raw TCP answers
 * `GET /case` with the bytes under test and `GET /second` with a plain response, on one
 * keep-alive connection it never closes. node:http's client (llhttp) reads it directly as the
 * reference, and through real proxies — the outbound listener to an unmeshed upstream, and the
 * mTLS pair (outbound → mTLS → inbound → upstream). A proxy fails a case when it forwards a
 * response the reference refuses, reads it differently, hangs where the reference answers, or
 * answers the second request with anything but the second response (response splitting).
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { startMeshPair } from "./mesh-pair.ts";

export type Outcome = { status: number; body: string } | { error: string };

export type ResponseVerdict =
  | { kind: "same" }
  | { kind: "stricter"; detail: string }
  | { kind: "fail"; detail: string };

const second = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond";

/** GETs `path` on `port` with `agent`; a response, an error code, or "timeout". */
function get(
  port: number,
  host: string,
  path: string,
  agent: http.Agent,
  timeoutMs: number,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    let response: http.IncomingMessage | undefined;
    const chunks: Buffer[] = [];
    const read = () => ({
      status: response?.statusCode ?? 0,
      body: Buffer.concat(chunks).toString("latin1"),
    });
    // llhttp reports bytes that follow a complete response as an error of that request: the
    // response itself was read, and is what is compared.
    const failed = (e: NodeJS.ErrnoException) => {
      if (!response?.complete) return finish({ error: e.code ?? "error" });
      // What is still buffered: read() would also emit it as "data" while flowing.
      response.removeAllListeners("data");
      for (let c = response.read() as Buffer | null; c !== null; c = response.read() as Buffer | null) {
        chunks.push(c);
      }
      finish(read());
    };
    const req = http.get({ host: "127.0.0.1", port, path, agent, headers: { host } }, (res) => {
      response = res;
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => finish(read()));
      res.on("error", failed);
    });
    req.on("error", failed);
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      finish({ status: res.statusCode ?? 0, body: "" });
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ error: "timeout" });
    }, timeoutMs);
  });
}

/** The two answers a client gets for /case then /second on one keep-alive connection. */
async function readPair(port: number, host: string, timeoutMs: number): Promise<[Outcome, Outcome]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await get(port, host, "/case", agent, timeoutMs);
    return [first, await get(port, host, "/second", agent, timeoutMs)];
  } finally {
    agent.destroy();
  }
}

function show(o: Outcome): string {
  return "error" in o ? o.error : `${o.status} ${JSON.stringify(o.body.slice(0, 40))}`;
}

const isProxyRefusal = (o: Outcome) => ("error" in o ? o.error !== "timeout" : o.status === 502);

/** See the module comment. */
export function compareResponses(reference: Outcome, first: Outcome, next: Outcome): ResponseVerdict {
  if (!("error" in next) && !(next.status === 200 && next.body === "second") && next.status !== 502) {
    return { kind: "fail", detail: `the second request got ${show(next)}: a response split from the first` };
  }
  if ("error" in reference) {
    if (isProxyRefusal(first) || ("error" in first && reference.error === "timeout")) return { kind: "same" };
    return {
      kind: "fail",
      detail: `the proxy answered ${show(first)} where the reference ${reference.error === "timeout" ? "waited" : `refused (${reference.error})`}`,
    };
  }
  if (!("error" in first) && first.status === reference.status && first.body === reference.body)
    return { kind: "same" };
  if (isProxyRefusal(first))
    return { kind: "stricter", detail: `${show(first)} where the reference read ${show(reference)}` };
  return {
    kind: "fail",
    detail: `the proxy answered ${show(first)} where the reference read ${show(reference)}`,
  };
}

/** An upstream that answers /case with `current` and /second with a plain response. */
class ScriptedUpstream {
  current: Buffer = Buffer.alloc(0);
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    let buf = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      buf += d;
      for (let end = buf.indexOf("\r\n\r\n"); end !== -1; end = buf.indexOf("\r\n\r\n")) {
        const path = buf.slice(0, end).split(" ")[1];
        buf = buf.slice(end + 4);
        socket.write(path === "/case" ? this.current : Buffer.from(second, "latin1"));
      }
    });
  });

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    return (this.server.address() as AddressInfo).port;
  }

  /** Closes every connection, so nothing of one case is left for the next. */
  reset(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.reset();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface ResponseRig {
  routes: readonly string[];
  check(response: Buffer): Promise<{ reference: Outcome; verdicts: [string, ResponseVerdict][] }>;
  close(): Promise<void>;
}

export async function startResponseRig(): Promise<ResponseRig> {
  const upstream = new ScriptedUpstream();
  const upstreamPort = await upstream.listen();
  const pair = await startMeshPair("responses", `127.0.0.1:${upstreamPort}`, {
    outbound: { listen: "127.0.0.1:0" },
  }).catch(async (err) => {
    await upstream.close();
    throw err;
  });
  const close = async () => {
    await pair.close();
    await upstream.close();
  };
  const routes = [
    {
      name: "outbound to an unmeshed upstream",
      port: pair.beside.ports.outbound!,
      host: `127.0.0.1:${upstreamPort}`,
    },
    { name: "mTLS pair", port: pair.outboundPort, host: "web.default.svc.cluster.local:80" },
  ];
  return {
    routes: routes.map((r) => r.name),
    async check(response) {
      // The reference and the routes read at once, each on its own connections; a response
      // delimited by the close makes every reader wait out its timeout, so it is short, and a
      // failure is judged again with a long one: a slow machine, not a framing bug, makes a
      // reader time out.
      const run = async (timeoutMs: number) => {
        upstream.current = response;
        upstream.reset();
        const [[reference], ...read] = await Promise.all([
          readPair(upstreamPort, "upstream", timeoutMs),
          ...routes.map((r) => readPair(r.port, r.host, timeoutMs)),
        ]);
        const verdicts = routes.map((r, i): [string, ResponseVerdict] => {
          const [first, next] = read[i]!;
          return [r.name, compareResponses(reference, first, next)];
        });
        return { reference, verdicts };
      };
      const quick = await run(300);
      return quick.verdicts.some(([, v]) => v.kind === "fail") ? run(5_000) : quick;
    },
    close,
  };
}
