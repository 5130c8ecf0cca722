import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatLabelSelector, type LabelSelector, matchesLabelSelector } from "./label-selector.ts";

const db = { app: "db", tier: "data" };
const api = { app: "api" };

describe("label selectors", () => {
  it("matchLabels and matchExpressions must all hold", () => {
    const s: LabelSelector = {
      matchLabels: { app: "db" },
      matchExpressions: [{ key: "tier", operator: "In", values: ["data", "cache"] }],
    };
    assert.equal(matchesLabelSelector(s, db), true);
    assert.equal(matchesLabelSelector(s, { ...db, tier: "web" }), false);
    assert.equal(matchesLabelSelector(s, api), false);
  });

  it("a selector of only matchExpressions is not an empty selector", () => {
    const s: LabelSelector = { matchExpressions: [{ key: "app", operator: "In", values: ["db"] }] };
    assert.equal(matchesLabelSelector(s, db), true);
    assert.equal(matchesLabelSelector(s, api), false);
  });

  it("In, NotIn, Exists, DoesNotExist, with a missing key", () => {
    const one = (operator: string, values?: string[]) => ({
      matchExpressions: [{ key: "tier", operator, ...(values ? { values } : {}) }],
    });
    const table: Array<[LabelSelector, Record<string, string>, boolean]> = [
      [one("In", ["data"]), db, true],
      [one("In", ["data"]), api, false],
      [one("NotIn", ["data"]), db, false],
      [one("NotIn", ["data"]), api, true],
      [one("Exists"), db, true],
      [one("Exists"), api, false],
      [one("DoesNotExist"), db, false],
      [one("DoesNotExist"), api, true],
      [one("Gt", ["1"]), db, false],
    ];
    for (const [selector, labels, want] of table)
      assert.equal(
        matchesLabelSelector(selector, labels),
        want,
        `${formatLabelSelector(selector)} on ${JSON.stringify(labels)}`,
      );
  });

  it("an empty selector matches everything, an absent one nothing unless told otherwise", () => {
    assert.equal(matchesLabelSelector({}, db), true);
    assert.equal(matchesLabelSelector({ matchLabels: {}, matchExpressions: [] }, undefined), true);
    assert.equal(matchesLabelSelector(undefined, db), false);
    assert.equal(matchesLabelSelector(null, db), false);
    assert.equal(matchesLabelSelector(undefined, db, { absent: "all" }), true);
  });

  it("prints like kubectl", () => {
    assert.equal(
      formatLabelSelector({
        matchLabels: { app: "db" },
        matchExpressions: [
          { key: "tier", operator: "NotIn", values: ["a", "b"] },
          { key: "legacy", operator: "DoesNotExist" },
        ],
      }),
      "app=db,tier notin (a,b),!legacy",
    );
    assert.equal(formatLabelSelector({}), "<all>");
  });
});
