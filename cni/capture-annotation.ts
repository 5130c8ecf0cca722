// The one pod annotation through which the injector tells the node's trellis-cni plugin that a
// pod carries the Trellis proxy and which capture it needs. Its value is trellis-init's own flags
// (capture/init.ts), so the injector renders them once and the plugin parses them with the same
// parser: one definition of the settings, whichever component installs the rules.
//
// The container runtime passes the pod's annotations to the plugin (runtimeConfig
// `io.kubernetes.cri.pod-annotations`), so the plugin needs no credentials to read the pod.
// Trust: the annotation is as trusted as the pod spec that carries it; the worst a forged one
// does is redirect that same pod's own traffic, with settings the parser has checked.
import type { CaptureSettings } from "../capture/capture-settings.ts";
import { InitError, type InitOptions, initFlags, parseInitFlags } from "../capture/init.ts";

export const CAPTURE_ANNOTATION = "trellis.dev/capture";

/** The runtimeConfig key under which containerd and CRI-O pass a pod's annotations. */
export const POD_ANNOTATIONS_CAPABILITY = "io.kubernetes.cri.pod-annotations";

/** The annotation's value for a pod whose capture settings are these. */
export function captureAnnotationValue(settings: CaptureSettings): string {
  return initFlags(settings).join(" ");
}

/** The settings (and iptables backend) an annotation asks for, or why it cannot be used. */
export function parseCaptureAnnotation(
  text: string,
): { ok: true; settings: CaptureSettings; mode: InitOptions["mode"] } | { ok: false; error: string } {
  const flags = text.split(/\s+/).filter((f) => f !== "");
  try {
    const options = parseInitFlags(flags);
    return { ok: true, settings: options.settings, mode: options.mode };
  } catch (err) {
    const message = err instanceof InitError ? err.message : (err as Error).message;
    return { ok: false, error: `${CAPTURE_ANNOTATION} "${text}": ${message}` };
  }
}
