import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "../metrics.ts";

describe("metrics registry", () => {
  it("renders counters and cumulative histograms in Prometheus text format", () => {
    const r = new Registry();
    const c = r.counter("request_total", "Requests.", ["authority"]);
    const h = r.histogram("latency_ms", "Latency.", ["authority"], [1, 10]);
    c.inc(['a"b']);
    h.observe(["a"], 0.5);
    h.observe(["a"], 5);
    h.observe(["a"], 50);
    const text = r.render();
    assert.match(text, /request_total\{authority="a\\"b"\} 1/);
    assert.match(text, /latency_ms_bucket\{authority="a",le="1"\} 1/);
    assert.match(text, /latency_ms_bucket\{authority="a",le="10"\} 2/);
    assert.match(text, /latency_ms_bucket\{authority="a",le="\+Inf"\} 3/);
    assert.match(text, /latency_ms_count\{authority="a"\} 3/);
  });

  it("folds label sets past the series cap into one overflow series", () => {
    const r = new Registry(10);
    const c = r.counter("x_total", "X.", ["authority"]);
    for (let i = 0; i < 1000; i++) c.inc([`host-${i}`]);
    const lines = r
      .render()
      .split("\n")
      .filter((l) => l.startsWith("x_total{"));
    assert.equal(lines.length, 11);
    assert.equal(c.value(["overflow"]), 990);
  });
});
