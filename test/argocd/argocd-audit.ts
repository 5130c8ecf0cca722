// Who wrote what, from the API server's own audit log: the GitOps tests count the Trellis
// operator's writes per Argo CD sync (the operator has no metric for its writes, and the API
// server's count is the one that matters). Every write is logged at Metadata level; the
// operator is told apart from Argo CD (user agent argocd-…), kubectl and the cluster's own
// components by its user agent, since all of them may share the test's admin identity.
// Does not own: starting the API server (LocalCluster takes the flags from auditApiServerArgs).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface AuditEvent {
  verb: string;
  requestURI: string;
  userAgent?: string;
  user?: { username?: string };
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
  };
  responseStatus?: { code?: number };
  stageTimestamp?: string;
}

const policy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`;

/** kube-apiserver flags that log every write to `<dir>/audit.log`; returns them and the log path. */
export function auditApiServerArgs(dir: string): { args: string[]; logPath: string } {
  const policyPath = join(dir, "audit-policy.yaml");
  const logPath = join(dir, "audit.log");
  writeFileSync(policyPath, policy);
  return {
    args: [`--audit-policy-file=${policyPath}`, `--audit-log-path=${logPath}`, "--audit-log-format=json"],
    logPath,
  };
}

export function readAuditEvents(logPath: string): AuditEvent[] {
  if (!existsSync(logPath)) return [];
  return readFileSync(logPath, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as AuditEvent);
}

const otherWriters = [/^argocd-/, /^kubectl/, /^kube-/, /^kwok/, /^git/];

/** Writes made by the Trellis operator: not a system identity, nor another writer's user agent. */
export function isOperatorWrite(e: AuditEvent): boolean {
  if (!e.user?.username || e.user.username.startsWith("system:")) return false;
  const agent = e.userAgent ?? "";
  return !otherWriters.some((p) => p.test(agent));
}

/** A short "verb resource[/subresource] ns/name" line per write, for messages. */
export function describeWrite(e: AuditEvent): string {
  const o = e.objectRef ?? {};
  const resource = o.subresource ? `${o.resource}/${o.subresource}` : o.resource;
  return `${e.verb} ${resource} ${o.namespace ? `${o.namespace}/` : ""}${o.name ?? ""} → ${e.responseStatus?.code}`;
}

/** A cursor over the audit log: the operator's writes since the last mark. */
export class WriteCounter {
  private seen = 0;

  constructor(readonly logPath: string) {}

  /** Forgets what was written so far. */
  mark(): void {
    this.seen = readAuditEvents(this.logPath).length;
  }

  /** The operator's writes since the last mark. */
  operatorWritesSinceMark(): AuditEvent[] {
    return readAuditEvents(this.logPath).slice(this.seen).filter(isOperatorWrite);
  }

  /** All writes since the last mark (any writer). */
  writesSinceMark(): AuditEvent[] {
    return readAuditEvents(this.logPath).slice(this.seen);
  }
}
