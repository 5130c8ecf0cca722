/**
 * Seeded random-mutation run of the differential framing harness (issue 18): cases of the
 * corpus (proxy/test/framing-corpus.ts) are mutated — bytes replaced, inserted, deleted, lines
 * duplicated, numbers and case changed, cases spliced — and each mutant goes to node:http
 * (llhttp) and through the plaintext inbound listener and the mTLS pair of real proxies
 * (proxy/test/framing-rig.ts). A mutant the reference refuses that a proxy forwards, or that
 * they split differently, is a finding: it is shrunk to a smaller input that still fails and
 * printed with the seed and iteration that reproduce it. Bounded by a count and a time budget.
 *
 * Run: node --import tsx bench/framing-mutation.ts
 * Env: FRAMING_SEED (default 1), FRAMING_CASES (mutants, default 20000), FRAMING_SECONDS (stop
 *      after this long, default 300), FRAMING_ONLY (one iteration, to reproduce a finding).
 * Exit: 0 when nothing was found, 1 otherwise.
 */
import { caseBytes, framingCorpus } from "../proxy/test/framing-corpus.ts";
import type { Verdict } from "../proxy/test/framing-harness.ts";
import { type FramingRig, startFramingRig } from "../proxy/test/framing-rig.ts";

const seed = Number(process.env.FRAMING_SEED ?? 1);
const maxCases = Number(process.env.FRAMING_CASES ?? 20_000);
const seconds = Number(process.env.FRAMING_SECONDS ?? 300);
const only = process.env.FRAMING_ONLY === undefined ? undefined : Number(process.env.FRAMING_ONLY);

/** mulberry32: a small, fast, seedable PRNG; one stream per iteration, so any one reproduces alone. */
function prng(a: number): () => number {
  let s = a >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const interesting = [
  "\r",
  "\n",
  "\r\n",
  "\r\n\r\n",
  " ",
  "\t",
  ":",
  ";",
  ",",
  "=",
  '"',
  "0",
  "1",
  "a",
  "-",
  "+",
  "_",
  "\x00",
  "\x0b",
  "\x0c",
  "\x7f",
  "\x80",
  "\x85",
  "\xa0",
  "\xff",
  "chunked",
  "Transfer-Encoding: chunked\r\n",
  "Content-Length: 0\r\n",
  "Content-Length: 5\r\n",
  "Host: x\r\n",
  "GET / HTTP/1.1\r\n",
  "0\r\n\r\n",
];

type Mutation = (s: string, r: () => number, corpus: string[]) => string;

const pick = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)]!;
const at = (s: string, r: () => number) => Math.floor(r() * (s.length + 1));

const mutations: Mutation[] = [
  // Replace a byte.
  (s, r) => {
    const i = at(s, r);
    return s.slice(0, i) + pick(interesting, r)[0] + s.slice(i + 1);
  },
  // Insert something.
  (s, r) => {
    const i = at(s, r);
    return s.slice(0, i) + pick(interesting, r) + s.slice(i);
  },
  // Delete a span.
  (s, r) => {
    const i = at(s, r);
    return s.slice(0, i) + s.slice(i + 1 + Math.floor(r() * 4));
  },
  // Duplicate a line.
  (s, r) => {
    const lines = s.split("\r\n");
    const i = Math.floor(r() * lines.length);
    lines.splice(i, 0, lines[i]!);
    return lines.join("\r\n");
  },
  // Change a number.
  (s, r) => {
    const spans = [...s.matchAll(/[0-9a-fA-F]+/g)];
    if (spans.length === 0) return s;
    const m = pick(spans, r);
    const n = pick(["0", "1", "2", "3", "5", "6", "a", "00", "ff", "10", "-1", "9999999"], r);
    return s.slice(0, m.index) + n + s.slice(m.index + m[0].length);
  },
  // Flip the case of a letter.
  (s, r) => {
    const i = at(s, r);
    const c = s[i] ?? "";
    const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
    return s.slice(0, i) + flipped + s.slice(i + 1);
  },
  // Splice with another case.
  (s, r, corpus) => {
    const other = pick(corpus, r);
    return s.slice(0, at(s, r)) + other.slice(Math.floor(r() * other.length));
  },
];

function mutant(base: string[], iteration: number): string {
  const r = prng(seed * 1_000_003 + iteration);
  let s = pick(base, r);
  for (let n = 1 + Math.floor(r() * 4); n > 0; n--) s = pick(mutations, r)(s, r, base);
  return s;
}

/** An input as JSON, its middle elided past 400 characters. */
function clip(s: string): string {
  const j = JSON.stringify(s);
  return j.length <= 400 ? j : `${j.slice(0, 200)} …(${s.length} bytes)… ${j.slice(-200)}`;
}

function failed(verdicts: [string, Verdict][]): [string, Verdict] | undefined {
  return verdicts.find(([, v]) => v.kind === "fail");
}

/** Greedy shrink: drop spans while the input still fails on some route. */
async function shrink(rig: FramingRig, input: string): Promise<string> {
  let best = input;
  let budget = 150;
  for (
    let size = Math.max(1, Math.floor(best.length / 2));
    size >= 1 && budget > 0;
    size = Math.floor(size / 2)
  ) {
    for (let i = 0; i + size <= best.length && budget > 0; ) {
      const candidate = best.slice(0, i) + best.slice(i + size);
      budget--;
      const { verdicts } = await rig.check(Buffer.from(candidate, "latin1"));
      if (failed(verdicts)) best = candidate;
      else i += size;
    }
  }
  return best;
}

async function main(): Promise<void> {
  const rig = await startFramingRig();
  const base = framingCorpus().map((c) => caseBytes(c, rig.host).toString("latin1"));
  const tally = new Map<string, number>();
  const findings: string[] = [];
  const started = Date.now();
  let ran = 0;
  /** Inputs that failed once and were run again once everything was quiet. */
  let retries = 0;
  try {
    const first = only ?? 0;
    const last = only ?? maxCases - 1;
    for (let i = first; i <= last && (Date.now() - started) / 1000 < seconds; i++) {
      const input = mutant(base, i);
      const { verdicts, retried } = await rig.check(Buffer.from(input, "latin1"));
      ran++;
      if (retried) retries++;
      for (const [, v] of verdicts) tally.set(v.kind, (tally.get(v.kind) ?? 0) + 1);
      const f = failed(verdicts);
      if (!f) continue;
      const small = await shrink(rig, input);
      findings.push(
        `iteration ${i} (${f[0]}): ${f[1].kind === "fail" ? f[1].detail : ""}\n` +
          `  input:  ${clip(input)}\n  shrunk: ${clip(small)}`,
      );
      process.stdout.write(`finding at iteration ${i}\n`);
    }
  } finally {
    await rig.close();
  }
  const elapsed = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`\nseed ${seed}: ${ran} mutants × ${rig.routes.length} routes in ${elapsed} s`);
  console.log(`verdicts: ${JSON.stringify(Object.fromEntries(tally))}`);
  console.log(`re-run after a late event from an earlier input: ${retries}`);
  console.log(`findings: ${findings.length}`);
  for (const f of findings) console.log(f);
  if (findings.length > 0) {
    console.log(
      `reproduce one: FRAMING_SEED=${seed} FRAMING_ONLY=<iteration> node --import tsx bench/framing-mutation.ts`,
    );
    process.exitCode = 1;
  }
}

await main();
