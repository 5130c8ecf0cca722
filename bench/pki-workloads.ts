// Workloads of the pki benchmark that run on node:crypto directly: the Trellis fast path (pki/)
// and the limits of node:crypto itself. Each workload issues the same certificate shape: a 24 h
// leaf with a SPIFFE URI SAN, digitalSignature, serverAuth+clientAuth, SKI/AKI, signed by an
// ECDSA P-256 issuer, from one of 300 distinct CSRs in rotation (or from a freshly generated key).

import { createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { DerReader } from "../pki/der-decode.ts";
import { TAG } from "../pki/der-encode.ts";
import {
  createCsr,
  createIssuer,
  createTrustAnchor,
  generateKeyPair,
  issueLeaf,
  parseCsr,
  type Signer,
  spiffeIdFor,
} from "../pki/index.ts";
import { interleavedCpuMicros, measureSync, type Sample } from "./pki-measure.ts";

export const DAY_MS = 24 * 3_600_000;
export const CSR_COUNT = 300;

export interface Workload {
  peer: string;
  work: "csr" | "keygen";
  note?: string;
  /** One issued certificate (DER) and the issuer that signed it, to check the peer does the real work. */
  sample(): Promise<{ der: Buffer; issuerDer: Buffer }>;
  run(seconds: number): Promise<Sample>;
}

/** 300 distinct ECDSA P-256 CSRs, each with its own key and SPIFFE ID. */
export function ecdsaCsrs(): Buffer[] {
  return Array.from({ length: CSR_COUNT }, (_, i) => {
    const spiffeId = spiffeIdFor("cluster.local", `ns-${i}`, "workload");
    return createCsr({ keyPair: generateKeyPair(), spiffeId }).der;
  });
}

function benchIssuer(): Signer {
  const rootKeys = generateKeyPair();
  const root = createTrustAnchor({
    commonName: "Bench Root",
    keyPair: rootKeys,
    notAfter: new Date(Date.now() + 365 * DAY_MS),
  });
  const keys = generateKeyPair();
  const rootSigner = { certificateDer: root.der, privateKey: rootKeys.privateKey };
  const issuer = createIssuer({
    commonName: "Bench Issuer",
    publicKey: keys.publicKey,
    signer: rootSigner,
    notAfter: new Date(Date.now() + 30 * DAY_MS),
  });
  return { certificateDer: issuer.der, privateKey: keys.privateKey };
}

export function trellisWorkloads(csrs: Buffer[]): Workload[] {
  const signer = benchIssuer();
  const fixedId = spiffeIdFor("cluster.local", "bench", "workload");
  const fromCsr = (i: number) => {
    const request = parseCsr(csrs[i % csrs.length] ?? Buffer.alloc(0));
    return issueLeaf({
      publicKey: request,
      signer,
      spiffeId: request.spiffeId,
      notAfter: new Date(Date.now() + DAY_MS),
    });
  };
  const fromNewKey = () => {
    const keys = generateKeyPair();
    return issueLeaf({
      publicKey: keys.publicKey,
      signer,
      spiffeId: fixedId,
      notAfter: new Date(Date.now() + DAY_MS),
    });
  };
  return [
    {
      peer: "Trellis pki (lean DER over node:crypto)",
      work: "csr",
      sample: async () => ({ der: fromCsr(0).der, issuerDer: signer.certificateDer }),
      run: async (seconds) => measureSync(fromCsr, seconds),
    },
    {
      peer: "Trellis pki (lean DER over node:crypto)",
      work: "keygen",
      sample: async () => ({ der: fromNewKey().der, issuerDer: signer.certificateDer }),
      run: async (seconds) => measureSync(fromNewKey, seconds),
    },
  ];
}

export interface LimitWorkload {
  name: string;
  run(seconds: number): Sample;
}

/**
 * What node:crypto alone costs for one certificate: one ECDSA verify (the CSR) and one sign (the
 * leaf) over payloads of the real sizes. The first excludes public-key import, as the limit in
 * docs/TARGETS does; the second includes importing each CSR's key, which every real CSR needs.
 */
export function nodeLimitWorkloads(csrs: Buffer[]): LimitWorkload[] {
  const signer = benchIssuer();
  const leaf = issueLeaf({
    publicKey: generateKeyPair().publicKey,
    signer,
    spiffeId: "spiffe://td/a/b",
    notAfter: new Date(Date.now() + DAY_MS),
  });
  const tbs = firstChild(leaf.der).bytes;
  const requests = csrs.map((der) => {
    const { bytes: info, rest } = firstChild(der);
    const spki = findSpki(info);
    const key = createPublicKey({ key: spki, format: "der", type: "spki" });
    // rest = AlgorithmIdentifier (12 bytes) then BIT STRING: tag, length, unused-bits byte, signature.
    const signature = rest.subarray(12 + 3);
    return { info, signature, key, jwk: key.export({ format: "jwk" }) };
  });
  const pick = (i: number) => requests[i % requests.length] ?? requests[0]!;
  const verifyAndSign = (info: Buffer, signature: Buffer, key: KeyObject) => {
    if (!verify("sha256", info, key, signature))
      throw new Error("limit workload: CSR signature did not verify");
    sign("sha256", tbs, signer.privateKey);
  };
  return [
    {
      name: "node:crypto verify + sign, keys imported beforehand",
      run: (s) =>
        measureSync((i) => {
          const r = pick(i);
          verifyAndSign(r.info, r.signature, r.key);
        }, s),
    },
    {
      name: "node:crypto P-256 key import + verify + sign",
      run: (s) =>
        measureSync((i) => {
          const r = pick(i);
          verifyAndSign(r.info, r.signature, createPublicKey({ key: r.jwk, format: "jwk" }));
        }, s),
    },
  ];
}

/** The first child TLV of a DER SEQUENCE (the TBS / CertificationRequestInfo) and what follows it. */
function firstChild(der: Buffer): { bytes: Buffer; rest: Buffer } {
  const outer = new DerReader(der, "MalformedDer");
  const sequence = outer.next(TAG.sequence);
  const child = DerReader.inside(der, sequence, "MalformedDer").next(TAG.sequence);
  return { bytes: der.subarray(child.start, child.end), rest: der.subarray(child.end, sequence.end) };
}

function findSpki(info: Buffer): Buffer {
  const start = info.indexOf(Buffer.from("3059301306072a8648ce3d0201", "hex"));
  return info.subarray(start, start + 91);
}

/**
 * Where a Trellis certificate's CPU goes: the two Trellis calls next to the node:crypto operations
 * inside them, measured interleaved. parseCsr − (import + verify) is the CSR decoding; issueLeaf −
 * sign is building, hashing (SKI, fingerprint) and PEM-encoding the certificate.
 */
export function trellisBreakdown(csrs: Buffer[], seconds: number): Record<string, number> {
  const signer = benchIssuer();
  const requests = csrs.map((der) => parseCsr(der));
  const parts = csrs.map((der) => {
    const { bytes: info, rest } = firstChild(der);
    const spki = findSpki(info);
    const jwk = {
      kty: "EC",
      crv: "P-256",
      x: spki.toString("base64url", 27, 59),
      y: spki.toString("base64url", 59, 91),
    };
    return { info, signature: rest.subarray(12 + 3), jwk };
  });
  const tbs = firstChild(
    issueLeaf({
      publicKey: generateKeyPair().publicKey,
      signer,
      spiffeId: "spiffe://td/a/b",
      notAfter: new Date(Date.now() + DAY_MS),
    }).der,
  ).bytes;
  const at = <T>(list: T[], i: number): T => list[i % list.length] as T;
  return interleavedCpuMicros(
    {
      "parseCsr (Trellis)": (i) => parseCsr(at(csrs, i)),
      "  of which P-256 key import + verify (node:crypto)": (i) => {
        const p = at(parts, i);
        return verify("sha256", p.info, createPublicKey({ key: p.jwk, format: "jwk" }), p.signature);
      },
      "issueLeaf, key already imported (Trellis)": (i) => {
        const r = at(requests, i);
        return issueLeaf({
          publicKey: r,
          signer,
          spiffeId: r.spiffeId,
          notAfter: new Date(Date.now() + DAY_MS),
        });
      },
      "  of which ECDSA sign (node:crypto)": () => sign("sha256", tbs, signer.privateKey),
    },
    seconds,
  );
}
