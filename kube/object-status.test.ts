// observedGeneration helpers, table-tested.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isStatusCurrent, withObservedGeneration } from "./object-status.ts";

describe("observedGeneration", () => {
  const cases = [
    { name: "no status yet", obj: { metadata: { generation: 1 } }, current: false },
    {
      name: "status for an older spec",
      obj: { metadata: { generation: 3 }, status: { observedGeneration: 2 } },
      current: false,
    },
    {
      name: "status for the current spec",
      obj: { metadata: { generation: 3 }, status: { observedGeneration: 3 } },
      current: true,
    },
    {
      name: "a kind without generation",
      obj: { metadata: {}, status: { observedGeneration: 1 } },
      current: false,
    },
  ];
  for (const c of cases) {
    it(`isStatusCurrent: ${c.name}`, () => assert.equal(isStatusCurrent(c.obj), c.current));
  }

  it("withObservedGeneration stamps the object's generation, and nothing without one", () => {
    assert.deepEqual(withObservedGeneration({ metadata: { generation: 7 } }, { phase: "Ready" }), {
      phase: "Ready",
      observedGeneration: 7,
    });
    assert.deepEqual(withObservedGeneration({ metadata: {} }, { phase: "Ready" }), { phase: "Ready" });
  });
});
