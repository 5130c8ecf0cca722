// The injector's HTTPS admission endpoint: reads an AdmissionReview, asks decideInjection what
// to do with the pod, answers with the JSON Patch. A mesh must never be the reason a pod cannot
// be created: a well-formed admission.k8s.io/v1 review that is not the CREATE of a Pod, or a
// pod that is not to be meshed (nor any pod of kube-system or Trellis's own namespace, which
// are never meshed), is answered "allowed, unchanged". The decision's notices (a pod
// that asked to be meshed and is not, refused capture annotations, a Pod Security level that
// forbids trellis-init) are admission warnings, which the pod's creator sees, and Events on the
// pod's owner (none on a dry run). A body that is
// not such a review (not JSON, another AdmissionReview version, no request uid to answer to,
// a CREATE without the pod) gets 400 with the reason: no valid answer can be made to it, and the
// API server then applies the webhook's failurePolicy, Ignore: the pod is admitted unchanged.
// Bounded: bodies over 2 MiB get 413, and past 32 MiB of bodies held at once, 503. Every outcome is counted. The serving certificate can be
// swapped while running.
import { createServer, type Server } from "node:https";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { NEVER_MESHED_NAMESPACES } from "../../api/index.ts";
import type { Counter } from "../../kube/index.ts";
import { decideInjection, type InjectionConfig, type InjectionNotice } from "./inject.ts";

export const MAX_BODY_BYTES = 2 * 1024 * 1024;

/**
 * Request bodies held at once, across connections. Reviews come from whatever reaches the port,
 * and each may hold up to MAX_BODY_BYTES for the 10 s request timeout: without a bound, ~128
 * connections sending large bodies took the injector past its 256 MiB memory limit, and while it
 * restarted every pod was admitted without a proxy (failurePolicy Ignore). Past the bound a
 * request is answered 503 at once; the pods the API server asks about are a few KiB each.
 */
export const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

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
  /** The namespace's annotations, fresh enough that a pod created just after it was meshed is meshed. */
  namespaceAnnotations(namespace: string): Record<string, string> | Promise<Record<string, string>>;
  /** The namespace's labels (its Pod Security level); none when unknown. */
  namespaceLabels?(namespace: string): Record<string, string>;
  /** Records a notice as an Event about `regarding` (the pod's owner, the pod or its namespace). */
  recordEvent?(regarding: KubernetesObject, notice: InjectionNotice): void;
  logger: Logger;
  admissions: Counter;
}

interface AdmissionReview {
  apiVersion?: string;
  kind?: string;
  request?: {
    uid?: unknown;
    kind?: { group?: string; version?: string; kind?: string };
    subResource?: string;
    operation?: string;
    namespace?: string;
    object?: V1Pod;
    dryRun?: boolean;
  };
}

/** A body no AdmissionReview answer can be made to: answered 400 with this message. */
export class MalformedReview extends Error {
  override readonly name = "MalformedReview";
}

export async function admissionResponse(review: AdmissionReview, ctx: WebhookContext): Promise<object> {
  if (review?.apiVersion !== "admission.k8s.io/v1" || review.kind !== "AdmissionReview")
    throw new MalformedReview("not an admission.k8s.io/v1 AdmissionReview");
  const request = review.request;
  if (typeof request?.uid !== "string" || request.uid === "")
    throw new MalformedReview("the AdmissionReview has no request uid");
  const uid = request.uid;
  const base = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" };
  const unchanged = { ...base, response: { uid, allowed: true } };
  const k = request.kind;
  if (
    k?.group !== "" ||
    k?.version !== "v1" ||
    k?.kind !== "Pod" ||
    request.operation !== "CREATE" ||
    request.subResource
  ) {
    ctx.admissions.inc({ result: "ignored" });
    return unchanged;
  }
  const pod = request.object;
  if (!pod || typeof pod !== "object") throw new MalformedReview("a Pod CREATE without the pod");
  const config = ctx.config();
  if (!config) {
    ctx.admissions.inc({ result: "no_mesh" });
    return unchanged;
  }
  const namespace = request.namespace ?? pod.metadata?.namespace ?? "default";
  // The webhook's namespaceSelector keeps the API server from asking about these; a review that
  // names one anyway (a client posting its own) is answered as the rule says, with no Event.
  if (NEVER_MESHED_NAMESPACES.includes(namespace)) {
    ctx.admissions.inc({ result: "ignored" });
    return unchanged;
  }
  const decision = decideInjection(
    pod,
    await ctx.namespaceAnnotations(namespace),
    config,
    ctx.namespaceLabels?.(namespace) ?? {},
  );
  const warnings = decision.notices.map((n) => n.message);
  if (!request.dryRun)
    for (const notice of decision.notices) ctx.recordEvent?.(eventSubject(pod, namespace), notice);
  if (!decision.inject) {
    ctx.admissions.inc({ result: warnings.length > 0 ? "refused" : "skipped" });
    if (warnings.length === 0) return unchanged;
    const name = pod.metadata?.name ?? pod.metadata?.generateName ?? "";
    ctx.logger.info({ namespace, pod: name, reason: decision.reason }, "pod not meshed");
    return { ...base, response: { uid, allowed: true, warnings } };
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
  maxBufferedBytes?: number;
}): Promise<{ server: Server; port: number; setCertificate(tls: { cert: string; key: string }): void }> {
  const maxBuffered = opts.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
  let buffered = 0;
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
      const release = () => {
        buffered -= size;
        size = 0;
        chunks.length = 0;
      };
      req.once("close", release);
      req.on("data", (c: Buffer) => {
        if (size + c.length > MAX_BODY_BYTES || buffered + c.length > maxBuffered) {
          const tooLarge = size + c.length > MAX_BODY_BYTES;
          opts.ctx.admissions.inc({ result: tooLarge ? "too_large" : "overloaded" });
          res.writeHead(tooLarge ? 413 : 503).end();
          req.destroy();
          release();
          return;
        }
        size += c.length;
        buffered += c.length;
        chunks.push(c);
      });
      req.on("end", async () => {
        if (res.writableEnded) return;
        const text = Buffer.concat(chunks).toString("utf8");
        release();
        let body: object;
        try {
          body = await admissionResponse(JSON.parse(text) as AdmissionReview, opts.ctx);
        } catch (err) {
          if (!(err instanceof MalformedReview || err instanceof SyntaxError)) {
            // A bug of ours: the API server applies failurePolicy (Ignore), the pod is admitted.
            opts.ctx.admissions.inc({ result: "error" });
            opts.ctx.logger.error({ err: String(err) }, "admission review failed");
            res.writeHead(500, { "content-type": "text/plain" }).end("internal error\n");
            return;
          }
          opts.ctx.admissions.inc({ result: "malformed" });
          opts.ctx.logger.warn({ err: String(err) }, "malformed admission review");
          res
            .writeHead(400, { "content-type": "text/plain" })
            .end(`malformed AdmissionReview: ${err.message}\n`);
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
