// Runs in a real-node pod: resolves a Service name through the cluster DNS and calls the pod it
// resolves to, then calls the API server through the in-cluster configuration (the `kubernetes`
// Service env, the ServiceAccount token and CA). Prints one line, RESULT <json>, then idles.
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

async function main() {
  const out = {};
  try {
    out.resolved = (await dns.lookup(process.argv[2], { all: true, family: 4 })).map((a) => a.address).sort();
  } catch (e) {
    out.resolveError = e.code;
  }
  if (out.resolved?.[0]) {
    out.http = await new Promise((resolve) => {
      http
        .get({ host: out.resolved[0], port: Number(process.argv[3] ?? 8080), timeout: 5000 }, (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve(text.trim()));
        })
        .on("error", (e) => resolve(`error: ${e.message}`));
    });
  }
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
