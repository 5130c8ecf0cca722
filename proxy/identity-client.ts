/**
 * The identity protocol, client side: POST /v1/certify with the ServiceAccount token as a
 * bearer token and a PEM CSR as the body; the answer is JSON {certificateChainPem, notAfter}.
 * See docs/proxy.md.
 *
 * Owns: one certify exchange and the shape check of its answer. Does not own keys, renewal
 * timing or TLS contexts (local-identity.ts).
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

const maxResponseBytes = 256 * 1024;

export async function certify(req: CertifyRequest): Promise<CertifyResult> {
  // Read the token each time: projected ServiceAccount tokens are rotated by the kubelet.
  const token = (await readFile(req.tokenPath, "utf8")).trim();
  if (token === "") throw new Error(`token file ${req.tokenPath} is empty`);
  const session = connectControlPlane(req.url, req.serverIdentity, req.security, req.timeoutMs);
  try {
    const res = await unaryCall(
      session,
      {
        ":method": "POST",
        ":path": "/v1/certify",
        authorization: `Bearer ${token}`,
        "content-type": "application/pkcs10",
        accept: "application/json",
      },
      Buffer.from(req.csrPem),
      req.timeoutMs,
      maxResponseBytes,
    );
    if (res.status !== 200) {
      throw new Error(`identity service answered ${res.status}: ${res.body.toString("utf8", 0, 200)}`);
    }
    return parseCertifyResult(res.body.toString("utf8"));
  } finally {
    session.close();
  }
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
