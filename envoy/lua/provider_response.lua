--[[
Switchyard's companion to the translating ext_proc on the way back, as an *upstream* Lua filter placed right AFTER
the ext_proc filters (only on attempts marked `x-switchyard-translate` or `-translate-stream`), so it sees the
provider's response before the ext_proc does.

The ext_proc is sent no response headers message (a gRPC round trip less per attempt): it gets the response body
alone. This filter hands it the provider's response headers it reads (status, content-type, error type) as
metadata, which Envoy forwards with the body: only those, where a provider sends a score of others (rate limits,
request ids, CDN headers) that would cost a table entry here and a Struct field on both sides of the gRPC message.
The ext_proc blanks them once read: Envoy's access logs carry the request's metadata.

On the way out it removes the markers that sent the attempt to the ext_proc, which must never reach a provider:
here rather than in the ext_proc, because Envoy decides whether to run this filter on the request headers as they
reach it, and it must run on exactly the attempts the ext_proc translates.
]]

local TRANSLATE_HEADER = "x-switchyard-translate"
local TRANSLATE_STREAM_HEADER = "x-switchyard-translate-stream"
local ATTEMPT_METADATA_NAMESPACE = "switchyard.attempt"
local ATTEMPT_RESPONSE_HEADERS_KEY = "response_headers"
local PROVIDER_HEADERS_READ = {
  ":status",
  "content-type",
  "x-amzn-errortype",
}

function envoy_on_request(handle)
  local headers = handle:headers()
  headers:remove(TRANSLATE_HEADER)
  headers:remove(TRANSLATE_STREAM_HEADER)
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local provider = {}
  for _, name in ipairs(PROVIDER_HEADERS_READ) do
    local value = headers:get(name)
    if value ~= nil then
      provider[name] = value
    end
  end
  handle:streamInfo():dynamicMetadata():set(ATTEMPT_METADATA_NAMESPACE, ATTEMPT_RESPONSE_HEADERS_KEY, provider)
end
