-- Argo CD health of a trellis.dev Certificate: Healthy when issued for the current generation,
-- Degraded when the operator reports a failure that needs a change to this Certificate (bad spec,
-- an issuer that cannot sign, a failed issuance). A missing or not yet issued issuer is Progressing:
-- a leaf and its issuer are usually created in the same sync, and the operator may see the leaf
-- first. Argo CD fails a multi-wave sync as soon as a resource of the running wave is Degraded, so
-- that moment must not be Degraded.
local hs = { status = "Progressing", message = "Waiting for the Trellis operator to issue the certificate" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if (obj.status.observedGeneration or 0) < generation then
  hs.message = "Waiting for the Trellis operator to observe generation " .. generation
  return hs
end
local failing = { InvalidSpec = true, IssuerInvalid = true, IssueFailed = true }
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
