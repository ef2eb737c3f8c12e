-- Argo CD health check for taskrun.dev/TaskRun (docs/gitops.md).
-- Pending, Running and "not reported yet" are Progressing; Succeeded and Skipped are
-- Healthy; Failed and Cancelled are Degraded: a cancelled run did not do its work, so a
-- sync wave or an app waiting on it must not go on as if it had (Tekton's TaskRun and
-- Argo Workflows' built-in checks treat cancellation the same way).
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the TaskRun controller to report"
  return hs
end
local phase = status.phase
local detail = phase
if status.reason ~= nil and status.reason ~= phase then
  detail = detail .. " (" .. status.reason .. ")"
end
if status.message ~= nil and status.message ~= "" then
  detail = detail .. ": " .. status.message
end
hs.message = detail
if phase == "Succeeded" or phase == "Skipped" then
  hs.status = "Healthy"
elseif phase == "Failed" or phase == "Cancelled" then
  hs.status = "Degraded"
elseif phase == "Pending" or phase == "Running" then
  hs.status = "Progressing"
else
  hs.status = "Unknown"
end
return hs
