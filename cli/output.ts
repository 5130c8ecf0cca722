// How the command line prints: aligned tables, JSON and YAML for machines, and colour only on
// a terminal (never with --no-color or NO_COLOR). Pure string functions; the commands decide
// what goes into them.
import { stringify } from "yaml";
import type { Flags, Io } from "./command-line.ts";

export type Format = "table" | "json" | "yaml";

export function formatOf(flags: Flags): Format {
  const f = flags.output;
  return f === "json" || f === "yaml" ? f : "table";
}

export interface Style {
  ok(s: string): string;
  warn(s: string): string;
  bad(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const sgr = (code: string) => (s: string) => `\u001b[${code}m${s}\u001b[0m`;
const plain = (s: string) => s;

export const PLAIN: Style = { ok: plain, warn: plain, bad: plain, dim: plain, bold: plain };
export const COLOUR: Style = {
  ok: sgr("32"),
  warn: sgr("33"),
  bad: sgr("31"),
  dim: sgr("2"),
  bold: sgr("1"),
};

export function styleFor(io: Io, flags: Flags): Style {
  const off = flags["no-color"] === true || (io.env.NO_COLOR ?? "") !== "" || io.env.TERM === "dumb";
  return io.isTTY && !off ? COLOUR : PLAIN;
}

/** Machine output: JSON (2-space, trailing newline) or YAML of the same value. */
export function renderData(value: unknown, format: "json" | "yaml"): string {
  return format === "json" ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { lineWidth: 0 });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what is measured here
const ANSI = /\u001b\[[0-9;]*m/g;
export const visibleLength = (s: string) => s.replace(ANSI, "").length;

/** Columns separated by three spaces, as kubectl prints them; the last column is not padded. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - visibleLength(c))))
      .join("   ")
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

/** A duration a person reads at a glance: 45s, 12m, 3h, 2d, 400d. */
export function humanDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.round(h / 24)}d`;
}

export function percent(part: number, whole: number, digits = 0): string {
  return whole === 0 ? "-" : `${((100 * part) / whole).toFixed(digits)}%`;
}
