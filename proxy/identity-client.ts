/**
 * The identity protocol, client side: POST /v1/certify with the ServiceAccount token as a
 * bearer token and a PEM CSR as the body; the answer is JSON {certificateChainPem, notAfter}.
 * POST /v1/report with the same token and JSON {trustBundleFingerprints, leafAnchorFingerprint}
 * tells the control plane what this proxy trusts. See docs/proxy.md and docs/identity.md.
 *
 * Owns: one certify or report exchange and the shape check of its answer. Does not own keys,
 * renewal or report timing, or TLS contexts (local-identity.ts, trust-reporter.ts).
 */
import { readFile } from "node:fs/promises";
import { type ControlPlaneTls, connectControlPlane, unaryCall } from "./control-plane-client.ts";

export interface CertifyRequest {
  url: string;
  serverIdentity: string | undefined;
  tokenPath: string;
  csrPem: string;
  security: ControlPlaneTls;
  timeoutMs: number;
}

export interface CertifyResult {
  certificateChainPem: string;
  notAfter: string;
}

export interface TrustReportRequest {
  url: string;
  serverIdentity: string | undefined;
  tokenPath: string;
  trustBundleFingerprints: string[];
  leafAnchorFingerprint: string | undefined;
  security: ControlPlaneTls;
  timeoutMs: number;
}

/** A refusal of the identity service: `status` and its `{error}` code, for retry decisions. */
export class IdentityRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const maxResponseBytes = 256 * 1024;

async function post(
  req: {
    url: string;
    serverIdentity: string | undefined;
    tokenPath: string;
    security: ControlPlaneTls;
    timeoutMs: number;
  },
  path: string,
  contentType: string,
  body: Buffer,
): Promise<string> {
  // Read the token each time: projected ServiceAccount tokens are rotated by the kubelet.
  const token = (await readFile(req.tokenPath, "utf8")).trim();
  if (token === "") throw new Error(`token file ${req.tokenPath} is empty`);
  const session = connectControlPlane(req.url, req.serverIdentity, req.security, req.timeoutMs);
  try {
    const res = await unaryCall(
      session,
      {
        ":method": "POST",
        ":path": path,
        authorization: `Bearer ${token}`,
        "content-type": contentType,
        accept: "application/json",
      },
      body,
      req.timeoutMs,
      maxResponseBytes,
    );
    const text = res.body.toString("utf8");
    if (res.status !== 200) {
      let code = "";
      try {
        code = String((JSON.parse(text) as { error?: unknown }).error ?? "");
      } catch {
        // not a JSON refusal
      }
      throw new IdentityRefusal(
        res.status,
        code,
        `identity service answered ${res.status}: ${text.slice(0, 200)}`,
      );
    }
    return text;
  } finally {
    session.close();
  }
}

export async function certify(req: CertifyRequest): Promise<CertifyResult> {
  return parseCertifyResult(await post(req, "/v1/certify", "application/pkcs10", Buffer.from(req.csrPem)));
}

/** Sends one trust report; resolves when the identity service recorded it. */
export async function reportTrust(req: TrustReportRequest): Promise<void> {
  const body = JSON.stringify({
    trustBundleFingerprints: req.trustBundleFingerprints,
    ...(req.leafAnchorFingerprint ? { leafAnchorFingerprint: req.leafAnchorFingerprint } : {}),
  });
  await post(req, "/v1/report", "application/json", Buffer.from(body));
}

export function parseCertifyResult(text: string): CertifyResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error("identity service answer is not JSON");
  }
  const o = v as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null) throw new Error("identity service answer is not an object");
  if (typeof o.certificateChainPem !== "string" || !o.certificateChainPem.includes("BEGIN CERTIFICATE")) {
    throw new Error("identity service answer lacks certificateChainPem");
  }
  return {
    certificateChainPem: o.certificateChainPem,
    notAfter: typeof o.notAfter === "string" ? o.notAfter : "",
  };
}
