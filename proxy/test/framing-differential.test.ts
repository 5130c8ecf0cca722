/**
 * The differential framing test (issue 18): every case of the corpus (framing-corpus.ts) goes to
 * node:http (llhttp, the reference) and through real proxies — the plaintext inbound listener,
 * and the mTLS pair (outbound → mTLS → inbound) — to a node:http application; any input the
 * reference refuses that a proxy forwards, or that they split into different messages, fails
 * (framing-harness.ts). bench/framing-mutation.ts runs the same harness on seeded random
 * mutations of this corpus.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { caseBytes, framingCorpus } from "./framing-corpus.ts";
import { type FramingRig, startFramingRig } from "./framing-rig.ts";

describe("HTTP/1.1 framing against node:http (differential)", () => {
  let rig: FramingRig;

  before(async () => {
    rig = await startFramingRig();
  });

  after(async () => {
    await rig?.close();
  });

  it("reads every case of the corpus as node:http does, or refuses it", async (t) => {
    const corpus = framingCorpus();
    const tally = new Map<string, number>();
    const failures: string[] = [];
    const noted = new Set<string>();
    for (const c of corpus) {
      const input = caseBytes(c, rig.host);
      const { verdicts } = await rig.check(input);
      for (const [route, v] of verdicts) {
        tally.set(v.kind, (tally.get(v.kind) ?? 0) + 1);
        if (v.kind === "stricter" || v.kind === "extension-method")
          noted.add(`${v.kind} — ${c.name}: ${v.detail}`);
        if (v.kind === "fail") {
          failures.push(
            `${c.name} (${route}): ${v.detail}\n  input: ${JSON.stringify(input.toString("latin1"))}`,
          );
        }
      }
    }
    const counts = JSON.stringify(Object.fromEntries(tally));
    t.diagnostic(`${corpus.length} cases × ${rig.routes.length} routes: ${counts}`);
    for (const n of noted) t.diagnostic(n);
    assert.deepEqual(failures, [], failures.join("\n"));
    // The corpus holds valid requests: most cases must be read the same, not all refused.
    assert.ok((tally.get("same") ?? 0) > corpus.length / 2, counts);
  });
});
