// Peer workload: @peculiar/x509 on node's WebCrypto, doing the Trellis work — parse and verify the
// same 300 P-256 CSRs, then issue the same leaf shape — the way a general X.509 library does it.

import { randomBytes, webcrypto } from "node:crypto";
import { type X509, x509 } from "../pki/testing/peculiar-x509.ts";
import { measureAsync } from "./pki-measure.ts";
import { DAY_MS, type Workload } from "./pki-workloads.ts";

const EC = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING = { name: "ECDSA", hash: "SHA-256" };

function serialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 1;
  return bytes.toString("hex");
}

interface PeculiarIssuer {
  certificate: InstanceType<typeof x509.X509Certificate>;
  privateKey: webcrypto.CryptoKey;
  keyId: string;
}

async function peculiarIssuer(): Promise<PeculiarIssuer> {
  const keys = await webcrypto.subtle.generateKey(EC, false, ["sign", "verify"]);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: "CN=Peculiar Bench Issuer",
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyId = certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? "";
  return { certificate, privateKey: keys.privateKey, keyId };
}

async function issue(issuer: PeculiarIssuer, publicKey: X509.PublicKeyType, san: X509.JsonGeneralNames) {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex(),
    issuer: issuer.certificate.subject,
    subject: "",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey,
    signingKey: issuer.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      new x509.AuthorityKeyIdentifierExtension(issuer.keyId),
      new x509.SubjectAlternativeNameExtension(san, true),
    ],
  });
  return Buffer.from(cert.rawData);
}

export async function peculiarWorkloads(csrs: Buffer[]): Promise<Workload[]> {
  const issuer = await peculiarIssuer();
  const issuerDer = Buffer.from(issuer.certificate.rawData);
  const fromCsr = async (i: number) => {
    const csr = new x509.Pkcs10CertificateRequest(csrs[i % csrs.length] ?? Buffer.alloc(0));
    if (!(await csr.verify())) throw new Error("peculiar: CSR signature did not verify");
    const san = csr.getExtension("2.5.29.17");
    const names = san instanceof x509.SubjectAlternativeNameExtension ? san.names.toJSON() : [];
    return issue(issuer, csr.publicKey, names);
  };
  const fromNewKey = async () => {
    const leafKeys = await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"]);
    return issue(issuer, leafKeys.publicKey, [
      { type: "url", value: "spiffe://cluster.local/ns/bench/sa/workload" },
    ]);
  };
  const peer = "@peculiar/x509 on WebCrypto";
  return [
    {
      peer,
      work: "csr",
      sample: async () => ({ der: await fromCsr(0), issuerDer }),
      run: (seconds) => measureAsync(async (i) => void (await fromCsr(i)), seconds),
    },
    {
      peer,
      work: "keygen",
      sample: async () => ({ der: await fromNewKey(), issuerDer }),
      run: (seconds) => measureAsync(async () => void (await fromNewKey()), seconds),
    },
  ];
}
