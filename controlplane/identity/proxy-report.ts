// What a proxy reports about its trust, `POST /v1/report`: the fingerprints of the anchors in
// the trust bundle it has loaded and of the anchor its current leaf chains to. The operator's
// trust-anchor rotation waits on exactly these two facts, read from two pod annotations; this
// module checks a report and turns it into those annotations. The pod is the one the token is
// bound to (the API server says so in the TokenReview), never one named in the request.
// Pure. Owns the report's shape and checks; does not own authentication (token-review.ts) or
// the write to the pod (pod-annotator.ts).
import { ANNOTATIONS } from "../../api/index.ts";
import type { ServiceAccountRef } from "./certify.ts";
import { CertifyError } from "./certify-errors.ts";

export const REPORT_PATH = "/v1/report";

/** A trust bundle holds two anchors during a rotation; a few more leave room, not abuse. */
export const MAX_REPORTED_ANCHORS = 8;

export interface TrustReport {
  /** Hex SHA-256 of each anchor's DER, as pki.fingerprint computes it, in bundle order. */
  trustBundleFingerprints: string[];
  /** Hex SHA-256 of the anchor the proxy's current leaf chains to; absent before its first leaf. */
  leafAnchorFingerprint: string | undefined;
}

export interface ReportedPod {
  namespace: string;
  name: string;
  uid: string;
}

const FINGERPRINT = /^[0-9a-f]{64}$/;

function invalid(message: string): CertifyError {
  return new CertifyError("InvalidReport", message);
}

/** Parses and checks a report body (JSON); throws InvalidReport with what is wrong. */
export function parseReport(body: Buffer): TrustReport {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw invalid("the body is not JSON; send {trustBundleFingerprints, leafAnchorFingerprint}");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalid("the body is not a JSON object");
  const { trustBundleFingerprints: trusted, leafAnchorFingerprint: leaf } = value as Record<string, unknown>;
  if (!Array.isArray(trusted) || trusted.length === 0)
    throw invalid("trustBundleFingerprints must be a non-empty array of hex SHA-256 fingerprints");
  if (trusted.length > MAX_REPORTED_ANCHORS)
    throw invalid(`trustBundleFingerprints holds ${trusted.length} entries; at most ${MAX_REPORTED_ANCHORS}`);
  for (const fp of trusted) {
    if (typeof fp !== "string" || !FINGERPRINT.test(fp))
      throw invalid("each trust-bundle fingerprint must be 64 lowercase hex digits (SHA-256 of the DER)");
  }
  if (leaf !== undefined && leaf !== null) {
    if (typeof leaf !== "string" || !FINGERPRINT.test(leaf))
      throw invalid("leafAnchorFingerprint must be 64 lowercase hex digits (SHA-256 of the DER)");
    // A leaf verified by the proxy chains to an anchor of its bundle; anything else is not a
    // report of a real state.
    if (!trusted.includes(leaf))
      throw invalid("leafAnchorFingerprint names an anchor that is not in trustBundleFingerprints");
  }
  return {
    trustBundleFingerprints: [...new Set(trusted as string[])],
    leafAnchorFingerprint: typeof leaf === "string" ? leaf : undefined,
  };
}

/** The pod a report is written to: the one the token is bound to; tokens of no pod are refused. */
export function reportedPod(account: ServiceAccountRef): ReportedPod {
  if (!account.pod) {
    throw new CertifyError(
      "NotBoundToPod",
      `the token of ServiceAccount ${account.namespace}/${account.name} is not bound to a pod; report with the pod's projected token`,
    );
  }
  return { namespace: account.namespace, name: account.pod.name, uid: account.pod.uid };
}

/** The two annotations the operator reads; a proxy with no leaf yet clears the leaf one. */
export function reportAnnotations(report: TrustReport): Record<string, string | null> {
  return {
    [ANNOTATIONS.trustBundleFingerprints]: report.trustBundleFingerprints.join(","),
    [ANNOTATIONS.leafAnchorFingerprint]: report.leafAnchorFingerprint ?? null,
  };
}
