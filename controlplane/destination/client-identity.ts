// Who may subscribe to the destination service: a client whose certificate chain verified
// against the trust bundle (OpenSSL did that during the handshake) and whose leaf names a mesh
// workload of our trust domain, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
// Any such identity may watch any Service: endpoints and routes are what every meshed proxy
// needs to reach its peers. Owns that decision and the names of its outcomes, as pure
// functions over the peer certificate; does not own the TLS handshake.
import { isSpiffeId, leafSpiffeId, parseCertificate } from "../../pki/index.ts";

/** Outcome of a client connection, the `result` label of the connection counter. */
export type ClientVerdict =
  | { ok: true; result: "Accepted"; identity: string }
  | { ok: false; result: ClientRefusal; message: string };

export type ClientRefusal =
  | "NoClientCertificate"
  | "UntrustedClientCertificate"
  | "NotMeshIdentity"
  | "HandshakeFailed";

const segment = "[A-Za-z0-9._-]+";

/** Checks the SPIFFE ID of a verified client leaf (DER) against the trust domain. */
export function checkClientLeaf(leafDer: Buffer | undefined, trustDomain: string): ClientVerdict {
  if (!leafDer || leafDer.length === 0) {
    return { ok: false, result: "NoClientCertificate", message: "client presented no certificate" };
  }
  let spiffeId: string | undefined;
  try {
    spiffeId = leafSpiffeId(leafDer);
    // The proxies' rule (SPIFFE X509-SVID §2, §5.2): one URI SAN, a valid SPIFFE ID, not a CA.
    if (spiffeId === undefined && parseCertificate(leafDer).spiffeId !== undefined) {
      return {
        ok: false,
        result: "NotMeshIdentity",
        message:
          "client certificate is not an X.509-SVID leaf (one URI SAN holding a valid SPIFFE ID, not a CA)",
      };
    }
  } catch (err) {
    return { ok: false, result: "NotMeshIdentity", message: `client certificate: ${(err as Error).message}` };
  }
  return checkClientIdentity(spiffeId, trustDomain);
}

export function checkClientIdentity(spiffeId: string | undefined, trustDomain: string): ClientVerdict {
  if (spiffeId === undefined) {
    return { ok: false, result: "NotMeshIdentity", message: "client certificate carries no SPIFFE ID" };
  }
  const prefix = `spiffe://${trustDomain}/`;
  const workload = new RegExp(`^ns/${segment}/sa/${segment}$`);
  if (
    !spiffeId.startsWith(prefix) ||
    !workload.test(spiffeId.slice(prefix.length)) ||
    !isSpiffeId(spiffeId)
  ) {
    return {
      ok: false,
      result: "NotMeshIdentity",
      message: `${spiffeId} is not a workload of trust domain ${trustDomain}`,
    };
  }
  return { ok: true, result: "Accepted", identity: spiffeId };
}

/**
 * Names a handshake the TLS layer refused (requestCert + rejectUnauthorized). OpenSSL itself
 * fails a client without a certificate; a chain that does not verify is refused by Node after
 * the handshake, which leaves the reason in the socket's `authorizationError`.
 */
export function classifyHandshakeError(
  err: Error & { code?: string },
  authorizationError?: unknown,
): ClientRefusal {
  if (authorizationError) return "UntrustedClientCertificate";
  const text = `${err.code ?? ""} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|did not return a certificate/i.test(text)) {
    return "NoClientCertificate";
  }
  if (
    /CERTIFICATE_VERIFY_FAILED|certificate verify failed|UNKNOWN_CA|unable to get|self.signed|expired/i.test(
      text,
    )
  ) {
    return "UntrustedClientCertificate";
  }
  return "HandshakeFailed";
}
