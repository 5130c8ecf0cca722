// Reads a proxy's Prometheus text (GET :4191/metrics on a pod's IP) for the end-to-end checks:
// the series of a family, with their labels, and sums over the series whose labels match.
import http from "node:http";

export interface Series {
  labels: Record<string, string>;
  value: number;
}

/** Every series of `family` in Prometheus text exposition format. */
export function seriesOf(text: string, family: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${family}{`) && !line.startsWith(`${family} `)) continue;
    const close = line.lastIndexOf("}");
    const labels: Record<string, string> = {};
    if (line.startsWith(`${family}{`)) {
      for (const m of line.slice(family.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
        labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, "$1");
    }
    out.push({
      labels,
      value: Number(
        line
          .slice(close + 1)
          .trim()
          .split(" ")[0],
      ),
    });
  }
  return out;
}

/** The series of `family` whose labels equal (or match) every one of `where`. */
export function seriesWhere(text: string, family: string, where: Record<string, string | RegExp>): Series[] {
  return seriesOf(text, family).filter((s) =>
    Object.entries(where).every(([k, v]) =>
      typeof v === "string" ? s.labels[k] === v : v.test(s.labels[k] ?? ""),
    ),
  );
}

/** The sum of `family` over the series whose labels equal (or match) every one of `where`. */
export function sumWhere(text: string, family: string, where: Record<string, string | RegExp>): number {
  return seriesWhere(text, family, where).reduce((sum, s) => sum + s.value, 0);
}

/** A pod proxy's metrics, from the host (pod IPs are on the harness's bridge). */
export function proxyMetrics(podIp: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: podIp, port: 4191, path: "/metrics", timeout: 5000, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve(body));
      })
      .on("error", reject)
      .on("timeout", function (this: http.ClientRequest) {
        this.destroy(new Error(`timeout reading ${podIp}:4191/metrics`));
      });
  });
}
