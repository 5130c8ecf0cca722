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

export function forgeWorkloads(): Workload[] {
  const issuerKeys = rsaKeys();
  const issuer = forge.pki.createCertificate();
  issuer.publicKey = issuerKeys.publicKey;
  issuer.serialNumber = serialHex();
  issuer.validity.notAfter = new Date(Date.now() + 30 * DAY_MS);
  issuer.setSubject([{ name: "commonName", value: "Forge Bench Issuer" }]);
  issuer.setIssuer(issuer.subject.attributes);
  issuer.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  issuer.sign(issuerKeys.privateKey, forge.md.sha256.create());
  const issuerDer = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(issuer)).getBytes(), "binary");
  const issuerKeyId = issuer.generateSubjectKeyIdentifier().getBytes();
  const csrs = forgeCsrs();

  const issue = (publicKey: forge.pki.PublicKey, altNames: unknown) => {
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = serialHex();
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + DAY_MS);
    cert.setSubject([]);
    cert.setIssuer(issuer.subject.attributes);
    cert.setExtensions([
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectKeyIdentifier" },
      { name: "authorityKeyIdentifier", keyIdentifier: issuerKeyId },
      { name: "subjectAltName", altNames, critical: true },
    ]);
    cert.sign(issuerKeys.privateKey, forge.md.sha256.create());
    return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), "binary");
  };
  const fromCsr = (i: number) => {
    const csr = forge.pki.certificationRequestFromAsn1(forge.asn1.fromDer(csrs[i % csrs.length] ?? ""));
    if (!csr.verify() || csr.publicKey === null) throw new Error("forge: CSR signature did not verify");
    const request = csr.getAttribute({ name: "extensionRequest" }) as ExtensionRequest | null;
    const altNames = request?.extensions?.find((e) => e.name === "subjectAltName")?.altNames ?? [];
    return issue(csr.publicKey, altNames);
  };
  const fromNewKey = () => {
    const pair = forge.pki.rsa.generateKeyPair({ bits: 2048 });
    return issue(pair.publicKey, [{ type: 6, value: "spiffe://cluster.local/ns/bench/sa/workload" }]);
  };
  const peer = "node-forge, RSA-2048 (no ECDSA)";
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
