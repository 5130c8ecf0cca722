// Chaining into node configurations of several shapes (golden files: <case>.conflist →
// <case>.chained.conflist; regenerate with UPDATE_GOLDEN=1), taking the entry out again byte
// for byte, and the files the runtime would read.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { assertGolden } from "../test/golden.ts";
import {
  chainPlugin,
  configurationFiles,
  isUsableConfiguration,
  pluginEntry,
  unchainPlugin,
} from "./conflist.ts";
import { jsonSpans } from "./json-spans.ts";

const testdata = fileURLToPath(new URL("./testdata", import.meta.url));
const inputs = readdirSync(testdata).filter((f) => f.endsWith(".conflist") && !f.includes(".chained."));

const edited = (r: ReturnType<typeof chainPlugin>) => {
  assert.ok(r.ok, r.ok ? "" : r.reason);
  return r;
};

describe("chaining trellis-cni into a conflist", () => {
  for (const file of inputs) {
    const original = readFileSync(join(testdata, file), "utf8");
    it(`${file}: chained as the last plugin, once, and unchained byte for byte`, () => {
      const chained = edited(chainPlugin(original));
      assert.equal(chained.changed, true);
      assertGolden(join(testdata, file.replace(".conflist", ".chained.conflist")), chained.text);
      const plugins = (JSON.parse(chained.text) as { plugins: unknown[] }).plugins;
      assert.deepEqual(plugins.at(-1), pluginEntry());
      assert.equal(plugins.filter((p) => (p as { type: string }).type === "trellis-cni").length, 1);
      const again = edited(chainPlugin(chained.text));
      assert.equal(again.changed, false, "chaining twice changes nothing");
      assert.equal(again.text, chained.text);
      const restored = edited(unchainPlugin(chained.text));
      const withoutOld = file.startsWith("old-entry") ? edited(unchainPlugin(original)).text : original;
      assert.equal(restored.text, withoutOld, "unchaining gives back the bytes before chaining");
    });
  }

  it("keeps every other plugin, in order, with its own bytes", () => {
    const original = readFileSync(join(testdata, "harness.conflist"), "utf8");
    const chained = edited(chainPlugin(original)).text;
    const before = (JSON.parse(original) as { plugins: unknown[] }).plugins;
    const after = (JSON.parse(chained) as { plugins: unknown[] }).plugins;
    assert.deepEqual(after.slice(0, -1), before);
    const cut = original.lastIndexOf("}\n  ]") + 1;
    assert.ok(chained.startsWith(original.slice(0, cut)), "the text before the insertion is untouched");
    assert.ok(chained.endsWith(original.slice(cut)), "the text after the insertion is untouched");
  });

  it("takes out an entry someone reformatted, and an entry in the middle", () => {
    const text =
      '{"name":"n","plugins":[{"type":"bridge"},\n {\n  "type": "trellis-cni"\n },{"type":"portmap"}]}';
    const out = edited(unchainPlugin(text));
    assert.deepEqual(JSON.parse(out.text).plugins, [{ type: "bridge" }, { type: "portmap" }]);
    assert.equal(edited(unchainPlugin(out.text)).changed, false);
  });

  it("refuses what the runtime could not chain, and says why", () => {
    const single = readFileSync(join(testdata, "single-plugin.conf"), "utf8");
    const r = chainPlugin(single);
    assert.ok(!r.ok);
    assert.match(r.reason, /single-plugin configuration/);
    for (const [text, why] of [
      ["{", /not JSON/],
      ["[]", /not a JSON object/],
      ['{"plugins": []}', /empty/],
      ['{"plugins": {}}', /not a list/],
    ] as const) {
      const bad = chainPlugin(text);
      assert.ok(!bad.ok && why.test(bad.reason), text);
    }
  });

  it("reads files in the runtime's order, skipping other extensions and hidden files", () => {
    assert.deepEqual(
      configurationFiles([
        "99-late.conf",
        "10-calico.conflist",
        "05-cilium.json",
        ".10-x.conflist.tmp",
        "README",
        "10-calico.conflist.bak",
      ]),
      ["05-cilium.json", "10-calico.conflist", "99-late.conf"],
    );
    assert.equal(isUsableConfiguration('{"type":"bridge"}'), true);
    assert.equal(isUsableConfiguration('{"plugins":[]}'), false);
    assert.equal(isUsableConfiguration("nope"), false);
  });

  it("finds the spans of nested values and strings with escapes", () => {
    const text = ' {"a": [1, "x\\"]y", {"b": null}], "c": true} ';
    const root = jsonSpans(text);
    assert.equal(root.kind, "object");
    assert.ok(root.kind === "object");
    const a = root.members[0]?.value;
    assert.ok(a?.kind === "array");
    assert.deepEqual(
      a.items.map((s) => text.slice(s.start, s.end)),
      ["1", '"x\\"]y"', '{"b": null}'],
    );
  });
});
