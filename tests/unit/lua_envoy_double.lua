--[[
A test double of the part of Envoy's Lua stream handle that envoy/lua/attempt_rewrite.lua and (on the way back)
envoy/lua/translated_response.lua use, with the
Envoy behaviours the script has to live with:
- header names are lower-cased; get() joins repeated headers with ",";
- one header map serves every attempt of a request, while the body is restored to the client's each time;
- body() waits for the body (a yield under LuaJIT, whose pcall is yieldable, as in Envoy) and every wrapper
  obtained before it is dead afterwards ("object used outside of proper scope");
- body:setBytes() sets content-length, as Envoy's BufferWrapper does;
- respond() ends the script: Envoy yields and never resumes it. PUC Lua 5.1 cannot yield across pcall,
  so there respond() only records, and any header change after it is flagged.
Loaded as a chunk after the script; returns the table of functions the tests call.
]]

local double = {}
local YIELDS = jit ~= nil

local function set_header(request, name, value)
  local kept = {}
  for _, entry in ipairs(request.headers) do
    if entry.name ~= name then
      kept[#kept + 1] = entry
    end
  end
  if value ~= nil then
    kept[#kept + 1] = { name = name, value = value }
  end
  request.headers = kept
end

local function header_value(request, name)
  local values = {}
  for _, entry in ipairs(request.headers) do
    if entry.name == name then
      values[#values + 1] = entry.value
    end
  end
  return #values > 0 and table.concat(values, ",") or nil
end

--- A guard that raises like Envoy when a wrapper is used after the yield that killed it.
local function liveness(request)
  local generation = request.generation
  return function(mutates)
    if request.generation ~= generation then
      error("object used outside of proper scope", 3)
    end
    if mutates and request.responded then
      request.touched_after_respond = true
    end
  end
end

local function check_string(value)
  if type(value) ~= "string" and type(value) ~= "number" then
    error("bad argument: string expected, got " .. type(value), 3)
  end
  return tostring(value)
end

local function headers_wrapper(request)
  local live = liveness(request)
  local wrapper = {}
  function wrapper:get(name)
    live(false)
    return header_value(request, string.lower(check_string(name)))
  end
  function wrapper:add(name, value)
    live(true)
    local headers = request.headers
    headers[#headers + 1] = { name = string.lower(check_string(name)), value = check_string(value) }
  end
  function wrapper:replace(name, value)
    if request.fault == "replace" then
      error("injected fault in headers:replace()")
    end
    live(true)
    set_header(request, string.lower(check_string(name)), check_string(value))
  end
  function wrapper:remove(name)
    live(true)
    set_header(request, string.lower(check_string(name)), nil)
  end
  return wrapper
end

local function body_wrapper(request)
  local live = liveness(request)
  local wrapper = {}
  function wrapper:length()
    live(false)
    return #request.body
  end
  function wrapper:getBytes(index, length)
    live(false)
    if index < 0 or length < 0 or index + length > #request.body then
      error("index/length must be >= 0 and (index + length) must be <= buffer size", 2)
    end
    request.body_reads = request.body_reads + 1
    return string.sub(request.body, index + 1, index + length)
  end
  function wrapper:setBytes(bytes)
    live(true)
    request.body = check_string(bytes)
    set_header(request, "content-length", tostring(#request.body))
    return #request.body
  end
  return wrapper
end

local function handle_for(request)
  local handle = {}
  function handle:headers()
    return headers_wrapper(request)
  end
  function handle:body()
    if YIELDS then
      coroutine.yield("body")
    end
    if request.body_arrives ~= nil then
      request.body_arrives(request)
    end
    request.generation = request.generation + 1
    return request.body and body_wrapper(request)
  end
  function handle:streamInfo()
    if request.fault == "stream_info" then
      return {}
    end
    return {
      routeName = function()
        return request.route_name
      end,
      dynamicMetadata = function()
        return {
          get = function(_, namespace)
            return request.metadata and request.metadata[namespace]
          end,
          set = function(_, namespace, key, value)
            request.metadata = request.metadata or {}
            request.metadata[namespace] = request.metadata[namespace] or {}
            request.metadata[namespace][key] = value
          end,
        }
      end,
    }
  end
  function handle:respond(headers, body)
    local copy = {}
    for name, value in pairs(headers) do
      copy[name] = value
    end
    request.reply, request.responded = { headers = copy, body = body }, true
    if YIELDS then
      coroutine.yield("respond")
    end
  end
  function handle:clearRouteCache()
    request.route_cache_cleared = (request.route_cache_cleared or 0) + 1
    request.cleared_after_body = request.generation > 0
  end
  function handle:logErr(message)
    request.logs[#request.logs + 1] = message
  end
  handle.logWarn, handle.logInfo, handle.logDebug = handle.logErr, handle.logErr, handle.logErr
  return handle
end

--- A client request: route name, headers as {name = value}, body (nil: none).
function double.request(route_name, headers, body)
  local request = {
    route_name = route_name, headers = {}, original_body = body, generation = 0, logs = {}, body_reads = 0,
  }
  for name, value in pairs(headers) do
    set_header(request, string.lower(name), value)
  end
  return request
end

--- `phase` (envoy_on_request or envoy_on_response) in a coroutine, as Envoy runs it, resumed after each wait for
--- the body; false when it raised (the error in state.error).
local function run(phase, state)
  local coroutine_ = coroutine.create(phase)
  local ok, yielded = coroutine.resume(coroutine_, handle_for(state))
  while ok and yielded == "body" do
    ok, yielded = coroutine.resume(coroutine_)
  end
  if not ok then
    state.error = tostring(yielded)
  end
  return ok
end

--- One attempt as Envoy runs it: header_mutation sets the endpoint's blob (nil: the metadata is missing),
--- the body is the client's again, then envoy_on_request runs in a coroutine until it ends or responds.
--- Returns "continue", "respond" or "error" (the script raised: Envoy would send the request unrewritten).
function double.attempt(request, blob)
  set_header(request, "x-switchyard-rewrite", blob)
  request.body, request.reply, request.responded = request.original_body, nil, false
  request.touched_after_respond, request.error, request.body_reads = false, nil, 0
  if not run(envoy_on_request, request) then
    return "error"
  end
  return request.responded and "respond" or "continue"
end

--- An attempt's answer as Envoy hands it to an upstream filter's envoy_on_response: the provider's headers as
--- {name = value}, its body (nil: none), the stream's metadata so far ({namespace = {key = value}}).
function double.response(headers, body, metadata)
  local response = double.request("", headers, body)
  response.original_body, response.body, response.metadata = nil, body, metadata or {}
  return response
end

--- envoy_on_response, as Envoy runs it. `body_arrives(response)` stands for what happens while the script waits
--- in body(): the rest of the answer passing the filters closer to the provider (the ext_proc reads the metadata
--- then, and may replace the body and set its own). Never called when the script does not ask for the body.
--- Returns "continue" or "error" (with response.error).
function double.answer(response, body_arrives)
  response.body_arrives = body_arrives
  return run(envoy_on_response, response) and "continue" or "error"
end

--- envoy_on_request of a downstream filter, once per client request, as Envoy runs it. `body_arrives(request)`
--- stands for what happens while the script waits in body(): the filters before it reading the whole body (the
--- json_to_metadata filter lifting the model into the metadata).
function double.decode(request, body_arrives)
  request.body, request.body_arrives = request.original_body, body_arrives
  return run(envoy_on_request, request) and "continue" or "error"
end

--- The request's headers as {name = value}, repeated ones joined with ",".
function double.headers(request)
  local result = {}
  for _, entry in ipairs(request.headers) do
    result[entry.name] = header_value(request, entry.name)
  end
  return result
end

double.yields = YIELDS

return double
