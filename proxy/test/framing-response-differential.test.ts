/**
 * The response side of the differential framing test (issue 18): every case of the response
 * corpus (framing-responses.ts) is read by node:http's client (llhttp, the reference) straight from
 * the upstream, and through the outbound listener to an unmeshed upstream and through the mTLS
 * pair (framing-response-rig.ts). A forwarded response the reference refuses, a different reading,
 * a hang where the reference answers, or a second request answered by anything but its own
 * response fails.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ResponseRig, startResponseRig } from "./framing-response-rig.ts";
import { responseCorpus } from "./framing-responses.ts";

describe("HTTP/1.1 response framing against node:http (differential)", () => {
  let rig: ResponseRig;

  before(async () => {
    rig = await startResponseRig();
  });

  after(async () => {
    await rig?.close();
  });

  it("reads every response of the corpus as node:http does, or answers 502", async (t) => {
    const corpus = responseCorpus();
    const tally = new Map<string, number>();
    const failures: string[] = [];
    for (const c of corpus) {
      const { verdicts } = await rig.check(Buffer.from(c.text, "latin1"));
      for (const [route, v] of verdicts) {
        tally.set(v.kind, (tally.get(v.kind) ?? 0) + 1);
        if (v.kind === "stricter") t.diagnostic(`stricter — ${c.name} (${route}): ${v.detail}`);
        if (v.kind === "fail")
          failures.push(`${c.name} (${route}): ${v.detail}\n  response: ${JSON.stringify(c.text)}`);
      }
    }
    const counts = JSON.stringify(Object.fromEntries(tally));
    t.diagnostic(`${corpus.length} responses × ${rig.routes.length} routes: ${counts}`);
    assert.deepEqual(failures, [], failures.join("\n"));
    assert.ok((tally.get("same") ?? 0) > corpus.length / 2, counts);
  });
});
