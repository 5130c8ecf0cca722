// The registry renders the text exposition format that Prometheus parses.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "./metrics.ts";

describe("metrics registry", () => {
  it("renders counters, gauges and histograms with labels", () => {
    const r = new Registry();
    const c = r.counter("demo_total", "Demo counter.");
    c.inc({ controller: "a", result: "success" });
    c.inc({ result: "success", controller: "a" }, 2);
    c.inc({ controller: "b", result: 'we"ird\n' });
    r.gauge("demo_depth", "Depth.").collect(() => [{ labels: { name: "q" }, value: 7 }]);
    const h = r.histogram("demo_seconds", "Duration.", [0.1, 1]);
    h.observe({ controller: "a" }, 0.05);
    h.observe({ controller: "a" }, 0.5);
    h.observe({ controller: "a" }, 5);
    assert.equal(
      r.render(),
      [
        "# HELP demo_total Demo counter.",
        "# TYPE demo_total counter",
        'demo_total{controller="a",result="success"} 3',
        'demo_total{controller="b",result="we\\"ird\\n"} 1',
        "# HELP demo_depth Depth.",
        "# TYPE demo_depth gauge",
        'demo_depth{name="q"} 7',
        "# HELP demo_seconds Duration.",
        "# TYPE demo_seconds histogram",
        'demo_seconds_bucket{controller="a",le="0.1"} 1',
        'demo_seconds_bucket{controller="a",le="1"} 2',
        'demo_seconds_bucket{controller="a",le="+Inf"} 3',
        'demo_seconds_sum{controller="a"} 5.55',
        'demo_seconds_count{controller="a"} 3',
        "",
      ].join("\n"),
    );
  });

  it("returns the same metric for the same name and refuses another type", () => {
    const r = new Registry();
    assert.equal(r.counter("x_total", "x"), r.counter("x_total", "x"));
    assert.throws(() => r.gauge("x_total", "x"), /another type/);
    assert.throws(() => r.counter("bad-name", "x"), /invalid metric name/);
  });

  it("refuses to decrease a counter", () => {
    assert.throws(() => new Registry().counter("c_total", "c").inc({}, -1), /cannot decrease/);
  });
});
