// The injector's HTTPS admission endpoint: reads an AdmissionReview, asks decideInjection what
// to do with the pod, answers with the JSON Patch and the decision's notices as admission
// warnings (each also recorded as an Event, except on dry runs). Bounded: request bodies over
// 2 MiB are refused; any failure answers "allowed, unchanged" (and is counted), because a mesh
// must never be the reason a pod cannot be created. The serving certificate can be swapped
// while running.
import { createServer, type Server } from "node:https";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Counter } from "../../kube/index.ts";
import { decideInjection, type InjectionConfig, type InjectionNotice } from "./inject.ts";

export const MAX_BODY_BYTES = 2 * 1024 * 1024;

/**
 * How long an idle keep-alive connection from the API server stays open. The API server's
 * webhook client (Go net/http) keeps idle connections for 90 s and does not resend a POST
 * whose connection the server closed under it: with Node's default of 5 s, a pod created just
 * as the server closed an idle connection failed with "use of closed network connection" and,
 * the webhook failing open, ran without a proxy (seen in a 2,000-pod rollout). Longer than the
 * client's timeout, the client always closes first.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;

export interface WebhookContext {
  /** The injection settings now (from the Mesh), or undefined when there is no Mesh. */
  config(): InjectionConfig | undefined;
  namespaceAnnotations(namespace: string): Record<string, string>;
  /** The namespace's labels (its Pod Security level); none when unknown. */
  namespaceLabels?(namespace: string): Record<string, string>;
  /** Records a notice as an Event about `regarding` (the pod's owner, the pod or its namespace). */
  recordEvent?(regarding: KubernetesObject, notice: InjectionNotice): void;
  logger: Logger;
  admissions: Counter;
}

interface AdmissionReview {
  apiVersion?: string;
  request?: { uid: string; namespace?: string; object?: V1Pod; dryRun?: boolean };
}

export function admissionResponse(review: AdmissionReview, ctx: WebhookContext): object {
  const uid = review.request?.uid ?? "";
  const base = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" };
  const pod = review.request?.object;
  const config = ctx.config();
  if (!pod || !config) {
    ctx.admissions.inc({ result: config ? "malformed" : "no_mesh" });
    return { ...base, response: { uid, allowed: true } };
  }
  const namespace = review.request?.namespace ?? pod.metadata?.namespace ?? "default";
  const decision = decideInjection(
    pod,
    ctx.namespaceAnnotations(namespace),
    config,
    ctx.namespaceLabels?.(namespace) ?? {},
  );
  const warnings = decision.notices.map((n) => n.message);
  if (!review.request?.dryRun)
    for (const notice of decision.notices) ctx.recordEvent?.(eventSubject(pod, namespace), notice);
  if (!decision.inject) {
    ctx.admissions.inc({ result: "skipped" });
    return { ...base, response: { uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) } };
  }
  ctx.admissions.inc({ result: "injected" });
  ctx.logger.debug(
    { namespace, pod: pod.metadata?.name ?? pod.metadata?.generateName, version: decision.version },
    "injected proxy",
  );
  return {
    ...base,
    response: {
      uid,
      allowed: true,
      ...(warnings.length > 0 ? { warnings } : {}),
      patchType: "JSONPatch",
      patch: Buffer.from(JSON.stringify(decision.patch)).toString("base64"),
    },
  };
}

/**
 * What an Event about a pod at admission is about: the pod does not exist yet and may have no name
 * (generateName) nor UID, so its controller (a ReplicaSet, a Job) when it has one, where
 * `kubectl describe` shows it; else the pod by name; else the namespace.
 */
export function eventSubject(pod: V1Pod, namespace: string): KubernetesObject {
  const owner =
    pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (owner)
    return {
      apiVersion: owner.apiVersion,
      kind: owner.kind,
      metadata: { name: owner.name, namespace, uid: owner.uid },
    };
  if (pod.metadata?.name)
    return { apiVersion: "v1", kind: "Pod", metadata: { name: pod.metadata.name, namespace } };
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, namespace } };
}

export function startWebhookServer(opts: {
  port: number;
  host: string;
  tls: { cert: string; key: string };
  ctx: WebhookContext;
}): Promise<{ server: Server; port: number; setCertificate(tls: { cert: string; key: string }): void }> {
  const server = createServer(
    {
      cert: opts.tls.cert,
      key: opts.tls.key,
      requestTimeout: 10_000,
      headersTimeout: 5_000,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    },
    (req, res) => {
      if (req.method !== "POST" || !req.url?.startsWith("/inject")) {
        res.writeHead(404).end();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          opts.ctx.admissions.inc({ result: "too_large" });
          res.writeHead(413).end();
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on("end", () => {
        if (res.writableEnded) return;
        let body: object;
        try {
          body = admissionResponse(
            JSON.parse(Buffer.concat(chunks).toString("utf8")) as AdmissionReview,
            opts.ctx,
          );
        } catch (err) {
          opts.ctx.admissions.inc({ result: "malformed" });
          opts.ctx.logger.warn({ err: String(err) }, "malformed admission review");
          res.writeHead(400, { "content-type": "text/plain" }).end("malformed AdmissionReview\n");
          return;
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
      });
    },
  );
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      const address = server.address();
      resolve({
        server,
        port: typeof address === "object" && address ? address.port : opts.port,
        setCertificate: (tls) => server.setSecureContext({ cert: tls.cert, key: tls.key }),
      });
    });
  });
}
