-- Feeds sample objects through the Argo CD health checks and compares the verdicts.
-- Run from this directory: lua5.4 test-health.lua (exit status 1 on any mismatch).
local failures = 0

local function run(script, object)
  local env = setmetatable({ obj = object }, { __index = _G })
  local chunk = assert(loadfile(script, "t", env))
  return chunk()
end

local function cond(t, status, reason, message)
  return { type = t, status = status, reason = reason, message = message or "" }
end

local function object(generation, observed, conditions)
  local o = { metadata = { name = "sample", namespace = "kafka", generation = generation } }
  if observed ~= nil or conditions ~= nil then
    o.status = { observedGeneration = observed, conditions = conditions }
  end
  return o
end

local function expect(script, name, o, status, message_part)
  local hs = run(script, o)
  local ok = hs.status == status
  if ok and message_part ~= nil then
    ok = hs.message ~= nil and string.find(hs.message, message_part, 1, true) ~= nil
  end
  if ok then
    print("ok   " .. script .. ": " .. name .. " -> " .. hs.status)
  else
    failures = failures + 1
    print("FAIL " .. script .. ": " .. name .. ": got " .. tostring(hs.status) .. " (" ..
      tostring(hs.message) .. "), expected " .. status ..
      (message_part and (" mentioning " .. message_part) or ""))
  end
end

local topic = "health-kafkatopic.lua"
expect(topic, "no status yet", object(1, nil, nil), "Progressing", "generation 1")
expect(topic, "status of an older generation", object(3, 2, {
  cond("Ready", "True", "Created"), cond("Reconciling", "False", "Reconciled"),
  cond("Stalled", "False", "Reconciled"),
}), "Progressing", "generation 3")
expect(topic, "ready, created", object(1, 1, {
  cond("Ready", "True", "Created", "12 partitions"), cond("Reconciling", "False", "Reconciled"),
  cond("Stalled", "False", "Reconciled"), cond("Drifted", "False", "InSync"),
}), "Healthy", "Created")
expect(topic, "ready but drifted", object(1, 1, {
  cond("Ready", "True", "Adopted"), cond("Reconciling", "False", "Reconciled"),
  cond("Stalled", "False", "Reconciled"), cond("Drifted", "True", "Drifted", "partitions: spec 12, cluster 24"),
}), "Healthy", "Adopted")
expect(topic, "creating", object(1, 1, {
  cond("Ready", "False", "Creating"), cond("Reconciling", "True", "Creating", "create requested"),
  cond("Stalled", "False", "Reconciled"),
}), "Progressing", "Creating")
expect(topic, "waiting for visibility", object(2, 2, {
  cond("Ready", "False", "WaitingForVisibility"), cond("Reconciling", "True", "WaitingForVisibility"),
  cond("Stalled", "False", "Reconciled"),
}), "Progressing", "WaitingForVisibility")
expect(topic, "ready and retrying a transient failure", object(1, 1, {
  cond("Ready", "True", "Created"), cond("Reconciling", "True", "Retrying", "HTTP 503"),
  cond("Stalled", "False", "Reconciled"),
}), "Healthy")
expect(topic, "forbidden", object(1, 1, {
  cond("Ready", "False", "Forbidden", "the app is not a member of the cluster's security group"),
  cond("Reconciling", "False", "Forbidden"), cond("Stalled", "True", "Forbidden", "the app is not a member of the cluster's security group"),
}), "Degraded", "security group")
expect(topic, "conflict", object(1, 1, {
  cond("Ready", "False", "ResourceConflict"), cond("Reconciling", "False", "ResourceConflict"),
  cond("Stalled", "True", "ResourceConflict", "KafkaTopic kafka/orders already manages this topic"),
}), "Degraded", "ResourceConflict")
expect(topic, "paused while ready", object(1, 1, {
  cond("Ready", "True", "Created"), cond("Reconciling", "False", "Paused"),
  cond("Stalled", "False", "Paused"), cond("Paused", "True", "Paused", "annotation set"),
}), "Suspended", "Paused")
expect(topic, "observe policy, topic absent: someone must create it", object(1, 1, {
  cond("Ready", "False", "TopicNotFound", "topic orders does not exist and managementPolicy is Observe"),
  cond("Reconciling", "False", "TopicNotFound"),
  cond("Stalled", "True", "TopicNotFound", "topic orders does not exist and managementPolicy is Observe"),
}), "Degraded", "TopicNotFound")
expect(topic, "its proxy's Secret does not exist", object(1, 1, {
  cond("Ready", "False", "SecretNotFound"), cond("Reconciling", "False", "SecretNotFound"),
  cond("Stalled", "True", "SecretNotFound", "Secret kafka/hdi-sp does not exist"),
}), "Degraded", "hdi-sp")
expect(topic, "its proxy is unreachable, not yet ready", object(1, 1, {
  cond("Ready", "False", "Retrying", "connection refused"),
  cond("Reconciling", "True", "Retrying", "connection refused; retrying with backoff"),
  cond("Stalled", "False", "Reconciled"),
}), "Progressing", "Retrying")
expect(topic, "conditions without observedGeneration on an object without generation", {
  metadata = { name = "x" }, status = { conditions = { cond("Ready", "True", "Created") } },
}, "Healthy")

local proxy = "health-kafkarestproxy.lua"
expect(proxy, "connected", object(1, 1, {
  cond("Ready", "True", "Connected", "3 brokers"), cond("Reconciling", "False", "Reconciled"),
  cond("Stalled", "False", "Reconciled"),
}), "Healthy", "Connected")
expect(proxy, "authentication failed", object(1, 1, {
  cond("Ready", "False", "AuthenticationFailed"), cond("Reconciling", "False", "AuthenticationFailed"),
  cond("Stalled", "True", "AuthenticationFailed", "AADSTS7000215: Invalid client secret provided"),
}), "Degraded", "AADSTS7000215")
expect(proxy, "unreachable", object(1, 1, {
  cond("Ready", "False", "Unreachable"), cond("Reconciling", "True", "Unreachable", "connection refused"),
  cond("Stalled", "False", "Reconciled"),
}), "Progressing", "Unreachable")
-- Every Stalled reason of a KafkaRestProxy is Degraded, with the reason in the message.
for _, reason in ipairs({ "SecretNotFound", "CredentialsInvalid", "AuthenticationFailed",
  "Forbidden", "InvalidSpec", "EndpointNotAllowed", "ScopeNotAllowed" }) do
  expect(proxy, "stalled: " .. reason, object(1, 1, {
    cond("Ready", "False", reason, "what to fix"), cond("Reconciling", "False", reason),
    cond("Stalled", "True", reason, "what to fix"),
  }), "Degraded", reason)
end
expect(proxy, "unreachable as the operator writes it (Stalled=False carries the reason too)", object(1, 1, {
  cond("Ready", "False", "Unreachable", "HTTP 503"), cond("Reconciling", "True", "Unreachable", "HTTP 503"),
  cond("Stalled", "False", "Unreachable"),
}), "Progressing", "HTTP 503")
expect(proxy, "endpoint off the operator's allowlist", object(1, 1, {
  cond("Ready", "False", "EndpointNotAllowed"), cond("Reconciling", "False", "EndpointNotAllowed"),
  cond("Stalled", "True", "EndpointNotAllowed", "spec.endpoint host 127.0.0.1 is not in the operator's --allowed-endpoint-hosts"),
}), "Degraded", "allowed-endpoint-hosts")
expect(proxy, "scope off the operator's allowlist", object(1, 1, {
  cond("Ready", "False", "ScopeNotAllowed"), cond("Reconciling", "False", "ScopeNotAllowed"),
  cond("Stalled", "True", "ScopeNotAllowed", "spec.scope is not in the operator's --allowed-scopes"),
}), "Degraded", "allowed-scopes")
expect(topic, "its proxy is off the operator's allowlist", object(1, 1, {
  cond("Ready", "False", "EndpointNotAllowed"), cond("Reconciling", "False", "EndpointNotAllowed"),
  cond("Stalled", "True", "EndpointNotAllowed", "spec.authority host evil.example is not in the operator's --allowed-authority-hosts"),
}), "Degraded", "allowed-authority-hosts")
expect(proxy, "spec changed, not yet observed", object(2, 1, {
  cond("Ready", "True", "Connected"),
}), "Progressing")

if failures > 0 then
  print(failures .. " health check case(s) failed")
  os.exit(1)
end
print("all health check cases passed")
