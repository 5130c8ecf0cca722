// The ServiceProfile kind: per-service routes (method + path regex) with timeouts and
// retryability, and the retry budget that keeps retries from turning into a storm.
// Named after the service's FQDN (<service>.<namespace>.svc.<cluster domain>), as in Linkerd.
import { type Static, Type } from "@sinclair/typebox";
import { Conditions, Duration, type KindDefinition, type ObjectMeta } from "./common-schema.ts";

export const HTTP_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "CONNECT",
  "TRACE",
] as const;

const Route = Type.Object({
  name: Type.String({
    minLength: 1,
    maxLength: 128,
    description: "Route name, a label on the proxy's metrics.",
  }),
  condition: Type.Object({
    method: Type.Optional(Type.Union(HTTP_METHODS.map((m) => Type.Literal(m)))),
    pathRegex: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: "Anchored regular expression matched against the request path.",
    }),
  }),
  isRetryable: Type.Boolean({ default: false, description: "Failed requests on this route may be retried." }),
  timeout: Type.Optional(Duration("Total time for a request on this route, retries included.")),
});
export type Route = Static<typeof Route>;

export const RetryBudget = Type.Object(
  {
    retryRatio: Type.Number({
      minimum: 0,
      maximum: 10,
      default: 0.2,
      description: "Retries allowed as a ratio of original requests.",
    }),
    minRetriesPerSecond: Type.Integer({ minimum: 0, maximum: 100000, default: 10 }),
    ttl: Duration("Window over which the ratio is computed.", "10s"),
  },
  { default: {} },
);
export type RetryBudget = Static<typeof RetryBudget>;

export const ServiceProfileSpec = Type.Object({
  routes: Type.Array(Route, {
    default: [],
    maxItems: 256,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
  }),
  retryBudget: RetryBudget,
});
export type ServiceProfileSpec = Static<typeof ServiceProfileSpec>;

export const ServiceProfileStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  conditions: Type.Optional(Conditions),
  routeCount: Type.Optional(Type.Integer()),
});
export type ServiceProfileStatus = Static<typeof ServiceProfileStatus>;

export interface ServiceProfile {
  apiVersion: "trellis.dev/v1alpha1";
  kind: "ServiceProfile";
  metadata: ObjectMeta;
  spec: ServiceProfileSpec;
  status?: ServiceProfileStatus;
}

export const ServiceProfileKind: KindDefinition<typeof ServiceProfileSpec, typeof ServiceProfileStatus> = {
  kind: "ServiceProfile",
  plural: "serviceprofiles",
  singular: "serviceprofile",
  shortNames: ["sp"],
  scope: "Namespaced",
  description: "Routes of one service, with per-route timeouts and retries bounded by a retry budget.",
  spec: ServiceProfileSpec,
  status: ServiceProfileStatus,
  printerColumns: [
    { name: "Routes", type: "integer", jsonPath: ".status.routeCount" },
    { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: "Retry-Ratio", type: "number", jsonPath: ".spec.retryBudget.retryRatio", priority: 1 },
    { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  ],
};
