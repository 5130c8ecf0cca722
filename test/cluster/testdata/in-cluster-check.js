// Runs in a real-node pod (not meshed): resolves a Service name through the cluster DNS (its
// ClusterIP) and tries it, which the pod's own network namespace must refuse (no kube-proxy; only a
// meshed pod's proxy reaches a ClusterIP); resolves a headless Service (the pods' IPs) and calls
// the pod; then calls the API server through the in-cluster configuration (the `kubernetes`
// Service env, the ServiceAccount token and CA). Prints one line, RESULT <json>, then idles.
// Arguments: <service name> <headless service name> <port>.
const dns = require("node:dns/promises");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const sa = "/var/run/secrets/kubernetes.io/serviceaccount";

function call(method, path, body) {
  return new Promise((resolve) => {
    const req = https.request(
      {
        method,
        host: process.env.KUBERNETES_SERVICE_HOST,
        port: process.env.KUBERNETES_SERVICE_PORT,
        path,
        ca: fs.readFileSync(`${sa}/ca.crt`),
        headers: { authorization: `Bearer ${fs.readFileSync(`${sa}/token`, "utf8")}`, "content-type": "application/json" },
        timeout: 5000,
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
      },
    );
    req.on("error", (e) => resolve({ error: e.message }));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end(body);
  });
}

function get(host, port) {
  return new Promise((resolve) => {
    http
      .get({ host, port, timeout: 5000 }, (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve(text.trim()));
      })
      .on("error", (e) => resolve(`error: ${e.code ?? e.message}`))
      .on("timeout", function () {
        this.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" }));
      });
  });
}

async function lookup(name) {
  try {
    return (await dns.lookup(name, { all: true, family: 4 })).map((a) => a.address).sort();
  } catch (e) {
    return [`error: ${e.code}`];
  }
}

async function main() {
  const out = {};
  const port = Number(process.argv[4] ?? 8080);
  out.resolved = await lookup(process.argv[2]);
  out.clusterIpHttp = await get(out.resolved[0], port);
  out.resolvedHeadless = await lookup(process.argv[3]);
  out.http = await get(out.resolvedHeadless[0], port);
  try {
    await dns.lookup("no-such-service.default.svc.cluster.local", { family: 4 });
    out.missing = "resolved";
  } catch (e) {
    out.missing = e.code;
  }
  const version = await call("GET", "/version");
  out.version = version.body?.gitVersion ?? version;
  const review = await call(
    "POST",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
  );
  out.user = review.body?.status?.userInfo?.username ?? review;
  console.log(`RESULT ${JSON.stringify(out)}`);
}
main().finally(() => setInterval(() => {}, 1 << 30));
