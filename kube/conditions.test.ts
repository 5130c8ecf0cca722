// Table tests of the pure conditions helper: lastTransitionTime moves only when status flips.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Condition,
  type ConditionUpdate,
  conditionsEqual,
  findCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
} from "./conditions.ts";

const T0 = "2026-01-01T00:00:00Z";
const now = new Date("2026-01-02T03:04:05.678Z");
const T1 = "2026-01-02T03:04:05Z";

const ready = (status: Condition["status"], reason = "Ready", generation?: number): Condition => ({
  type: "Ready",
  status,
  reason,
  message: `status ${status}`,
  ...(generation === undefined ? {} : { observedGeneration: generation }),
  lastTransitionTime: T0,
});

describe("setCondition", () => {
  const cases: Array<{
    name: string;
    before: Condition[] | undefined;
    update: ConditionUpdate;
    want: Condition[];
  }> = [
    {
      name: "adds a new condition with the current time",
      before: undefined,
      update: { type: "Ready", status: "True", reason: "Ready", message: "all good", observedGeneration: 1 },
      want: [
        {
          type: "Ready",
          status: "True",
          reason: "Ready",
          message: "all good",
          observedGeneration: 1,
          lastTransitionTime: T1,
        },
      ],
    },
    {
      name: "keeps lastTransitionTime when status is unchanged, updating reason, message and generation",
      before: [ready("False", "Pending", 1)],
      update: {
        type: "Ready",
        status: "False",
        reason: "Waiting",
        message: "still waiting",
        observedGeneration: 2,
      },
      want: [
        {
          type: "Ready",
          status: "False",
          reason: "Waiting",
          message: "still waiting",
          observedGeneration: 2,
          lastTransitionTime: T0,
        },
      ],
    },
    {
      name: "moves lastTransitionTime when status flips",
      before: [ready("False", "Pending", 1)],
      update: { type: "Ready", status: "True", reason: "Ready", message: "done", observedGeneration: 1 },
      want: [
        {
          type: "Ready",
          status: "True",
          reason: "Ready",
          message: "done",
          observedGeneration: 1,
          lastTransitionTime: T1,
        },
      ],
    },
    {
      name: "Unknown to False is a flip",
      before: [ready("Unknown")],
      update: { type: "Ready", status: "False", reason: "Failed", message: "x" },
      want: [{ type: "Ready", status: "False", reason: "Failed", message: "x", lastTransitionTime: T1 }],
    },
    {
      name: "leaves other conditions alone and appends new types",
      before: [ready("True")],
      update: { type: "Degraded", status: "False", reason: "AsExpected", message: "fine" },
      want: [
        ready("True"),
        { type: "Degraded", status: "False", reason: "AsExpected", message: "fine", lastTransitionTime: T1 },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const frozen = c.before ? structuredClone(c.before) : undefined;
      assert.deepEqual(setCondition(c.before, c.update, now), c.want);
      assert.deepEqual(c.before, frozen, "the input is not modified");
    });
  }

  for (const reason of ["", "notCamel", "Has Space", "With-Dash"]) {
    it(`rejects the reason ${JSON.stringify(reason)}`, () => {
      assert.throws(
        () => setCondition([], { type: "Ready", status: "True", reason, message: "" }),
        /CamelCase/,
      );
    });
  }
});

describe("condition queries", () => {
  const list = [ready("True"), { ...ready("False"), type: "Degraded" }];
  it("finds, tests and removes", () => {
    assert.equal(findCondition(list, "Degraded")?.status, "False");
    assert.equal(isConditionTrue(list, "Ready"), true);
    assert.equal(isConditionTrue(list, "Degraded"), false);
    assert.equal(isConditionTrue(list, "Missing"), false);
    assert.deepEqual(removeCondition(list, "Ready"), [list[1]]);
  });
  it("compares lists regardless of order", () => {
    assert.equal(conditionsEqual(list, [...list].reverse()), true);
    assert.equal(conditionsEqual(list, [list[0]!]), false);
    assert.equal(
      conditionsEqual(list, setCondition(list, { type: "Ready", status: "False", reason: "X", message: "" })),
      false,
    );
  });
});
