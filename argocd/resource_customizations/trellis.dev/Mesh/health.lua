-- Argo CD health of a trellis.dev Mesh, from the conditions the Trellis operator writes.
-- Healthy only when Ready is True for the current generation; Suspended while an upgrade is
-- paused or waits for approval (with the plan's summary); Degraded with the operator's reason;
-- Progressing otherwise (with the phase).
local hs = { status = "Progressing", message = "Waiting for the Trellis operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if (obj.status.observedGeneration or 0) < generation then
  hs.message = "Waiting for the Trellis operator to observe generation " .. generation
  return hs
end
local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  conditions[c.type] = c
end
local phase = obj.status.phase or "Unknown"
local rollout = obj.status.rollout
-- A paused proxy rollout says why in status.rollout; a paused control-plane upgrade says it in
-- Ready (status.rollout then still holds the last, finished rollout: not the reason).
if rollout ~= nil and rollout.state == "Paused" then
  hs.status = "Suspended"
  hs.message = "Upgrade paused: " .. (rollout.message or "spec.upgrade.paused is true")
  return hs
end
if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "Upgrade paused: " .. ((conditions.Ready and conditions.Ready.message) or "spec.upgrade.paused is true")
  return hs
end
local degraded = conditions.Degraded
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = degraded.reason .. ": " .. degraded.message
  return hs
end
-- spec.upgrade.approval Manual: the plan waits for a person (the running version keeps serving).
local plan = obj.status.upgradePlan
if plan ~= nil and plan.state == "AwaitingApproval" then
  hs.status = "Suspended"
  hs.message = "Awaiting approval of upgrade plan " .. (plan.id or "?") .. ": " .. (plan.summary or "") ..
    " (kubectl trellis upgrade approve)"
  return hs
end
local progressing = conditions.Progressing
if progressing ~= nil and progressing.status == "True" then
  hs.message = phase .. ": " .. progressing.message
  return hs
end
local ready = conditions.Ready
if ready ~= nil and ready.status == "True" and (ready.observedGeneration or generation) == generation then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if ready ~= nil then
  hs.message = phase .. ": " .. ready.message
end
return hs
