// A small Prometheus registry: counters, gauges (set, or computed at scrape time) and
// histograms with labels, rendered in the text exposition format (version 0.0.4). Owns the
// metric types and the rendering; does not own which metrics exist (controller-metrics.ts) or
// serving them over HTTP (operator-server.ts).

export type Labels = Record<string, string>;

interface Metric {
  readonly name: string;
  render(): string;
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  const escaped = pairs.map(
    ([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`,
  );
  return `{${escaped.join(",")}}`;
}

function seriesKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${name} ${type}\n`;
}

abstract class LabelledValues implements Metric {
  protected readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    protected readonly help: string,
    private readonly type: string,
  ) {}

  protected entry(labels: Labels): { labels: Labels; value: number } {
    const key = seriesKey(labels);
    let e = this.series.get(key);
    if (!e) {
      e = { labels: { ...labels }, value: 0 };
      this.series.set(key, e);
    }
    return e;
  }

  get(labels: Labels = {}): number {
    return this.series.get(seriesKey(labels))?.value ?? 0;
  }

  render(): string {
    let out = header(this.name, this.help, this.type);
    for (const { labels, value } of this.series.values()) {
      out += `${this.name}${labelText(labels)} ${formatValue(value)}\n`;
    }
    return out;
  }
}

export class Counter extends LabelledValues {
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }

  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease`);
    this.entry(labels).value += by;
  }
}

export class Gauge extends LabelledValues {
  private collector: (() => Array<{ labels: Labels; value: number }>) | undefined;

  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }

  set(labels: Labels, value: number): void {
    this.entry(labels).value = value;
  }

  /** Computes the series at scrape time instead (queue depth, RSS). */
  collect(fn: () => Array<{ labels: Labels; value: number }>): void {
    this.collector = fn;
  }

  override render(): string {
    if (this.collector) {
      this.series.clear();
      for (const { labels, value } of this.collector()) this.entry(labels).value = value;
    }
    return super.render();
  }
}

/** Prometheus' default buckets, in seconds. */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram implements Metric {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {}

  observe(labels: Labels, value: number): void {
    const key = seriesKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] ?? 0)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    }
    s.sum += value;
    s.count += 1;
  }

  count(labels: Labels = {}): number {
    return this.series.get(seriesKey(labels))?.count ?? 0;
  }

  render(): string {
    let out = header(this.name, this.help, "histogram");
    for (const { labels, counts, sum, count } of this.series.values()) {
      this.buckets.forEach((le, i) => {
        out += `${this.name}_bucket${labelText(labels, ["le", formatValue(le)])} ${counts[i]}\n`;
      });
      out += `${this.name}_bucket${labelText(labels, ["le", "+Inf"])} ${count}\n`;
      out += `${this.name}_sum${labelText(labels)} ${formatValue(sum)}\n`;
      out += `${this.name}_count${labelText(labels)} ${count}\n`;
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string): Counter {
    return this.register(name, () => new Counter(name, help), Counter);
  }

  gauge(name: string, help: string): Gauge {
    return this.register(name, () => new Gauge(name, help), Gauge);
  }

  histogram(name: string, help: string, buckets?: readonly number[]): Histogram {
    return this.register(name, () => new Histogram(name, help, buckets), Histogram);
  }

  /** The whole registry in the text exposition format. */
  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join("");
  }

  private register<M extends Metric>(
    name: string,
    make: () => M,
    type: abstract new (...args: never[]) => M,
  ): M {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name ${name}`);
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing instanceof type) return existing;
      throw new Error(`metric ${name} is already registered with another type`);
    }
    const metric = make();
    this.metrics.set(name, metric);
    return metric;
  }
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
