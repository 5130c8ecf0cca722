/**
 * HTTP/2 connections from the proxy to its control plane (identity and destination), h2c
 * for http:// URLs and TLS for https:// ones, verified against the trust bundle and the
 * service's expected identity; plus a bounded unary call.
 *
 * Owns: connection set-up, server verification and the response size bound. Does not own
 * the identity or discovery protocols (identity-client.ts, discovery-client.ts).
 */
import http2 from "node:http2";
import tls, { type PeerCertificate, type SecureContext } from "node:tls";
import { peerDnsNames, peerSpiffeId } from "./peer-certificate.ts";

export interface ControlPlaneTls {
  /** Trust anchors PEM used to verify the service. */
  caPem: () => string | undefined;
  /** Our own client context once we have a leaf; optional for the identity service. */
  clientContext?: () => SecureContext | undefined;
  /**
   * The service requires our leaf (the destination service does): do not connect before we
   * have one, since the handshake would only be refused; the caller retries.
   */
  requireClientCertificate?: boolean;
}

/** A checkServerIdentity accepting `expected` as SPIFFE ID, DNS name or IP, else the URL host. */
export function controlPlaneVerifier(expected: string | undefined) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    if (expected === undefined) return tls.checkServerIdentity(host, cert);
    if (expected.startsWith("spiffe://")) {
      const id = peerSpiffeId(cert);
      return id === expected
        ? undefined
        : new Error(`control plane identity ${id ?? "(none)"} is not ${expected}`);
    }
    if (peerDnsNames(cert).includes(expected)) return undefined;
    return tls.checkServerIdentity(expected, cert);
  };
}

export function connectControlPlane(
  url: string,
  serverIdentity: string | undefined,
  security: ControlPlaneTls,
  connectTimeoutMs: number,
): http2.ClientHttp2Session {
  let session: http2.ClientHttp2Session;
  if (url.startsWith("https://")) {
    const ca = security.caPem();
    if (ca === undefined) throw new Error("no trust bundle loaded to verify the control plane");
    const ctx = security.clientContext?.();
    if (!ctx && security.requireClientCertificate) {
      throw new Error(`no valid leaf (none yet, or expired) to present to ${url}`);
    }
    session = http2.connect(url, {
      ...(ctx ? { secureContext: ctx } : { ca }),
      ALPNProtocols: ["h2"],
      rejectUnauthorized: true,
      checkServerIdentity: controlPlaneVerifier(serverIdentity),
    });
  } else {
    session = http2.connect(url);
  }
  const timer = setTimeout(() => session.destroy(new Error(`connect to ${url} timed out`)), connectTimeoutMs);
  session.once("connect", () => clearTimeout(timer));
  session.once("close", () => clearTimeout(timer));
  session.on("error", () => {});
  return session;
}

export interface UnaryResult {
  status: number;
  body: Buffer;
}

/** One request/response exchange with a deadline and a cap on the response size. */
export function unaryCall(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | undefined,
  timeoutMs: number,
  maxBytes: number,
): Promise<UnaryResult> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let size = 0;
    let status = 0;
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      chunks.push(chunk);
    });
    stream.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.on("close", () => {
      clearTimeout(timer);
      if (size > maxBytes) reject(new Error(`response larger than ${maxBytes} bytes`));
      else if (status === 0) reject(new Error(`stream closed before a response (code ${stream.rstCode})`));
      else resolve({ status, body: Buffer.concat(chunks) });
    });
    if (body !== undefined) stream.end(body);
  });
}
