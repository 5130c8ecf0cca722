// Peer workload: node-forge. Forge implements RSA only — it cannot create or verify ECDSA keys,
// CSRs or certificates — so this peer does the same work with RSA-2048 everywhere (CSR keys and
// issuer): parse and verify a CSR, issue the same 24 h leaf shape. Its RSA private-key operations
// run in JavaScript; key generation is delegated to node:crypto when forge finds it.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";
import { measureSync } from "./pki-measure.ts";
import { DAY_MS, type Workload } from "./pki-workloads.ts";

/** Forge re-parses every CSR and caches nothing, so a smaller set of distinct CSRs measures the same work. */
const FORGE_CSR_COUNT = 40;
const FORGE_CSR_KEYS = 4;

function serialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 1;
  return bytes.toString("hex");
}

function rsaKeys(): forge.pki.rsa.KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey.export({ type: "pkcs1", format: "pem" }).toString()),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString()),
  };
}

function forgeCsrs(): string[] {
  const keys = Array.from({ length: FORGE_CSR_KEYS }, rsaKeys);
  return Array.from({ length: FORGE_CSR_COUNT }, (_, i) => {
    const pair = keys[i % keys.length] ?? rsaKeys();
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = pair.publicKey;
    const uri = `spiffe://cluster.local/ns/ns-${i}/sa/workload`;
    csr.setAttributes([
      {
        name: "extensionRequest",
        extensions: [{ name: "subjectAltName", altNames: [{ type: 6, value: uri }] }],
      },
    ]);
    csr.sign(pair.privateKey, forge.md.sha256.create());
    return forge.asn1.toDer(forge.pki.certificationRequestToAsn1(csr)).getBytes();
  });
}

interface ExtensionRequest {
  extensions?: Array<{ name?: string; altNames?: unknown }>;
}

interface ForgeIssuer {
  certificate: forge.pki.Certificate;
  privateKey: forge.pki.rsa.PrivateKey;
  der: Buffer;
  keyId: string;
}

function toDer(cert: forge.pki.Certificate): Buffer {
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), "binary");
}

function forgeIssuer(): ForgeIssuer {
  const keys = rsaKeys();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = keys.publicKey;
  certificate.serialNumber = serialHex();
  certificate.validity.notAfter = new Date(Date.now() + 30 * DAY_MS);
  certificate.setSubject([{ name: "commonName", value: "Forge Bench Issuer" }]);
  certificate.setIssuer(certificate.subject.attributes);
  certificate.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  certificate.sign(keys.privateKey, forge.md.sha256.create());
  const keyId = certificate.generateSubjectKeyIdentifier().getBytes();
  return { certificate, privateKey: keys.privateKey, der: toDer(certificate), keyId };
}

function issue(issuer: ForgeIssuer, publicKey: forge.pki.PublicKey, altNames: unknown): Buffer {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialHex();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + DAY_MS);
  cert.setSubject([]);
  cert.setIssuer(issuer.certificate.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: issuer.keyId },
    { name: "subjectAltName", altNames, critical: true },
  ]);
  cert.sign(issuer.privateKey, forge.md.sha256.create());
  return toDer(cert);
}

export function forgeWorkloads(): Workload[] {
  const issuer = forgeIssuer();
  const csrs = forgeCsrs();
  const fromCsr = (i: number) => {
    const csr = forge.pki.certificationRequestFromAsn1(forge.asn1.fromDer(csrs[i % csrs.length] ?? ""));
    if (!csr.verify() || csr.publicKey === null) throw new Error("forge: CSR signature did not verify");
    const request = csr.getAttribute({ name: "extensionRequest" }) as ExtensionRequest | null;
    const altNames = request?.extensions?.find((e) => e.name === "subjectAltName")?.altNames ?? [];
    return issue(issuer, csr.publicKey, altNames);
  };
  const fromNewKey = () => {
    const pair = forge.pki.rsa.generateKeyPair({ bits: 2048 });
    return issue(issuer, pair.publicKey, [{ type: 6, value: "spiffe://cluster.local/ns/bench/sa/workload" }]);
  };
  const peer = "node-forge, RSA-2048 (no ECDSA)";
  const issuerDer = issuer.der;
  return [
    {
      peer,
      work: "csr",
      note: `${FORGE_CSR_COUNT} CSRs`,
      sample: async () => ({ der: fromCsr(0), issuerDer }),
      run: async (s) => measureSync(fromCsr, s),
    },
    {
      peer,
      work: "keygen",
      sample: async () => ({ der: fromNewKey(), issuerDer }),
      run: async (s) => measureSync(fromNewKey, s),
    },
  ];
}
