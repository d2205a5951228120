--[[
Switchyard's companion to the translating ext_proc on the way back, as an *upstream* Lua filter placed right
BEFORE the translating ext_proc filters (only on attempts marked `x-switchyard-translate` or `-translate-stream`),
so on the way back it sees the answer as the ext_proc left it.

The ext_proc is sent no response headers message (a gRPC round trip less per attempt), so it neither sees the
provider's response headers nor can it change the client's. This one filter does both, in two steps:

1. When the provider's response headers reach it (they pass the ext_proc unchanged, before any of the body), it
   hands the ext_proc the few it reads (status, content-type, error type) as metadata, which Envoy forwards with
   the body: only those, where a provider sends a score of others (rate limits, request ids, CDN headers) that
   would cost a table entry here and a Struct field on both sides of the gRPC message. The ext_proc blanks them
   once read: Envoy's access logs carry the request's metadata. The body reaches the ext_proc only after this,
   so the metadata is always there in time; one filter instead of a second Lua filter after the ext_proc saves
   Envoy a Lua stream per attempt.
2. It applies what the ext_proc put in the metadata `switchyard.translated`:
   - a streamed request whose provider answered 200 goes on at once as an event stream: the ext_proc translates
     its chunks as they arrive;
   - anything else (a whole answer, an error) is held here until the ext_proc has translated all of it, then
     goes on with the client's status, which the ext_proc set in the metadata, and the translated body's
     length. Envoy decides on a fallback only then, on the client's status (Anthropic's 529 is OpenAI's 503).
     An answer without a body never reaches the ext_proc: its status comes from the table of changed statuses
     the ext_proc sent with the request.

The ext_proc removes the marker that sent the attempt to it, in its answer to the request headers: it must never
reach a provider. Envoy decides whether to run this filter on the request headers as they reach it, before that.
]]

local TRANSLATED_METADATA_NAMESPACE = "switchyard.translated"
local TRANSLATED_STREAM_KEY = "stream"
local TRANSLATED_STATUS_KEY = "status"
local TRANSLATED_STATUSES_KEY = "statuses"
local ATTEMPT_METADATA_NAMESPACE = "switchyard.attempt"
local ATTEMPT_RESPONSE_HEADERS_KEY = "response_headers"
local PROVIDER_HEADERS_READ = {
  ":status",
  "content-type",
  "x-amzn-errortype",
}

local function translated(handle)
  return handle:streamInfo():dynamicMetadata():get(TRANSLATED_METADATA_NAMESPACE) or {}
end

local function hand_over_provider_headers(handle, headers)
  local provider = {}
  for _, name in ipairs(PROVIDER_HEADERS_READ) do
    local value = headers:get(name)
    if value ~= nil then
      provider[name] = value
    end
  end
  handle:streamInfo():dynamicMetadata():set(ATTEMPT_METADATA_NAMESPACE, ATTEMPT_RESPONSE_HEADERS_KEY, provider)
end

function envoy_on_response(handle)
  local headers = handle:headers()
  hand_over_provider_headers(handle, headers)
  if translated(handle)[TRANSLATED_STREAM_KEY] == true and headers:get(":status") == "200" then
    headers:replace("content-type", "text/event-stream")
    return
  end
  local body = handle:body() -- yields until the ext_proc has translated the whole answer
  headers = handle:headers()
  local asked = translated(handle)
  local status = asked[TRANSLATED_STATUS_KEY]
  if body == nil then
    -- No body, so no message to the ext_proc: the status alone, from the ext_proc's table.
    local others = asked[TRANSLATED_STATUSES_KEY]
    status = type(others) == "table" and others[headers:get(":status")] or nil
  end
  if type(status) == "string" and status ~= "" then
    headers:replace(":status", status)
  end
  headers:replace("content-type", "application/json")
  headers:replace("content-length", string.format("%d", body and body:length() or 0))
end
