--[[
Token usage of streamed answers, read by Envoy as the stream passes to the client: a downstream Lua filter
(response side only), once per client request, on the answer as the client gets it.

Why here: a stream between the same APIs never reaches Python, and Envoy's json_to_metadata reads whole JSON
answers only. Providers put usage in the stream itself: OpenAI in a last chunk (`choices: []`, `usage: {...}`)
when the request asked for it (the per-attempt rewrite asks for every stream: attempt_rewrite.lua), Anthropic
in `message_start` (input) and `message_delta` (output, cumulative). Translated streams arrive here already in
the client's API. The counts go into the request's dynamic metadata (namespace `switchyard.usage`), which the
answer log carries to the control plane.

How:
- Only 200 answers of type text/event-stream are looked at; anything else returns at once.
- Each chunk is searched for `_tokens"` (a plain find); only chunks that carry usage go further. The last value
  of each count wins (providers' counts are cumulative). The end of the previous chunk is searched again with
  the next one, so a count split across two chunks is read whole.
- Generated text is always inside JSON strings, where a quote is escaped: `"output_tokens":` with bare quotes
  can only be a member name.
- An OpenAI client that did not ask for usage (no `stream_options.include_usage: true` in its request) does
  not get the usage-only chunk the rewrite made the provider send: the event is removed from the chunk that
  holds it whole (providers write each event at once). An event split across chunks reaches the client as
  OpenAI would send it to a client that asked. The `"usage": null` member OpenAI adds to the other chunks stays.
]]

local find, sub, gmatch = string.find, string.sub, string.gmatch

local USAGE_METADATA_NAMESPACE = "switchyard.usage"
local METADATA_NAMESPACE = "switchyard"
local CLIENT_USAGE_KEY = "client_usage"
local ROUTE_NAME_SEPARATOR = ":"
local TAIL = 96 -- bytes of a chunk searched again with the next one: longer than any count's name and value
local USAGE_KEYS = {
  "prompt_tokens",
  "completion_tokens",
  "input_tokens",
  "output_tokens",
  "cache_creation_input_tokens",
  "cache_read_input_tokens",
  "cached_tokens",
  "cache_write_tokens",
}
local PATTERNS = {}
for i = 1, #USAGE_KEYS do
  PATTERNS[i] = '"' .. USAGE_KEYS[i] .. '":%s*(%d+)'
end
-- Client endpoints (the route name's prefix) whose API has the usage-only chunk.
local OPENAI_STREAMING_ENDPOINTS = { chat = true, completions = true }

--- The counts in `text` as {name = value}, the last of each; nil when it holds none.
local function counts_in(text)
  if not find(text, '_tokens"', 1, true) then
    return nil
  end
  local found
  for i = 1, #USAGE_KEYS do
    local last
    for value in gmatch(text, PATTERNS[i]) do
      last = value
    end
    if last then
      found = found or {}
      found[USAGE_KEYS[i]] = tonumber(last)
    end
  end
  return found
end

--- `chunk` without the usage-only event it holds whole (`starts_clean`: an event begins at its first byte),
--- or nil when it holds none.
local function without_usage_event(chunk, starts_clean)
  local at = find(chunk, '"choices":%s*%[%s*%]')
  if not at then
    return nil
  end
  local first = 1
  local position = find(chunk, "\n\n", 1, true)
  while position and position < at do
    first = position + 2
    position = find(chunk, "\n\n", position + 2, true)
  end
  if not position or (first == 1 and not starts_clean) then
    return nil
  end
  local event = sub(chunk, first, position + 1)
  if not find(event, '"usage":%s*{') then
    return nil
  end
  return sub(chunk, 1, first - 1) .. sub(chunk, position + 2)
end

--- The client endpoint of a route named `<endpoint>:<client model>`.
local function endpoint_of(route_name)
  local colon = find(route_name, ROUTE_NAME_SEPARATOR, 1, true)
  return colon and sub(route_name, 1, colon - 1) or route_name
end

--- Whether the usage-only chunk must be kept from this client: an OpenAI endpoint that did not ask for it.
local function hides_usage_event(stream_info)
  if not OPENAI_STREAMING_ENDPOINTS[endpoint_of(stream_info:routeName() or "")] then
    return false
  end
  local metadata = stream_info:dynamicMetadata():get(METADATA_NAMESPACE)
  return not (metadata and metadata[CLIENT_USAGE_KEY] == true)
end

--- Reads the stream chunk by chunk; returns nothing (errors are caught by the caller).
local function follow_stream(handle)
  local stream_info = handle:streamInfo()
  local hide = hides_usage_event(stream_info)
  local seen, tail, starts_clean = {}, "", true
  for chunk in handle:bodyChunks() do
    local size = chunk:length()
    local data = size > 0 and chunk:getBytes(0, size) or ""
    local found = counts_in(tail .. data)
    if found then
      local metadata = handle:streamInfo():dynamicMetadata()
      for name, value in pairs(found) do
        if seen[name] ~= value then
          seen[name] = value
          metadata:set(USAGE_METADATA_NAMESPACE, name, value)
        end
      end
      if hide then
        local kept = without_usage_event(data, starts_clean)
        if kept then
          chunk:setBytes(kept)
          hide = false -- there is one such event per stream
        end
      end
    end
    if size > 0 then
      tail = sub(data, -TAIL)
      starts_clean = sub(data, -2) == "\n\n"
    end
  end
end

--- Envoy's entry point, once per client request, on the response.
function envoy_on_response(handle)
  local headers = handle:headers()
  if headers:get(":status") ~= "200" then
    return
  end
  local content_type = headers:get("content-type")
  if not content_type or not find(content_type, "text/event-stream", 1, true) then
    return
  end
  local ok, problem = pcall(follow_stream, handle)
  if not ok then
    pcall(handle.logErr, handle, "switchyard stream usage: " .. tostring(problem))
  end
end

-- The pure pieces, for tests.
switchyard_stream_usage = {
  counts_in = counts_in,
  without_usage_event = without_usage_event,
  endpoint_of = endpoint_of,
}
