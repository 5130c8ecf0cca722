// The controller core's public API, the only module other folders import from kube/.
export {
  type Condition,
  type ConditionStatus,
  type ConditionUpdate,
  conditionsEqual,
  findCondition,
  isConditionTrue,
  isValidReason,
  removeCondition,
  setCondition,
} from "./conditions.ts";
export {
  Controller,
  type ControllerOptions,
  type Reconcile,
  type ReconcileRequest,
  type ReconcileResult,
  type WatchOptions,
} from "./controller.ts";
export { ControllerMetrics } from "./controller-metrics.ts";
export { errorMessage, isPermanentError, PermanentError } from "./errors.ts";
export { EventRecorder, type EventType, scrubMessage } from "./events.ts";
export { addFinalizer, hasFinalizer, isBeingDeleted, removeFinalizer } from "./finalizers.ts";
export {
  type EventHandler,
  Informer,
  type InformerOptions,
  type InformerSpec,
  type InformerStats,
} from "./informer.ts";
export {
  formatLabelSelector,
  type LabelSelector,
  type LabelSelectorRequirement,
  matchesLabelSelector,
} from "./label-selector.ts";
export { type LeaderElectionTimings, LeaderElector, type LeaderElectorOptions } from "./leader-election.ts";
export { Manager, type ManagerOptions, type ManagerPhase } from "./manager.ts";
export { Counter, Gauge, Histogram, type Labels, Registry } from "./metrics.ts";
export { keyOf, type ObjectName, objectKey, parseKey } from "./object-key.ts";
export { generationOf, isStatusCurrent, withObservedGeneration } from "./object-status.ts";
export { type JsonPatchOperation, type ObjectRef, ObjectWriter, refOf } from "./object-writer.ts";
export {
  ApiError,
  isConflict,
  isGone,
  isInvalid,
  isNotFound,
  KubeClient,
  type ObjectList,
  type PatchType,
  type ResourceType,
  resourcePath,
} from "./rest-client.ts";
export { type BackoffOptions, ExponentialBackoff, WorkQueue } from "./work-queue.ts";
