// `trellis-controlplane identity`: the certificate authority of the mesh. Reads its issuer from the
// Secret the operator keeps (re-read every 10 s, so a renewal or anchor rotation needs no restart),
// authenticates proxies with TokenReviews of their audience-bound ServiceAccount tokens, and signs
// their CSRs over HTTP/2 + TLS with a serving certificate it issues itself from the same issuer.
// Proxies also report what they trust there; the service writes that onto their pods, where the
// operator's trust-anchor rotation reads it.
// Health and metrics on the admin port (the Manager's server).
// Owns the wiring and the flags; the logic lives in the modules it imports.
import { parseArgs } from "node:util";
import type { KubernetesObject, V1Secret } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { CONTROL_PLANE_NAMESPACE, IDENTITY_AUDIENCE, parseDuration } from "../../api/index.ts";
import type { Manager } from "../../kube/index.ts";
import { DEFAULT_LIMITS, startCertifyServer } from "./certify-server.ts";
import { IdentityMetrics } from "./identity-metrics.ts";
import {
  type Issuer,
  issuerSecretData,
  type ServingCredentials,
  type ServingNames,
  servingCredentials,
  servingNames,
} from "./issuer.ts";
import { IssuerSource } from "./issuer-source.ts";
import { type PatchPod, PodAnnotator } from "./pod-annotator.ts";
import { type ReviewToken, TokenReviewer, type TokenReviewStatus } from "./token-review.ts";

const SECRET = { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true };
const POD = { apiVersion: "v1", kind: "Pod", plural: "pods", namespaced: true };
const SERVICE_ACCOUNT = "trellis-identity";
const SERVING_LIFETIME_MS = 24 * 3_600_000;

export interface IdentityFlags {
  port: number;
  host: string;
  trustDomain: string;
  issuerSecret: string;
  leafLifetimeMs: number;
  issuerPollMs: number;
  tokenCacheEntries: number;
  /** Upper bound on trusting a TokenReview result; undefined: until the token expires. */
  tokenCacheMaxMs: number | undefined;
  maxPendingReviews: number;
  maxBodyBytes: number;
  requestTimeoutMs: number;
}

export function parseIdentityFlags(argv: string[]): IdentityFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8080" },
      host: { type: "string", default: "0.0.0.0" },
      "trust-domain": { type: "string", default: "cluster.local" },
      "issuer-secret": { type: "string", default: `${CONTROL_PLANE_NAMESPACE}/trellis-identity-issuer` },
      "leaf-lifetime": { type: "string", default: "24h" },
      "issuer-poll": { type: "string", default: "10s" },
      "token-cache-size": { type: "string", default: "10000" },
      "token-cache-max-ttl": { type: "string" },
      "max-pending-reviews": { type: "string", default: "128" },
      "max-body-bytes": { type: "string", default: String(DEFAULT_LIMITS.maxBodyBytes) },
      "request-timeout": { type: "string", default: "10s" },
    },
    strict: false,
  });
  const text = (name: string) => String(values[name]);
  const positive = (name: string) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n <= 0)
      throw new Error(`--${name} must be a positive integer, got "${text(name)}"`);
    return n;
  };
  const ttl = values["token-cache-max-ttl"];
  return {
    port: Number(values.port),
    host: text("host"),
    trustDomain: text("trust-domain"),
    issuerSecret: text("issuer-secret"),
    leafLifetimeMs: parseDuration(text("leaf-lifetime")),
    issuerPollMs: parseDuration(text("issuer-poll")),
    tokenCacheEntries: positive("token-cache-size"),
    tokenCacheMaxMs: typeof ttl === "string" ? parseDuration(ttl) : undefined,
    maxPendingReviews: positive("max-pending-reviews"),
    maxBodyBytes: positive("max-body-bytes"),
    requestTimeoutMs: parseDuration(text("request-timeout")),
  };
}

function tokenReviewCall(manager: Manager): ReviewToken {
  return async (token, audiences) => {
    const review = await manager.client.request<{ status?: TokenReviewStatus }>({
      method: "POST",
      path: "/apis/authentication.k8s.io/v1/tokenreviews",
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences } },
      timeoutMs: 5_000,
    });
    return review.status ?? {};
  };
}

function podPatcher(manager: Manager): PatchPod {
  return async (pod, patch) => {
    await manager.client.patch(POD, { name: pod.name, namespace: pod.namespace }, "merge", patch, {
      fieldManager: "trellis-identity",
    });
  };
}

function secretReader(manager: Manager, ref: string) {
  const [namespace = CONTROL_PLANE_NAMESPACE, name = ""] = ref.split("/");
  return async () => {
    const secret = await manager.client.get<V1Secret & KubernetesObject>(SECRET, name, namespace);
    return issuerSecretData(secret.data);
  };
}

/**
 * Keeps the serving certificate current: re-issued (new key) when the issuer changes and past half
 * its lifetime; `install` puts it on the server. Returns the first certificate and a stop function.
 */
function keepServingCertificate(o: {
  issuers: IssuerSource;
  first: Issuer;
  names: ServingNames;
  metrics: IdentityMetrics;
  logger: Logger;
  install: (credentials: ServingCredentials) => void;
}): { first: ServingCredentials; stop: () => void } {
  const issue = (issuer: Issuer) => {
    const credentials = servingCredentials(issuer, o.names, SERVING_LIFETIME_MS);
    o.metrics.servingExpiry.set({}, Math.floor(credentials.notAfter.getTime() / 1000));
    return credentials;
  };
  let serving = issue(o.first);
  const renew = (issuer: Issuer, why: string) => {
    serving = issue(issuer);
    o.install(serving);
    o.logger.info({ issuer: issuer.fingerprint, notAfter: serving.notAfter.toISOString() }, why);
  };
  o.issuers.onChange((next) => renew(next, "serving certificate re-issued for the new issuer"));
  const timer = setInterval(() => {
    const current = o.issuers.current;
    if (current && needsRenewal(serving, Date.now())) renew(current, "serving certificate renewed");
  }, 60_000);
  return { first: serving, stop: () => clearInterval(timer) };
}

export async function runIdentity(
  manager: Manager,
  flags: IdentityFlags,
  logger: Logger,
): Promise<() => Promise<void>> {
  const metrics = new IdentityMetrics(manager.metrics.registry);
  const issuers = new IssuerSource(
    secretReader(manager, flags.issuerSecret),
    flags.issuerPollMs,
    logger,
    metrics,
  );
  const reviewer = new TokenReviewer({
    review: tokenReviewCall(manager),
    audience: IDENTITY_AUDIENCE,
    cacheEntries: flags.tokenCacheEntries,
    maxPending: flags.maxPendingReviews,
    maxCacheMs: flags.tokenCacheMaxMs,
    metrics,
  });
  const annotator = new PodAnnotator(podPatcher(manager), flags.tokenCacheEntries);
  await manager.start();
  await issuers.start();
  const issuer = await issuers.waitForIssuer(2_000);
  const namespace = process.env.TRELLIS_NAMESPACE ?? CONTROL_PLANE_NAMESPACE;
  let install: (credentials: ServingCredentials) => void = () => {};
  const serving = keepServingCertificate({
    issuers,
    first: issuer,
    names: servingNames(flags.trustDomain, namespace, SERVICE_ACCOUNT),
    metrics,
    logger,
    install: (credentials) => install(credentials),
  });
  const server = await startCertifyServer({
    port: flags.port,
    host: flags.host,
    tls: serving.first,
    handler: {
      policy: { trustDomain: flags.trustDomain, lifetimeMs: flags.leafLifetimeMs },
      limits: {
        ...DEFAULT_LIMITS,
        maxBodyBytes: flags.maxBodyBytes,
        requestTimeoutMs: flags.requestTimeoutMs,
      },
      issuer: () => issuers.current,
      authenticate: (token) => reviewer.authenticate(token),
      annotatePod: (pod, annotations) => annotator.annotate(pod, annotations),
      metrics,
      logger,
    },
  });
  install = (credentials) => server.setCertificate(credentials);
  logger.info(
    { port: server.port, trustDomain: flags.trustDomain, issuer: issuer.fingerprint },
    "identity serving",
  );
  return async () => {
    serving.stop();
    issuers.stop();
    await server.close();
    await manager.stop();
  };
}

/** Renew the serving certificate past half its lifetime (it is capped by the issuer's expiry). */
export function needsRenewal(serving: ServingCredentials, now: number): boolean {
  return serving.notAfter.getTime() - now < SERVING_LIFETIME_MS / 2;
}
