// Certificates of the local cluster: its CA, the API server's serving certificate, client
// certificates (the admin is in `system:masters`), and the service-account signing key.
//
// Made with the `openssl` command, as kubeadm-style tooling would, so the harness does not
// depend on the PKI code that Trellis itself ships (and tests check that code against openssl).
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ClusterPki {
  dir: string;
  caCert: string;
  caKey: string;
  apiServerCert: string;
  apiServerKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

export interface KeyAndCert {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function newKey(path: string, cwd: string): void {
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path], cwd);
}

/** Signs a certificate for `subject` with the cluster CA; `extensions` is an openssl extension section. */
function signWithCa(dir: string, name: string, subject: string, extensions: string): KeyAndCert {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  newKey(key, dir);
  openssl(["req", "-new", "-key", key, "-subj", subject, "-out", csr], dir);
  writeFileSync(ext, `[ext]\n${extensions}\n`);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "30",
      "-sha256",
      "-extfile",
      ext,
      "-extensions",
      "ext",
      "-out",
      cert,
    ],
    dir,
  );
  return { cert, key };
}

/** `extraIpAddresses`: more API server SANs (the real node's gateway address, which it advertises). */
export function createClusterPki(dir: string, extraIpAddresses: string[] = []): ClusterPki {
  newKey("ca.key", dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-subj",
      "/CN=trellis-local-cluster-ca",
      "-days",
      "30",
      "-sha256",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
      "-out",
      "ca.crt",
    ],
    dir,
  );
  const apiServer = issueServingCertificate(dir, "apiserver", {
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
    ipAddresses: ["127.0.0.1", "10.0.0.1", ...extraIpAddresses],
  });
  const admin = issueClientCertificate(dir, "admin", "trellis-admin", ["system:masters"]);
  newKey("sa.key", dir);
  openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    apiServerCert: apiServer.cert,
    apiServerKey: apiServer.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    serviceAccountKey: join(dir, "sa.key"),
    serviceAccountPub: join(dir, "sa.pub"),
  };
}

export function issueServingCertificate(
  dir: string,
  name: string,
  sans: { dnsNames?: string[]; ipAddresses?: string[] },
): KeyAndCert {
  const altNames = [
    ...(sans.dnsNames ?? []).map((d) => `DNS:${d}`),
    ...(sans.ipAddresses ?? []).map((ip) => `IP:${ip}`),
  ].join(",");
  return signWithCa(
    dir,
    name,
    `/CN=${name}`,
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${altNames}`,
  );
}

export function issueClientCertificate(
  dir: string,
  name: string,
  commonName: string,
  organizations: string[],
): KeyAndCert {
  const subject = `/CN=${commonName}${organizations.map((o) => `/O=${o}`).join("")}`;
  return signWithCa(
    dir,
    name,
    subject,
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth",
  );
}

/** A kubeconfig with embedded credentials, usable by kubectl, the TypeScript client and the controllers. */
export function writeKubeconfig(
  path: string,
  server: string,
  caCertPath: string,
  user: { name: string } & ({ certPath: string; keyPath: string } | { token: string }),
): void {
  const b64 = (p: string) => readFileSync(p).toString("base64");
  const credentials =
    "token" in user
      ? `    token: ${user.token}`
      : `    client-certificate-data: ${b64(user.certPath)}\n    client-key-data: ${b64(user.keyPath)}`;
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: trellis-local
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caCertPath)}
users:
- name: ${user.name}
  user:
${credentials}
contexts:
- name: trellis-local
  context:
    cluster: trellis-local
    user: ${user.name}
current-context: trellis-local
`,
    { mode: 0o600 },
  );
}
