/**
 * A small Prometheus registry: counters and histograms that code pushes to, gauges read from their owners when
 * scraped, rendered in the text exposition format (version 0.0.4). No dependencies, so every layer may push.
 *
 * Label sets are bounded: past {@link MAX_SERIES_PER_METRIC} distinct sets a metric folds new ones into one series
 * whose label values are all `_other`, so a client choosing paths or function names cannot grow memory without end.
 *
 * Private to `src/metrics`: other folders use its `mod.ts`.
 */

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

/** Distinct label sets kept per metric before new ones fold into `_other`. */
export const MAX_SERIES_PER_METRIC = 512;
/** Longest label value kept (longer ones are cut): function names and paths come from users. */
const MAX_LABEL_VALUE_CHARS = 128;
const OTHER = "_other";

/**
 * A series key: the label values in label-name order, NUL-separated. A plain loop: it runs for every request and
 * function call (issue 14).
 */
function seriesKey(labelNames: readonly string[], labels: Labels): string {
  let key = "";
  for (let i = 0; i < labelNames.length; i++) {
    const value = labels[labelNames[i]] ?? "";
    if (i > 0) key += "\0";
    key += value.length > MAX_LABEL_VALUE_CHARS ? value.slice(0, MAX_LABEL_VALUE_CHARS) : value;
  }
  return key;
}

abstract class Metric<S> {
  readonly #series = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The series for `labels`, created on first use (or the `_other` series once the metric is full). */
  protected series(labels: Labels): S {
    let key = seriesKey(this.labelNames, labels);
    let series = this.#series.get(key);
    if (series !== undefined) return series;
    if (this.#series.size >= MAX_SERIES_PER_METRIC) {
      key = this.labelNames.map(() => OTHER).join("\0");
      series = this.#series.get(key);
      if (series !== undefined) return series;
    }
    series = this.newSeries();
    this.#series.set(key, series);
    return series;
  }

  protected abstract newSeries(): S;

  /** Each series with its labels. */
  protected *entries(): Iterable<[Labels, S]> {
    for (const [key, series] of this.#series) {
      const values = key.split("\0");
      yield [Object.fromEntries(this.labelNames.map((name, i) => [name, values[i]])), series];
    }
  }

  abstract render(): string[];
}

/** A value that only goes up (requests, errors, conflicts). */
export class Counter extends Metric<{ value: number }> {
  inc(labels: Labels = {}, by = 1): void {
    this.series(labels).value += by;
  }

  /** The current value for `labels` (tests). */
  get(labels: Labels = {}): number {
    return this.series(labels).value;
  }

  protected newSeries(): { value: number } {
    return { value: 0 };
  }

  render(): string[] {
    const lines = header(this, "counter");
    for (const [labels, { value }] of this.entries()) lines.push(`${this.name}${formatLabels(labels)} ${value}`);
    return lines;
  }
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations sorted into cumulative buckets (latencies, batch sizes). */
export class Histogram extends Metric<HistogramSeries> {
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
  }

  observe(value: number, labels: Labels = {}): void {
    const series = this.series(labels);
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        series.counts[i]++;
        break;
      }
    }
    series.sum += value;
    series.count++;
  }

  protected newSeries(): HistogramSeries {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  render(): string[] {
    const lines = header(this, "histogram");
    for (const [labels, series] of this.entries()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += series.counts[i];
        lines.push(`${this.name}_bucket${formatLabels({ ...labels, le: String(bound) })} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket${formatLabels({ ...labels, le: "+Inf" })} ${series.count}`);
      lines.push(`${this.name}_sum${formatLabels(labels)} ${series.sum}`);
      lines.push(`${this.name}_count${formatLabels(labels)} ${series.count}`);
    }
    return lines;
  }
}

/** One sample of a gauge: its labels and value. */
export type GaugeSample = readonly [Labels, number];

/** A value read when scraped, from the object that owns it (pool sizes, live sockets, memory). */
export class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly collect: () => number | readonly GaugeSample[],
  ) {}

  render(): string[] {
    const lines = header(this, "gauge");
    let samples: number | readonly GaugeSample[];
    try {
      samples = this.collect();
    } catch {
      return []; // its owner is closing or gone: leave the gauge out of this scrape
    }
    if (typeof samples === "number") return [...lines, `${this.name} ${samples}`];
    for (const [labels, value] of samples) lines.push(`${this.name}${formatLabels(labels)} ${value}`);
    return lines;
  }
}

function header(metric: { name: string; help: string }, type: string): string[] {
  return [
    `# HELP ${metric.name} ${metric.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`,
    `# TYPE ${metric.name} ${type}`,
  ];
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  const escaped = entries.map(([name, value]) =>
    `${name}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return `{${escaped.join(",")}}`;
}

/** A set of metrics rendered together. */
export class MetricsRegistry {
  readonly #metrics = new Map<string, { render(): string[] }>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  /** Registers (or replaces: a restarted server in one process re-registers its gauges) a gauge. */
  gauge(name: string, help: string, collect: () => number | readonly GaugeSample[]): Gauge {
    const gauge = new Gauge(name, help, collect);
    this.#metrics.set(name, gauge);
    return gauge;
  }

  /** Removes a gauge (its owner is closing). */
  remove(name: string): void {
    this.#metrics.delete(name);
  }

  /** The exposition text of every metric. */
  render(): string {
    return [...this.#metrics.values()].flatMap((metric) => metric.render()).join("\n") + "\n";
  }

  #add<M extends { name: string; render(): string[] }>(metric: M): M {
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}
