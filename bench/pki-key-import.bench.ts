// Benchmark: the ways node:crypto offers to verify a signature with a P-256 public key seen for the
// first time (as every CSR brings), against a key imported beforehand. Answers "would verifying
// from the SPKI DER avoid the key import?" (docs/pki.md: no — the import is the cost).
// Run: node --import tsx bench/pki-key-import.bench.ts   (KEY_BENCH_ROUNDS, KEY_BENCH_MS)
import { createPublicKey, generateKeyPairSync, type JsonWebKey, sign, verify } from "node:crypto";
import { recordFigure } from "./bench-figures.ts";
import { median } from "./pki-measure.ts";

const ROUNDS = Number(process.env.KEY_BENCH_ROUNDS ?? 3);
const MS = Number(process.env.KEY_BENCH_MS ?? 700);
const KEYS = 300;
const data = Buffer.alloc(300, 7);
// generateKeyPairSync is fine here: the keys are exported at once, before any GC pressure (docs/pki.md).
const pairs = Array.from({ length: KEYS }, () => generateKeyPairSync("ec", { namedCurve: "P-256" }));
const spkis = pairs.map((k) => k.publicKey.export({ type: "spki", format: "der" }));
const signatures = pairs.map((k) => sign("sha256", data, k.privateKey));
const jwkOf = (spki: Buffer): JsonWebKey => ({
  kty: "EC",
  crv: "P-256",
  x: spki.toString("base64url", 27, 59),
  y: spki.toString("base64url", 59, 91),
});
const imported = spkis.map((der) => createPublicKey({ key: der, format: "der", type: "spki" }));
const at = (i: number) => ({ der: spkis[i % KEYS] as Buffer, sig: signatures[i % KEYS] as Buffer });

const routes: Record<string, (i: number) => boolean> = {
  "JWK → createPublicKey → verify (pki/)": (i) =>
    verify("sha256", data, createPublicKey({ key: jwkOf(at(i).der), format: "jwk" }), at(i).sig),
  'verify(…, {key: jwk, format: "jwk"})': (i) =>
    verify("sha256", data, { key: jwkOf(at(i).der), format: "jwk" }, at(i).sig),
  "SPKI DER → createPublicKey → verify": (i) =>
    verify("sha256", data, createPublicKey({ key: at(i).der, format: "der", type: "spki" }), at(i).sig),
  'verify(…, {key: der, format: "der", type: "spki"})': (i) =>
    verify("sha256", data, { key: at(i).der, format: "der", type: "spki" }, at(i).sig),
  "verify, key imported beforehand (limit)": (i) =>
    verify("sha256", data, imported[i % KEYS] as ReturnType<typeof createPublicKey>, at(i).sig),
};

const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(routes)) {
    const cpu = process.cpuUsage();
    const end = performance.now() + MS;
    let n = 0;
    while (performance.now() < end) {
      if (!run(n)) throw new Error(`${name}: a signature did not verify`);
      n++;
    }
    const used = process.cpuUsage(cpu);
    results.set(name, [...(results.get(name) ?? []), Math.round(n / ((used.user + used.system) / 1e6))]);
  }
}
console.log(`P-256 verify with a key seen for the first time, ${KEYS} keys in rotation, per CPU-second`);
console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}, ${ROUNDS} rounds × ${MS} ms`);
for (const [name, rates] of results) {
  recordFigure(name, median(rates), "verifies per CPU-s", "higher");
  console.log(`${name.padEnd(52)} ${rates.map((r) => r.toLocaleString("en-US")).join(" / ")}`);
}
