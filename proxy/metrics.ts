/**
 * A small Prometheus registry: counters, gauges and histograms with fixed label names, a cap
 * on series per metric (extra label sets fold into one `overflow` series so hostile input
 * cannot grow memory), and text exposition.
 *
 * Owns: storage and rendering. Does not decide what is measured (proxy-metrics.ts).
 */

const maxSeriesDefault = 2000;
const overflowLabel = "overflow";

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

abstract class Metric<T> {
  protected readonly series = new Map<string, { values: string[]; data: T }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly maxSeries: number,
  ) {}

  protected abstract fresh(): T;

  /** Series for the label values, created on first use. Values are positional. */
  protected get(values: readonly string[]): T {
    let key = values.join("\u0000");
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= this.maxSeries) {
        values = values.map(() => overflowLabel);
        key = values.join("\u0000");
        s = this.series.get(key);
        if (s !== undefined) return s.data;
      }
      s = { values: [...values], data: this.fresh() };
      this.series.set(key, s);
    }
    return s.data;
  }

  abstract render(out: string[]): void;
}

export class Counter extends Metric<{ v: number }> {
  protected fresh() {
    return { v: 0 };
  }
  inc(values: readonly string[], by = 1): void {
    this.get(values).v += by;
  }
  /** The series itself, for hot paths that cache it: `handle(labels).v++`. */
  handle(values: readonly string[]): { v: number } {
    return this.get(values);
  }
  value(values: readonly string[]): number {
    return this.series.get(values.join("\u0000"))?.data.v ?? 0;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const s of this.series.values())
      out.push(`${this.name}${labelText(this.labelNames, s.values)} ${s.data.v}`);
  }
}

export class Gauge extends Metric<{ v: number }> {
  protected fresh() {
    return { v: 0 };
  }
  set(values: readonly string[], v: number): void {
    this.get(values).v = v;
  }
  add(values: readonly string[], by: number): void {
    this.get(values).v += by;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const s of this.series.values())
      out.push(`${this.name}${labelText(this.labelNames, s.values)} ${s.data.v}`);
  }
}

/** A gauge read when scraped (ages, time left); no series while `sample` returns undefined. */
export class SampledGauge extends Metric<null> {
  sample: () => number | undefined = () => undefined;
  protected fresh() {
    return null;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    const v = this.sample();
    if (v !== undefined) out.push(`${this.name} ${v}`);
  }
}

export interface HistogramData {
  counts: Float64Array;
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramData> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
    maxSeries: number,
  ) {
    super(name, help, labelNames, maxSeries);
  }
  protected fresh(): HistogramData {
    return { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
  }
  observe(values: readonly string[], v: number): void {
    this.record(this.get(values), v);
  }
  /** The series itself, for hot paths that cache it; record into it with `record`. */
  handle(values: readonly string[]): HistogramData {
    return this.get(values);
  }
  record(h: HistogramData, v: number): void {
    h.sum += v;
    h.count++;
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        h.counts[i]!++;
        return;
      }
    }
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.data.counts[i]!;
        const le = `le="${this.buckets[i]}"`;
        out.push(`${this.name}_bucket${labelText(this.labelNames, s.values, le)} ${cumulative}`);
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.values, 'le="+Inf"')} ${s.data.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.values)} ${s.data.sum}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.values)} ${s.data.count}`);
    }
  }
}

export class Registry {
  private readonly metrics: Metric<unknown>[] = [];

  constructor(private readonly maxSeries = maxSeriesDefault) {}

  counter(name: string, help: string, labels: readonly string[]): Counter {
    return this.add(new Counter(name, help, labels, this.maxSeries));
  }
  gauge(name: string, help: string, labels: readonly string[]): Gauge {
    return this.add(new Gauge(name, help, labels, this.maxSeries));
  }
  /** A label-less gauge whose value is read from its `sample` function at each scrape. */
  sampledGauge(name: string, help: string): SampledGauge {
    return this.add(new SampledGauge(name, help, [], 1));
  }
  histogram(name: string, help: string, labels: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labels, buckets, this.maxSeries));
  }

  render(): string {
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return `${out.join("\n")}\n`;
  }

  private add<M extends Metric<unknown>>(m: M): M {
    this.metrics.push(m);
    return m;
  }
}
