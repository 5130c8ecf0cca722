/**
 * Test fixture, child-process side: one control-plane fake (destination or identity, from
 * control-plane-fakes.ts) as its own process, so a test can SIGKILL it, freeze it with SIGSTOP
 * or restart it on the same port. Configured by FAKE_CONTROL_PLANE (JSON); reports its port
 * and takes commands over the IPC channel (control-plane-process.ts is the other end).
 */
import type { DiscoveryUpdate } from "../discovery-protocol.ts";
import { FakeDestination, FakeIdentity, type IdentityMode } from "./control-plane-fakes.ts";
import { importMeshCa } from "./mesh-pki.ts";

export interface ChildConfig {
  kind: "destination" | "identity";
  port: number;
  ca: string;
  /** Identity: token → SPIFFE ID. */
  tokens?: Array<[string, string]>;
  lifetimeMs?: number;
}

export type ChildCommand =
  | { op: "set"; authority: string; update: Partial<DiscoveryUpdate> }
  | { op: "hold" | "release"; authority: string }
  | { op: "mode"; mode: IdentityMode; spiffeId?: string }
  | { op: "lifetime"; spiffeId: string; lifetimeMs: number }
  | { op: "requests" };

const config = JSON.parse(process.env.FAKE_CONTROL_PLANE ?? "{}") as ChildConfig;
const ca = importMeshCa(config.ca);
const send = (m: object) => process.send?.(m);

if (config.kind === "destination") {
  const destination = await new FakeDestination({ ca }).start(config.port);
  process.on("message", (m: ChildCommand) => {
    if (m.op === "set") destination.set(m.authority, m.update);
    else if (m.op === "hold") destination.hold(m.authority);
    else if (m.op === "release") destination.release(m.authority);
    send({ ack: true });
  });
  send({ port: destination.port });
} else {
  const identity = await new FakeIdentity(
    ca,
    new Map(config.tokens ?? []),
    config.lifetimeMs ?? 3_600_000,
  ).start(config.port);
  process.on("message", (m: ChildCommand) => {
    if (m.op === "mode" && m.spiffeId) identity.modes.set(m.spiffeId, m.mode);
    else if (m.op === "mode") identity.mode = m.mode;
    else if (m.op === "lifetime") identity.lifetimes.set(m.spiffeId, m.lifetimeMs);
    send({ ack: true, requests: Object.fromEntries(identity.requests) });
  });
  send({ port: identity.port });
}
// Ends with the test that started it, whatever happens to the IPC channel.
process.on("disconnect", () => process.exit(0));
