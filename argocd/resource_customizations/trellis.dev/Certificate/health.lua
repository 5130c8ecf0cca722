-- Argo CD health of a trellis.dev Certificate: Healthy when issued for the current generation,
-- Degraded when the operator reports a failure it cannot retry away (bad spec, missing issuer).
-- IssuerNotReady is Progressing: a leaf and its issuer are created together (one git commit), and
-- the leaf waits for a moment until the issuer is issued.
local hs = { status = "Progressing", message = "Waiting for the Trellis operator to issue the certificate" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if (obj.status.observedGeneration or 0) < generation then
  hs.message = "Waiting for the Trellis operator to observe generation " .. generation
  return hs
end
local failing = { InvalidSpec = true, IssuerNotFound = true, IssuerInvalid = true, IssueFailed = true }
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
