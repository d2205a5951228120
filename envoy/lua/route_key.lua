--[[
The request's routing key, for the virtual host's exact map of routes (controlplane/resources/route_index.py):
a downstream Lua filter right after json_to_metadata, once per client request.

Why: routes match on the body's `model`, which json_to_metadata lifts into dynamic metadata. Tried in order, a
route list costs every request about 1.7 us of Envoy's CPU per route before its own, and a config has a route
per model and client endpoint: 300 models tripled Envoy's CPU per request (bench/envoy_costs.py `models_300`).
Envoy's matcher can look a request up in an exact map in one step, but only by a header (or another string
input), not by metadata: this copies the lifted model into one, with the method and the path.

How: body() waits for the whole body, by which time json_to_metadata (before this filter) has lifted the model;
the key replaces any header of that name the client sent; the route cache is cleared so that Envoy matches
again with the key. Without a lifted model (no body, not JSON, no `model`) the key ends with the separator and
matches nothing in the map: the request goes down the route list, as every request did before. The virtual host
removes the header before any attempt.
]]

local METADATA_NAMESPACE = "switchyard"
local MODEL_KEY = "model"
local ROUTE_KEY_HEADER = "x-switchyard-route-key"
local ROUTE_KEY_SEPARATOR = " "

local match = string.match

function envoy_on_request(handle)
  handle:body()
  local lifted = handle:streamInfo():dynamicMetadata():get(METADATA_NAMESPACE)
  local model = lifted and lifted[MODEL_KEY]
  if type(model) ~= "string" then
    model = ""
  end
  local headers = handle:headers()
  local path = match(headers:get(":path") or "", "^[^?]*")
  local method = headers:get(":method") or ""
  headers:replace(ROUTE_KEY_HEADER, method .. ROUTE_KEY_SEPARATOR .. path .. ROUTE_KEY_SEPARATOR .. model)
  handle:clearRouteCache()
end
