// The identity endpoint: HTTP/2 over TLS, `POST /v1/certify` with `authorization: Bearer <token>`,
// `content-type: application/pkcs10` and a PEM CSR; answers 200 `{certificateChainPem, notAfter}`
// or `{error, message}` with the status of the error code (certify-errors.ts). `POST /v1/report`
// (`application/json`, same token) takes a proxy's trust report (proxy-report.ts) and writes it
// onto the pod the token is bound to; answers 200 `{pod, result}`. The order of the
// checks keeps unauthenticated work cheap: headers and token claims, then the body (bounded),
// then the TokenReview (cached), and only then the CSR's signature and the issuance.
// Every limit is explicit (body, time, streams, header size, session memory); the serving
// certificate can be swapped while running (new connections get it, open ones keep theirs).
// Owns transport and request handling; does not own authentication, signing or the pod write.
import http2, { type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { bearerToken } from "./bearer-token.ts";
import { type ServiceAccountRef, type SigningPolicy, signCsr } from "./certify.ts";
import { asCertifyError, CertifyError } from "./certify-errors.ts";
import type { IdentityMetrics } from "./identity-metrics.ts";
import type { Issuer } from "./issuer.ts";
import type { ReportOutcome } from "./pod-annotator.ts";
import {
  parseReport,
  REPORT_PATH,
  type ReportedPod,
  reportAnnotations,
  reportedPod,
} from "./proxy-report.ts";

export const CERTIFY_PATH = "/v1/certify";

export interface CertifyLimits {
  maxBodyBytes: number;
  /** A request must be complete (body received) within this time. */
  requestTimeoutMs: number;
  /** A connection with no open stream for this long is closed. */
  idleTimeoutMs: number;
  maxConcurrentStreams: number;
  /**
   * Request bodies held at once, across connections; past it, 429. Bodies are read before the
   * token is reviewed, so without it any client could hold maxBodyBytes on every stream of as
   * many connections as it opened (4 MiB a connection) for requestTimeoutMs.
   */
  maxBufferedBytes: number;
}

export const DEFAULT_LIMITS: CertifyLimits = {
  maxBodyBytes: 16 * 1024,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
  maxConcurrentStreams: 256,
  maxBufferedBytes: 32 * 1024 * 1024,
};

/** What the server's request bodies hold at once, against CertifyLimits.maxBufferedBytes. */
interface BodyBudget {
  held: number;
  readonly max: number;
}

export interface CertifyHandler {
  policy: SigningPolicy;
  limits: CertifyLimits;
  issuer(): Issuer | undefined;
  authenticate(token: string): Promise<ServiceAccountRef>;
  /** Writes a report's annotations onto its pod; without it, /v1/report is NotFound. */
  annotatePod?: (pod: ReportedPod, annotations: Record<string, string | null>) => Promise<ReportOutcome>;
  metrics: Pick<IdentityMetrics, "certify" | "certifySeconds" | "reports">;
  logger: Logger;
}

export interface CertifyServer {
  port: number;
  setCertificate(tls: { cert: string; key: string }): void;
  close(): Promise<void>;
}

/**
 * Body deadlines for all streams of a server, checked by one timer: a timer per request would
 * cost more than the rest of the transport on the hot path.
 */
class BodyDeadlines {
  private readonly waiting = new Map<ServerHttp2Stream, { at: number; expire: () => void }>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly timeoutMs: number) {
    this.timer = setInterval(() => this.sweep(), Math.min(1000, timeoutMs)).unref();
  }

  add(stream: ServerHttp2Stream, expire: () => void): void {
    this.waiting.set(stream, { at: performance.now() + this.timeoutMs, expire });
  }

  remove(stream: ServerHttp2Stream): void {
    this.waiting.delete(stream);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sweep(): void {
    const now = performance.now();
    for (const [stream, { at, expire }] of this.waiting) {
      if (at > now) continue;
      this.waiting.delete(stream);
      expire();
    }
  }
}

function readBody(
  stream: ServerHttp2Stream,
  maxBytes: number,
  deadlines: BodyDeadlines,
  budget: BodyBudget,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const release = () => {
      budget.held -= size;
      size = 0;
      chunks.length = 0;
    };
    const fail = (error: CertifyError) => {
      deadlines.remove(stream);
      stream.pause();
      release();
      reject(error);
    };
    deadlines.add(stream, () => {
      release();
      reject(new CertifyError("RequestTimeout", "the request body did not arrive in time"));
    });
    stream.on("data", (chunk: Buffer) => {
      if (size + chunk.length > maxBytes) {
        fail(
          new CertifyError("BodyTooLarge", `the body is larger than ${maxBytes} bytes; a CSR is under 1 KiB`),
        );
        return;
      }
      if (budget.held + chunk.length > budget.max) {
        fail(new CertifyError("TooManyRequests", "the service holds too many request bodies; retry shortly"));
        return;
      }
      size += chunk.length;
      budget.held += chunk.length;
      chunks.push(chunk);
    });
    stream.once("end", () => {
      deadlines.remove(stream);
      const body = chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
      release();
      resolve(body);
    });
    stream.once("close", () => {
      deadlines.remove(stream);
      release();
    });
  });
}

type Route = "certify" | "report";

const ROUTES: Record<Route, { path: string; contentType: string; what: string }> = {
  certify: { path: CERTIFY_PATH, contentType: "application/pkcs10", what: "the CSR as PEM" },
  report: { path: REPORT_PATH, contentType: "application/json", what: "the report as JSON" },
};

function routeOf(headers: http2.IncomingHttpHeaders, reports: boolean): Route {
  const path = (headers[":path"] ?? "").split("?")[0];
  if (path === CERTIFY_PATH) return "certify";
  if (path === REPORT_PATH && reports) return "report";
  throw new CertifyError(
    "NotFound",
    `no such endpoint; certificates are requested with POST ${CERTIFY_PATH}, trust reports sent with POST ${REPORT_PATH}`,
  );
}

/** Header checks that need neither the body nor the API server; returns the bearer token. */
function checkHeaders(headers: http2.IncomingHttpHeaders, route: Route, limits: CertifyLimits): string {
  const { path, contentType, what } = ROUTES[route];
  if (headers[":method"] !== "POST") {
    throw new CertifyError("MethodNotAllowed", `${path} accepts POST only`);
  }
  const token = bearerToken(headers.authorization);
  const type = (headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== contentType) {
    throw new CertifyError("UnsupportedMediaType", `send ${what} with content-type: ${contentType}`);
  }
  const length = Number(headers["content-length"] ?? 0);
  if (length > limits.maxBodyBytes) {
    throw new CertifyError(
      "BodyTooLarge",
      `the body is larger than ${limits.maxBodyBytes} bytes; a CSR or a report is under 1 KiB`,
    );
  }
  return token;
}

async function certify(
  handler: CertifyHandler,
  deadlines: BodyDeadlines,
  budget: BodyBudget,
  stream: ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): Promise<{ body: string; account: ServiceAccountRef }> {
  const token = checkHeaders(headers, "certify", handler.limits);
  const body = await readBody(stream, handler.limits.maxBodyBytes, deadlines, budget);
  const account = await handler.authenticate(token);
  const issuer = handler.issuer();
  if (issuer === undefined)
    throw new CertifyError("NoIssuer", "the identity service has no issuer loaded yet");
  const answer = signCsr(body, account, issuer, handler.policy);
  return { body: JSON.stringify(answer), account };
}

/** A trust report: authenticated, bound to a pod, well formed; then written onto that pod. */
async function report(
  handler: CertifyHandler,
  annotatePod: NonNullable<CertifyHandler["annotatePod"]>,
  deadlines: BodyDeadlines,
  budget: BodyBudget,
  stream: ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): Promise<{ body: string; result: ReportOutcome }> {
  const token = checkHeaders(headers, "report", handler.limits);
  const body = await readBody(stream, handler.limits.maxBodyBytes, deadlines, budget);
  const pod = reportedPod(await handler.authenticate(token));
  const annotations = reportAnnotations(parseReport(body));
  const result = await annotatePod(pod, annotations);
  if (result === "Patched")
    handler.logger.info({ pod: `${pod.namespace}/${pod.name}`, ...annotations }, "trust report written");
  return { body: JSON.stringify({ pod: `${pod.namespace}/${pod.name}`, result }), result };
}

function respond(
  stream: ServerHttp2Stream,
  status: number,
  body: string,
  extra: http2.OutgoingHttpHeaders = {},
) {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ":status": status, "content-type": "application/json", ...extra });
  stream.end(body);
}

function refuse(
  handler: CertifyHandler,
  stream: ServerHttp2Stream,
  route: string,
  err: unknown,
): CertifyError {
  const error = asCertifyError(err);
  if (error.code === "Internal") handler.logger.error({ err: String(err) }, `${route} failed`);
  else handler.logger.info({ code: error.code, reason: error.message }, `${route} refused`);
  const extra = error.code === "TooManyRequests" ? { "retry-after": "1" } : {};
  respond(stream, error.status, error.toJson(), extra);
  // Whatever the client still sends (an oversized body) is not read: the stream is reset.
  if (!stream.readableEnded) stream.once("finish", () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
  return error;
}

function handleStream(
  handler: CertifyHandler,
  deadlines: BodyDeadlines,
  budget: BodyBudget,
  stream: ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): void {
  const started = performance.now();
  stream.on("error", () => {});
  let route: Route;
  try {
    route = routeOf(headers, handler.annotatePod !== undefined);
  } catch (err) {
    const error = refuse(handler, stream, "certify", err);
    handler.metrics.certify.inc({ result: error.code });
    return;
  }
  if (route === "report" && handler.annotatePod) {
    report(handler, handler.annotatePod, deadlines, budget, stream, headers).then(
      ({ body, result }) => {
        respond(stream, 200, body);
        handler.metrics.reports.inc({ result });
      },
      (err: unknown) => handler.metrics.reports.inc({ result: refuse(handler, stream, "report", err).code }),
    );
    return;
  }
  certify(handler, deadlines, budget, stream, headers).then(
    ({ body }) => {
      respond(stream, 200, body);
      handler.metrics.certify.inc({ result: "Issued" });
      handler.metrics.certifySeconds.observe({}, (performance.now() - started) / 1000);
    },
    (err: unknown) => {
      const error = refuse(handler, stream, "certify", err);
      handler.metrics.certify.inc({ result: error.code });
      handler.metrics.certifySeconds.observe({}, (performance.now() - started) / 1000);
    },
  );
}

export function startCertifyServer(o: {
  port: number;
  host: string;
  tls: { cert: string; key: string };
  handler: CertifyHandler;
}): Promise<CertifyServer> {
  const { limits } = o.handler;
  const server = http2.createSecureServer({
    cert: o.tls.cert,
    key: o.tls.key,
    allowHTTP1: false,
    minVersion: "TLSv1.2",
    maxSessionMemory: 16,
    maxHeaderListPairs: 64,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: 32 * 1024 },
  });
  server.setTimeout(limits.idleTimeoutMs);
  const deadlines = new BodyDeadlines(limits.requestTimeoutMs);
  const budget: BodyBudget = { held: 0, max: limits.maxBufferedBytes };
  server.on("stream", (stream, headers) => handleStream(o.handler, deadlines, budget, stream, headers));
  server.on("sessionError", () => {});
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        setCertificate: (tls) => server.setSecureContext({ cert: tls.cert, key: tls.key }),
        close: () =>
          new Promise<void>((done) => {
            deadlines.stop();
            server.close(() => done());
            for (const session of sessions) session.close();
          }),
      });
    });
  });
}
