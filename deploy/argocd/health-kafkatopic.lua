-- Argo CD health check for kafka.hdinsight.dev/KafkaTopic (kstatus conditions).
--   Stalled=True            -> Degraded    (a person must act; the message says what to do —
--                                           including TopicNotFound: policy Observe and
--                                           nobody has created the topic)
--   Paused=True             -> Suspended   (annotation kafka.hdinsight.dev/paused: "true")
--   Ready=True              -> Healthy
--   anything else           -> Progressing (creating, waiting for visibility, retrying, or the
--                                           operator has not seen this generation yet)
hs = {}
local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end
local function says(c)
  local text = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status and obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition("Stalled")
local paused = condition("Paused")
local ready = condition("Ready")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = says(stalled)
elseif paused ~= nil and paused.status == "True" then
  hs.status = "Suspended"
  hs.message = says(paused)
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = says(ready)
else
  hs.status = "Progressing"
  local reconciling = condition("Reconciling")
  if reconciling ~= nil and reconciling.status == "True" then
    hs.message = says(reconciling)
  elseif ready ~= nil then
    hs.message = says(ready)
  else
    hs.message = "Waiting for the operator to report status"
  end
end
return hs
