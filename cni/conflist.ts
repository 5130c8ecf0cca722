// Chaining trellis-cni into the node's CNI configuration and taking it out again, as pure
// functions over the file's text. The entry is spliced into the `plugins` list as text (after
// the last plugin, with the separator the file already uses), never by re-serialising the file,
// so that unchaining gives back the original bytes exactly; an entry someone else reformatted
// is still found (by its `type`) and taken out.
//
// Which file: the one the runtime reads — libcni (containerd, CRI-O) sorts the *.conf,
// *.conflist and *.json files of the configuration directory by name and uses the first that
// parses. A single-plugin `.conf` (no `plugins` list) cannot be chained and is reported.
// Owns: the file choice and the text edits. Reading, writing and watching are installer.ts's.

import { POD_ANNOTATIONS_CAPABILITY } from "./capture-annotation.ts";
import { type JsonSpan, jsonSpans } from "./json-spans.ts";
import { PLUGIN_NAME } from "./plugin-tree.ts";

/** The entry trellis-cni adds: its type, and the capability that makes the runtime pass pod annotations. */
export function pluginEntry(): Record<string, unknown> {
  return { type: PLUGIN_NAME, capabilities: { [POD_ANNOTATIONS_CAPABILITY]: true } };
}

export const CONF_EXTENSIONS = [".conf", ".conflist", ".json"] as const;

/** Configuration files in the order libcni reads them (byte order of the names). */
export function configurationFiles(names: string[]): string[] {
  return names
    .filter((n) => !n.startsWith(".") && CONF_EXTENSIONS.some((e) => n.endsWith(e)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export type ConflistShape =
  | { ok: true; plugins: JsonSpan & { kind: "array" }; parsed: { plugins: unknown[] } }
  | { ok: false; reason: string };

/** The file's `plugins` list, or why the runtime could not use it as a chain. */
export function conflistShape(text: string): ConflistShape {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON (${(err as Error).message})` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    return { ok: false, reason: "not a JSON object" };
  const plugins = (parsed as { plugins?: unknown }).plugins;
  if (plugins === undefined) {
    return {
      ok: false,
      reason:
        "a single-plugin configuration (no plugins list): trellis-cni chains only into a .conflist; ask the network plugin for one",
    };
  }
  if (!Array.isArray(plugins)) return { ok: false, reason: "its plugins field is not a list" };
  if (plugins.length === 0) return { ok: false, reason: "its plugins list is empty" };
  const root = jsonSpans(text);
  const member = root.kind === "object" ? root.members.filter((m) => m.key === "plugins").at(-1) : undefined;
  if (member?.value.kind !== "array") return { ok: false, reason: "its plugins field is not a list" };
  return { ok: true, plugins: member.value, parsed: parsed as { plugins: unknown[] } };
}

/** Whether the runtime could read this text as a configuration at all (a conflist or a .conf). */
export function isUsableConfiguration(text: string): boolean {
  try {
    const parsed = JSON.parse(text) as { plugins?: unknown[]; type?: unknown };
    return Array.isArray(parsed.plugins) ? parsed.plugins.length > 0 : typeof parsed.type === "string";
  } catch {
    return false;
  }
}

const isOurs = (plugin: unknown) =>
  typeof plugin === "object" && plugin !== null && (plugin as { type?: unknown }).type === PLUGIN_NAME;

export type Edit = { ok: true; text: string; changed: boolean } | { ok: false; reason: string };

/**
 * The text with every trellis-cni entry taken out: each with the separator before it (or, when
 * it is first, the one after it), which is exactly what chainPlugin put in.
 */
export function unchainPlugin(text: string): Edit {
  const shape = conflistShape(text);
  if (!shape.ok) return shape;
  const items = shape.plugins.items;
  let out = text;
  for (let k = items.length - 1; k >= 0; k--) {
    if (!isOurs(shape.parsed.plugins[k])) continue;
    const item = items[k] as JsonSpan;
    const prev = items[k - 1];
    const next = items[k + 1];
    const [from, to] = prev ? [prev.end, item.end] : next ? [item.start, next.start] : [item.start, item.end];
    out = out.slice(0, from) + out.slice(to);
  }
  return { ok: true, text: out, changed: out !== text };
}

/** The separator between two items of the list, as the file writes it (", " or ",\n    "). */
function separator(text: string, items: JsonSpan[]): string {
  const [a, b] = [items.at(-2), items.at(-1)];
  if (a && b) return text.slice(a.end, b.start);
  const last = b as JsonSpan;
  const lineStart = text.lastIndexOf("\n", last.start) + 1;
  const indent = text.slice(lineStart, last.start);
  return /^[ \t]*$/.test(indent) && lineStart > 0 ? `,\n${indent}` : ", ";
}

/**
 * The text with trellis-cni as the last plugin of the chain. Unchanged when it is already there,
 * last and as `entry`; an older or misplaced entry is taken out first.
 */
export function chainPlugin(text: string, entry: Record<string, unknown> = pluginEntry()): Edit {
  const shape = conflistShape(text);
  if (!shape.ok) return shape;
  const plugins = shape.parsed.plugins;
  const ours = plugins.filter(isOurs);
  if (ours.length === 1 && isOurs(plugins.at(-1)) && JSON.stringify(plugins.at(-1)) === JSON.stringify(entry))
    return { ok: true, text, changed: false };
  const base = ours.length > 0 ? unchainPlugin(text) : { ok: true as const, text, changed: false };
  if (!base.ok) return base;
  const shaped = conflistShape(base.text);
  if (!shaped.ok) return shaped;
  const items = shaped.plugins.items;
  const last = items.at(-1) as JsonSpan;
  const insert = `${separator(base.text, items)}${JSON.stringify(entry)}`;
  return { ok: true, text: base.text.slice(0, last.end) + insert + base.text.slice(last.end), changed: true };
}
