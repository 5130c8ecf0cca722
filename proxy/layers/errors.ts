/**
 * Layer: turns failures inside the stack into responses a client can act on — an HTTP status
 * with a `trellis-proxy-error` header, or for gRPC a trailers-only answer with grpc-status.
 *
 * Owns: the error-to-response mapping. Does not log or count (layers/metrics.ts counts the
 * resulting status).
 */
import {
  type Layer,
  ProxyError,
  type ProxyErrorReason,
  type ProxyRequest,
  type ProxyResponse,
} from "../handler.ts";
import { proxyErrorHeader } from "../headers.ts";

const grpcCode: Partial<Record<ProxyErrorReason, number>> = { Timeout: 4, Forbidden: 7, BadRequest: 3 };
const grpcUnavailable = 14;

export function errorResponse(req: ProxyRequest, err: unknown): ProxyResponse {
  const e =
    err instanceof ProxyError ? err : new ProxyError("UpstreamReset", (err as Error)?.message ?? "failed");
  const contentType = req.headers["content-type"];
  if (typeof contentType === "string" && contentType.startsWith("application/grpc")) {
    return {
      status: 200,
      headers: {
        "content-type": "application/grpc",
        "grpc-status": String(grpcCode[e.reason] ?? grpcUnavailable),
        "grpc-message": e.reason,
        [proxyErrorHeader]: e.reason,
      },
      body: null,
      trailers: () => undefined,
    };
  }
  const text = Buffer.from(`${e.reason}\n`);
  return {
    status: e.status,
    headers: {
      "content-type": "text/plain",
      "content-length": String(text.length),
      [proxyErrorHeader]: e.reason,
    },
    body: req.method === "HEAD" ? null : text,
    trailers: () => undefined,
  };
}

export const respondToErrors: Layer = (next) => (req) =>
  next(req).catch((err: unknown) => errorResponse(req, err));
