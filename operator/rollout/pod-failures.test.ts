// Which pod states are certain failures, and the grace before one counts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { podView } from "../resources.ts";
import { describeFailure, FAILURE_GRACE_MS, pastGrace, podFailure } from "./pod-failures.ts";

const START = "2026-11-25T12:00:00Z";

function pod(init: Record<string, unknown>[], containers: Record<string, unknown>[] = []) {
  return podView({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web-1", namespace: "shop" },
    status: {
      phase: "Pending",
      startTime: START,
      initContainerStatuses: init,
      containerStatuses: containers,
    },
  } as Parameters<typeof podView>[0]);
}

describe("certain failures", () => {
  it("reads the kubelet's waiting reasons, init containers first, with the message", () => {
    const f = podFailure(
      pod(
        [
          {
            name: "trellis-proxy",
            restartCount: 0,
            state: {
              waiting: {
                reason: "ImagePullBackOff",
                message: `Back-off pulling image "p:1"${"x".repeat(500)}`,
              },
            },
          },
        ],
        [{ name: "app", restartCount: 0, state: { waiting: { reason: "CreateContainerConfigError" } } }],
      ),
    );
    assert.equal(f?.container, "trellis-proxy");
    assert.equal(f?.reason, "ImagePullBackOff");
    assert.equal(f?.since, START);
    assert.ok((f?.message?.length ?? 0) <= 200, "the kubelet's message is cut short");
    assert.match(
      describeFailure(f as NonNullable<typeof f>),
      /^pod shop\/web-1: container trellis-proxy ImagePullBackOff \(Back-off/,
    );
    for (const reason of [
      "ErrImagePull",
      "ErrImageNeverPull",
      "InvalidImageName",
      "CrashLoopBackOff",
      "CreateContainerConfigError",
    ])
      assert.equal(
        podFailure(pod([], [{ name: "a", restartCount: 1, state: { waiting: { reason } } }]))?.reason,
        reason,
      );
  });

  it("a container restarted without ever passing its startup probe", () => {
    const f = podFailure(
      pod([{ name: "trellis-proxy", restartCount: 2, started: false, state: { running: {} } }]),
    );
    assert.deepEqual(
      [f?.reason, f?.message],
      ["StartupProbeFailing", "restarted 2 times without passing its startup probe"],
    );
  });

  it("is not a failure: waiting to start, running, a first start that has not passed its probe yet", () => {
    assert.equal(
      podFailure(
        pod([], [{ name: "a", restartCount: 0, state: { waiting: { reason: "ContainerCreating" } } }]),
      ),
      undefined,
    );
    assert.equal(
      podFailure(pod([], [{ name: "a", restartCount: 0, started: false, state: { running: {} } }])),
      undefined,
    );
    assert.equal(
      podFailure(pod([], [{ name: "a", restartCount: 3, started: true, state: { running: {} } }])),
      undefined,
    );
  });

  it("counts only after the grace", () => {
    const f = { pod: "shop/web-1", container: "a", reason: "ErrImagePull", since: START };
    assert.equal(pastGrace(f, new Date(Date.parse(START) + FAILURE_GRACE_MS - 1)), false);
    assert.equal(pastGrace(f, new Date(Date.parse(START) + FAILURE_GRACE_MS)), true);
  });
});
