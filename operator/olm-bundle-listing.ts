// What OperatorHub and a cluster console show about Trellis: the description written for users,
// icon, keywords, maintainers, links, categories, the examples offered on "Create", and the
// descriptors of the fields a console renders as forms and status panels. Pure data; the CSV
// (olm-bundle-csv.ts) places it. Does not own RBAC, the Deployment or versions.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export const DISPLAY_NAME = "Trellis Service Mesh";
export const PACKAGE_NAME = "trellis";
export const PROVIDER = { name: "Trellis", url: "https://trellis.dev" };
export const MAINTAINERS = [{ name: "Trellis maintainers", email: "maintainers@trellis.dev" }];
export const LINKS = [
  { name: "Documentation", url: "https://trellis.dev/docs" },
  { name: "Source code", url: "https://github.com/trellis-dev/trellis" },
];
export const KEYWORDS = [
  "service mesh",
  "mtls",
  "proxy",
  "sidecar",
  "certificates",
  "networking",
  "security",
];
export const CATEGORIES = "Networking, Security";
export const CAPABILITIES = "Full Lifecycle";
export const MIN_KUBE_VERSION = "1.30.0";
export const SUGGESTED_NAMESPACE = "trellis-operator";

export const SHORT_DESCRIPTION =
  "Installs, upgrades and secures a service mesh: mutual TLS between workloads, canaried proxy upgrades and automatic trust-anchor rotation.";

export const DESCRIPTION = `Trellis runs a service mesh on your cluster: a small L7 proxy beside every
application instance (the data plane) and the services that manage those proxies (the control
plane). The operator owns the whole lifecycle, so you describe the mesh you want in one object
and Trellis keeps it that way.

## What a Mesh gives you
* **Mutual TLS between workloads**, with SPIFFE identities derived from ServiceAccounts and
  short-lived certificates issued by the mesh's own certificate authority.
* **Certificates as objects.** The trust anchor, the identity issuer and the injector's serving
  certificate are \`Certificate\` resources that Trellis issues and renews into Secrets; their
  status shows expiry and the next renewal.
* **Automatic trust-anchor rotation**, in phases that never break a connection: the new anchor is
  published beside the old one, the issuer switches, and only then is the old anchor removed.
* **Canaried upgrades.** A new mesh version starts as a second control-plane revision; proxies
  move over in waves (a canary, then 10%, 25%, 50%, 100%) and roll back when success rate or
  latency degrade.
* **Per-route policy** with \`ServiceProfile\`: timeouts, retryable routes and a retry budget.

## Getting started
1. Install the operator from this page (all namespaces; it runs in \`trellis-operator\`).
2. Create a \`Mesh\` named \`default\`:

   \`\`\`yaml
   apiVersion: trellis.dev/v1alpha1
   kind: Mesh
   metadata:
     name: default
   spec:
     version: 1.0.0
   \`\`\`
3. Wait until it is Ready: \`kubectl get meshes\`.
4. Label a namespace \`trellis.dev/inject=enabled\`; pods created there get the proxy.

## Upgrades and removal
Operator upgrades from this catalog never re-issue certificates or restart the mesh; changing
\`spec.version\` of the Mesh upgrades the mesh itself, one minor release at a time. Uninstalling the
operator leaves every Mesh, Certificate and Secret in place; delete the Mesh first to remove the
mesh itself.
`;

/** The icon, drawn for Trellis, as OLM wants it: base64 data and a media type. */
export function icon(): Array<{ base64data: string; mediatype: string }> {
  const svg = readFileSync(new URL("./olm-bundle-icon.svg", import.meta.url));
  return [{ base64data: svg.toString("base64"), mediatype: "image/svg+xml" }];
}

const exampleMesh = (): Record<string, unknown> =>
  parse(readFileSync(new URL("../docs/examples/mesh.yaml", import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;

/** The mesh version the documented example (docs/examples/mesh.yaml) installs. */
export function exampleMeshVersion(): string {
  return (exampleMesh().spec as { version: string }).version;
}

/** alm-examples: a working Mesh (the documented example), a ServiceProfile and a Certificate. */
export function almExamples(): Array<Record<string, unknown>> {
  return [
    exampleMesh(),
    {
      apiVersion: "trellis.dev/v1alpha1",
      kind: "ServiceProfile",
      metadata: { name: "web.default.svc.cluster.local", namespace: "default" },
      spec: {
        routes: [
          {
            name: "list-items",
            condition: { method: "GET", pathRegex: "/items" },
            isRetryable: true,
            timeout: "2s",
          },
          { name: "create-item", condition: { method: "POST", pathRegex: "/items" }, timeout: "5s" },
        ],
        retryBudget: { retryRatio: 0.2, minRetriesPerSecond: 10, ttl: "10s" },
      },
    },
    {
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Certificate",
      metadata: { name: "example-ca", namespace: "default" },
      spec: { type: "TrustAnchor", secretName: "example-ca", commonName: "example CA", duration: "8760h" },
    },
  ];
}

interface Descriptor {
  path: string;
  displayName: string;
  description: string;
  "x-descriptors": string[];
}

const d = (path: string, displayName: string, description: string, ...xs: string[]): Descriptor => ({
  path,
  displayName,
  description,
  "x-descriptors": xs,
});
const TEXT = "urn:alm:descriptor:com.tectonic.ui:text";
const SWITCH = "urn:alm:descriptor:com.tectonic.ui:booleanSwitch";
const NUMBER = "urn:alm:descriptor:com.tectonic.ui:number";
const ADVANCED = "urn:alm:descriptor:com.tectonic.ui:advanced";
const CONDITIONS = "urn:alm:descriptor:io.kubernetes.conditions";
const select = (...values: string[]) => values.map((v) => `urn:alm:descriptor:com.tectonic.ui:select:${v}`);

/** How a console lists and renders each kind (spec.customresourcedefinitions.owned, minus names). */
export const OWNED_KINDS: Array<{
  kind: string;
  plural: string;
  displayName: string;
  description: string;
  resources: Array<{ kind: string; name: string; version: string }>;
  specDescriptors: Descriptor[];
  statusDescriptors: Descriptor[];
}> = [
  {
    kind: "Mesh",
    plural: "meshes",
    displayName: "Mesh",
    description:
      "The whole mesh: its version, control plane, proxy, injection, identity and upgrade policy. Create one, named default.",
    resources: [
      { kind: "Namespace", name: "", version: "v1" },
      { kind: "Deployment", name: "", version: "v1" },
      { kind: "Service", name: "", version: "v1" },
      { kind: "ConfigMap", name: "", version: "v1" },
      { kind: "MutatingWebhookConfiguration", name: "", version: "v1" },
      { kind: "Certificate", name: "", version: "v1alpha1" },
    ],
    specDescriptors: [
      d("version", "Version", "Mesh release (control plane and proxy), e.g. 1.0.0.", TEXT),
      d(
        "controlPlane.replicas",
        "Control-plane replicas",
        "Replicas of each component.",
        "urn:alm:descriptor:com.tectonic.ui:podCount",
      ),
      d(
        "controlPlane.highAvailability",
        "High availability",
        "Anti-affinity and PodDisruptionBudgets.",
        SWITCH,
      ),
      d(
        "controlPlane.imageRegistry",
        "Image registry",
        "Registry and path prefix of the mesh images.",
        TEXT,
        ADVANCED,
      ),
      d(
        "proxy.logLevel",
        "Proxy log level",
        "Log level of every injected proxy.",
        ...select("trace", "debug", "info", "warn", "error"),
      ),
      d(
        "proxy.unmeshedClients",
        "Clients outside the mesh",
        "Allow: plaintext clients (ingress, scrapers, probes) reach meshed pods; Deny: only meshed clients.",
        ...select("Allow", "Deny"),
      ),
      d(
        "identity.trustDomain",
        "Trust domain",
        "SPIFFE trust domain of workload identities.",
        TEXT,
        ADVANCED,
      ),
      d(
        "identity.rotation.automatic",
        "Rotate the trust anchor",
        "Rotate the trust anchor before it expires.",
        SWITCH,
      ),
      d(
        "upgrade.strategy",
        "Upgrade strategy",
        "Canary: waves with analysis. AllAtOnce: restart every workload.",
        ...select("Canary", "AllAtOnce"),
      ),
      d("upgrade.paused", "Pause upgrade", "Pause the proxy rollout in progress.", SWITCH),
    ],
    statusDescriptors: [
      d("conditions", "Conditions", "Ready, Progressing and Degraded.", CONDITIONS),
      d("phase", "Phase", "Installing, Ready, Upgrading, RollingOut, Degraded or Deleting.", TEXT),
      d("version", "Version", "Mesh version the control plane runs.", TEXT),
      d("targetVersion", "Target version", "Version being rolled out.", TEXT),
      d(
        "operatorVersion",
        "Operator version",
        "Version of the operator that last reconciled the mesh.",
        TEXT,
      ),
      d("proxies.summary", "Proxies", "Up-to-date proxies / all proxies.", TEXT),
    ],
  },
  {
    kind: "ServiceProfile",
    plural: "serviceprofiles",
    displayName: "Service Profile",
    description:
      "Routes of one service (method and path) with timeouts, retryable routes and a retry budget. Named <service>.<namespace>.svc.<cluster domain>.",
    resources: [],
    specDescriptors: [
      d("routes", "Routes", "Method and path regex, timeout and retryability of each route.", ADVANCED),
      d("retryBudget.retryRatio", "Retry ratio", "Retries allowed as a ratio of original requests.", NUMBER),
    ],
    statusDescriptors: [
      d("conditions", "Conditions", "Ready: the routes are valid and published.", CONDITIONS),
      d("routeCount", "Routes", "Routes the proxies apply.", NUMBER),
    ],
  },
  {
    kind: "Certificate",
    plural: "certificates",
    displayName: "Certificate",
    description:
      "A trust anchor, issuer or serving certificate that Trellis issues and renews into a kubernetes.io/tls Secret.",
    resources: [{ kind: "Secret", name: "", version: "v1" }],
    specDescriptors: [
      d("type", "Type", "TrustAnchor, Issuer or Serving.", ...select("TrustAnchor", "Issuer", "Serving")),
      d(
        "secretName",
        "Secret",
        "Secret the key and certificate are written to.",
        "urn:alm:descriptor:io.kubernetes:Secret",
      ),
      d("duration", "Duration", "Lifetime of each issued certificate.", TEXT),
      d("issuerRef.name", "Issuer", "A TrustAnchor or Issuer Certificate in this namespace.", TEXT),
    ],
    statusDescriptors: [
      d("conditions", "Conditions", "Ready: a valid certificate is in the Secret.", CONDITIONS),
      d("notAfter", "Expires", "End of the current certificate's validity.", TEXT),
      d("renewalTime", "Renewal", "When Trellis renews it.", TEXT),
      d("revision", "Revision", "Incremented at each issuance.", NUMBER),
    ],
  },
];
