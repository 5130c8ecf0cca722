// trellis-cni, the plugin the container runtime calls: a chained plugin (after the node's own
// network plugins) that installs a meshed pod's capture rules in its network namespace when the
// runtime sets the namespace up, so that no container of the pod needs a network capability.
//
//   ADD      a pod carrying the proxy (the injector's `trellis.dev/capture` annotation, passed
//            by the runtime): the rules of capture/ruleset.ts, installed and read back by the
//            same code as trellis-init (capture/init.ts) through nsenter; then the previous
//            plugin's result, unchanged. Any other pod: the result, unchanged, nothing touched.
//   CHECK    a meshed pod: its rules are in place, or an error.
//   DEL, GC, STATUS   nothing (the rules go with the namespace); success.
//   VERSION  the versions whose results it can pass on.
//
// Never acts on the node's own network namespace (hostNetwork pods never reach a CNI plugin;
// a namespace path that is the node's is refused all the same) or without a namespace.
// Owns the decision and its outcome. The rules are capture/'s; the wire format cni-protocol.ts's.
import type { CaptureSettings, IpFamily } from "../capture/capture-settings.ts";
import { type CommandRunner, InitError, type InitOptions, runInit } from "../capture/init.ts";
import { CAPTURE_CHAINS, capturePresence, captureRules } from "../capture/ruleset.ts";
import {
  CAPTURE_ANNOTATION,
  POD_ANNOTATIONS_CAPABILITY,
  parseCaptureAnnotation,
} from "./capture-annotation.ts";
import {
  addressFamilies,
  CNI_ERRORS,
  type CniError,
  type CniRequest,
  errorAnswer,
  passedResult,
  versionAnswer,
} from "./cni-protocol.ts";

export type PluginPlan =
  | { kind: "version" }
  /** Pass the previous result on (ADD) or succeed silently; `why` goes to the log. */
  | { kind: "pass"; why: string }
  | ({ kind: "install" } & CaptureWork)
  | ({ kind: "verify" } & CaptureWork)
  | { kind: "fail"; error: CniError };

/** The capture a meshed pod gets: its settings, the iptables backend, its address families. */
export interface CaptureWork {
  settings: CaptureSettings;
  mode: InitOptions["mode"];
  families: IpFamily[];
}

/** What the plugin knows about the namespace it was given, found by the caller (I/O). */
export interface NamespaceFacts {
  /** The namespace is the node's own (the runtime's) network namespace. */
  isNodeNamespace: boolean;
}

export function podName(request: CniRequest): string {
  const ns = request.args.K8S_POD_NAMESPACE;
  const name = request.args.K8S_POD_NAME;
  return ns && name ? `${ns}/${name}` : `container ${request.containerId.slice(0, 12) || "?"}`;
}

/** The pod's annotations as the runtime passed them, or undefined when it passed none. */
function podAnnotations(request: CniRequest): Record<string, unknown> | undefined {
  const value = request.config.runtimeConfig?.[POD_ANNOTATIONS_CAPABILITY];
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The plan for one call. Pure. */
export function planPlugin(request: CniRequest, facts: NamespaceFacts): PluginPlan {
  const { command } = request;
  if (command === "VERSION") return { kind: "version" };
  if (command === "DEL" || command === "GC" || command === "STATUS")
    return {
      kind: "pass",
      why: `${command}: nothing to undo (the rules live and die with the pod's namespace)`,
    };
  if (command !== "ADD" && command !== "CHECK") {
    return {
      kind: "fail",
      error: { code: CNI_ERRORS.invalidEnvironment, msg: `CNI_COMMAND ${command} is not a CNI command` },
    };
  }
  if (command === "ADD" && request.config.prevResult === undefined) {
    return {
      kind: "fail",
      error: {
        code: CNI_ERRORS.invalidConfig,
        msg: "trellis-cni is a chained plugin: list it after the plugin that sets up the pod's interface",
      },
    };
  }
  const annotations = podAnnotations(request);
  if (annotations === undefined) {
    return {
      kind: "pass",
      why: `the runtime passed no pod annotations (capability ${POD_ANNOTATIONS_CAPABILITY}); meshed pods on this node are refused by their validator`,
    };
  }
  const value = annotations[CAPTURE_ANNOTATION];
  if (typeof value !== "string") return { kind: "pass", why: "the pod carries no Trellis proxy" };
  if (request.netns === "") return { kind: "pass", why: "the runtime gave no network namespace" };
  if (facts.isNodeNamespace) {
    return { kind: "pass", why: `${request.netns} is the node's own network namespace: never touched` };
  }
  const parsed = parseCaptureAnnotation(value);
  if (!parsed.ok) {
    return { kind: "fail", error: { code: CNI_ERRORS.invalidConfig, msg: parsed.error } };
  }
  const families = addressFamilies(request.config.prevResult);
  return {
    kind: command === "ADD" ? "install" : "verify",
    settings: parsed.settings,
    mode: parsed.mode,
    families: families.length > 0 ? families : [4],
  };
}

export interface PluginOutcome {
  stdout: string;
  exitCode: number;
  /** One line for the node's log: what was decided and done. */
  log: string;
}

/** Does what the plan says with `runner` (tools inside the pod's namespace); returns the answer. */
export function executePlugin(
  request: CniRequest,
  plan: PluginPlan,
  runner: CommandRunner,
  procStatus: string,
): PluginOutcome {
  const version = request.config.cniVersion;
  const who = podName(request);
  const fail = (error: CniError): PluginOutcome => ({
    stdout: errorAnswer(version, error),
    exitCode: 1,
    log: `${request.command} ${who}: ${error.msg}${error.details ? `: ${error.details}` : ""}`,
  });
  switch (plan.kind) {
    case "version":
      return { stdout: versionAnswer(), exitCode: 0, log: "VERSION" };
    case "fail":
      return fail(plan.error);
    case "pass":
      return {
        stdout: request.command === "ADD" ? passedResult(request.config) : "",
        exitCode: 0,
        log: `${request.command} ${who}: passed on (${plan.why})`,
      };
    case "install": {
      const options: InitOptions = {
        settings: plan.settings,
        mode: plan.mode,
        ipv6: plan.families.includes(6) ? "on" : "off",
        dryRun: false,
      };
      try {
        const lines = runInit(options, procStatus, runner);
        return {
          stdout: passedResult(request.config),
          exitCode: 0,
          log: `ADD ${who}: capture installed in ${request.netns}: ${lines.join("; ")}`,
        };
      } catch (err) {
        return fail({
          code: CNI_ERRORS.captureFailed,
          msg: `trellis-cni could not install the capture rules of ${who}`,
          details: err instanceof InitError ? err.message : String(err),
        });
      }
    }
    case "verify": {
      const missing = verifyCapture(plan, runner);
      if (missing) return fail({ code: CNI_ERRORS.captureMissing, msg: `${who}: ${missing}` });
      return { stdout: "", exitCode: 0, log: `CHECK ${who}: capture in place` };
    }
  }
}

/** Why the namespace's rules differ from what the settings give, or undefined when they match. */
function verifyCapture(plan: CaptureWork, runner: CommandRunner): string | undefined {
  for (const family of plan.families) {
    const backends = plan.mode === "auto" ? ["nft", "legacy"] : [plan.mode];
    const saved = backends.map((b) =>
      runner(`${family === 6 ? "ip6tables" : "iptables"}-${b}-save`, ["-t", "nat"]),
    );
    const expected = captureRules(plan.settings, family);
    const matches = saved.some((r) => {
      if (r.status !== 0) return false;
      const presence = capturePresence(r.stdout);
      return Object.values(CAPTURE_CHAINS).every((chain) => {
        const want = expected.filter((rule) => rule.startsWith(`-A ${chain} `)).length;
        return presence.rules[chain] === want && presence.jumps[chain] === 1;
      });
    });
    if (!matches) return `the IPv${family} capture rules are not in place`;
  }
  return undefined;
}
