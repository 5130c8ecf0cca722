-- Argo CD health of a trellis.dev ServiceProfile: Healthy when the operator accepted its routes for the current
-- generation, Degraded when it refused them (an unsafe or invalid path regex).
local hs = { status = "Progressing", message = "Waiting for the Trellis operator to check the routes" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if (obj.status.observedGeneration or 0) < generation then
  hs.message = "Waiting for the Trellis operator to observe generation " .. generation
  return hs
end
local failing = { InvalidSpec = true }
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
      hs.message = c.message
    elseif failing[c.reason] then
      hs.status = "Degraded"
      hs.message = c.reason .. ": " .. c.message
    else
      hs.message = c.message
    end
  end
end
return hs
