-- Argo CD health check for Tandem's kinds (HAPair, SyncPolicy, Switchover):
-- kstatus read from the conditions the operator sets. Healthy = Current,
-- Progressing = InProgress, Degraded = Failed (Stalled=True).
-- internal/controller/kstatus_test.go runs it (gopher-lua, as Argo CD does)
-- against every state those tests build, and docs/api.md shows it.
hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.status ~= nil and obj.status.conditions ~= nil then
  if obj.metadata.generation ~= obj.status.observedGeneration then
    return hs
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Stalled" and c.status == "True" then
      return {status = "Degraded", message = c.message}
    end
    if c.type == "Reconciling" and c.status == "True" then
      return {status = "Progressing", message = c.message}
    end
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" and c.status == "True" then
      return {status = "Healthy", message = c.message}
    end
  end
end
return hs
