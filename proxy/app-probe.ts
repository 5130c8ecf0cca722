/**
 * Runs the application's own probes for the kubelet, under capture (capture/app-probes.ts): the
 * injector rewrote each httpGet/tcpSocket/grpc probe of a captured port into
 * `GET :4191/app-probe/<container>/<kind>` and gave the originals here. The proxy runs the
 * original against the application at the address the kubelet dialled (the pod's own IP, as the
 * kubelet would have) and answers with what the kubelet would have concluded:
 *   httpGet   the application's status when 2xx or 4xx/5xx, 200 for a 3xx (the kubelet counts
 *             200–399 as success), 503 when it cannot connect or times out;
 *   tcpSocket 200 once a TCP connection opens, else 503;
 *   grpc      200 when grpc.health.v1.Health/Check answers SERVING, else 503.
 * The proxy's own connections are never captured, so the probe reaches the application directly.
 *
 * Owns: the three probers and their bounds (the probe's timeout, 10 KiB of HTTP body read).
 * Does not own: the admin server (admin.ts) or which probes exist (config).
 */
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import type { AppProbe } from "../capture/app-probes.ts";

export interface ProbeResult {
  status: number;
  body: string;
}

const MAX_BODY = 10 * 1024;

const fail = (why: string): ProbeResult => ({ status: 503, body: `probe failed: ${why}\n` });

function httpProbe(
  probe: Extract<AppProbe, { httpGet: unknown }>,
  host: string,
  userAgent: string,
): Promise<ProbeResult> {
  const { port, path, scheme, httpHeaders } = probe.httpGet;
  const headers: Record<string, string> = { "user-agent": userAgent, accept: "*/*" };
  for (const h of httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  const client = scheme === "HTTPS" ? https : http;
  return new Promise((resolve) => {
    const req = client.request(
      {
        host,
        port,
        path,
        method: "GET",
        headers,
        agent: false,
        timeout: probe.timeoutSeconds * 1000,
        // The kubelet does not verify an HTTPS probe's certificate either.
        ...(scheme === "HTTPS" ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          if (body.length < MAX_BODY) body += d.slice(0, MAX_BODY - body.length);
          else res.destroy();
        });
        const done = () => resolve({ status: status >= 300 && status < 400 ? 200 : status, body });
        res.on("end", done);
        res.on("close", done);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timed out after ${probe.timeoutSeconds} s`)));
    req.on("error", (err) =>
      resolve(fail(`GET ${scheme.toLowerCase()}://${host}:${port}${path}: ${err.message}`)),
    );
    req.end();
  });
}

function tcpProbe(probe: Extract<AppProbe, { tcpSocket: unknown }>, host: string): Promise<ProbeResult> {
  const { port } = probe.tcpSocket;
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(probe.timeoutSeconds * 1000, () =>
      socket.destroy(new Error(`timed out after ${probe.timeoutSeconds} s`)),
    );
    socket.once("connect", () => {
      socket.destroy();
      resolve({ status: 200, body: `tcp ${host}:${port} open\n` });
    });
    socket.once("error", (err) => resolve(fail(`tcp ${host}:${port}: ${err.message}`)));
  });
}

/** A grpc.health.v1.HealthCheckRequest {service} in a gRPC message frame. */
function healthCheckFrame(service: string): Buffer {
  const name = Buffer.from(service);
  const message = name.length > 0 ? Buffer.concat([Buffer.from([0x0a, name.length]), name]) : Buffer.alloc(0);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(message.length, 1);
  return Buffer.concat([frame, message]);
}

/** The `status` field (1, varint) of a HealthCheckResponse frame; 0 (UNKNOWN) when absent. */
export function healthStatus(frame: Buffer): number {
  const message = frame.subarray(5, 5 + frame.readUInt32BE(1));
  for (let i = 0; i + 1 < message.length; i += 2) if (message[i] === 0x08) return message[i + 1] ?? 0;
  return 0;
}

const SERVING = 1;

function grpcProbe(probe: Extract<AppProbe, { grpc: unknown }>, host: string): Promise<ProbeResult> {
  const { port, service = "" } = probe.grpc;
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve) => {
    const session = http2.connect(`http://${authority}`);
    let settled = false;
    const settle = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => settle(fail(`grpc ${authority}: timed out after ${probe.timeoutSeconds} s`)),
      probe.timeoutSeconds * 1000,
    );
    session.on("error", (err) => settle(fail(`grpc ${authority}: ${err.message}`)));
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    stream.on("response", (headers) => {
      grpcStatus = headers["grpc-status"] as string | undefined;
    });
    stream.on("trailers", (trailers) => {
      grpcStatus = (trailers["grpc-status"] as string | undefined) ?? grpcStatus;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (err) => settle(fail(`grpc ${authority}: ${err.message}`)));
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      if (grpcStatus !== "0")
        return settle(fail(`grpc ${authority}: grpc-status ${grpcStatus ?? "missing"}`));
      const status = body.length >= 5 ? healthStatus(body) : 0;
      settle(
        status === SERVING
          ? { status: 200, body: `grpc ${authority} ${service || "(server)"}: SERVING\n` }
          : fail(`grpc ${authority} ${service || "(server)"}: status ${status}, not SERVING`),
      );
    });
    stream.end(healthCheckFrame(service));
  });
}

/** Runs `probe` against the application at `host` (the address the kubelet dialled). */
export function runAppProbe(probe: AppProbe, host: string, userAgent = "kube-probe"): Promise<ProbeResult> {
  const address = host.startsWith("::ffff:") && net.isIPv4(host.slice(7)) ? host.slice(7) : host;
  if ("httpGet" in probe) return httpProbe(probe, address, userAgent);
  if ("tcpSocket" in probe) return tcpProbe(probe, address);
  return grpcProbe(probe, address);
}
