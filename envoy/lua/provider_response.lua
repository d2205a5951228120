--[[
Switchyard's companion to the translating ext_proc on the way back, as an *upstream* Lua filter placed right AFTER
the ext_proc filters (only on attempts marked `x-switchyard-translate` or `-translate-stream`), so it sees the
provider's response before the ext_proc does.

The ext_proc is sent no response headers message (a gRPC round trip less per attempt): it gets the response body
alone. This filter hands it the provider's response headers (status, content-type, error type) as metadata, which
Envoy forwards with the body. The ext_proc blanks them once read: Envoy's access logs carry the request's metadata.

On the way out it removes the markers that sent the attempt to the ext_proc, which must never reach a provider:
here rather than in the ext_proc, because Envoy decides whether to run this filter on the request headers as they
reach it, and it must run on exactly the attempts the ext_proc translates.
]]

local TRANSLATE_HEADER = "x-switchyard-translate"
local TRANSLATE_STREAM_HEADER = "x-switchyard-translate-stream"
local ATTEMPT_METADATA_NAMESPACE = "switchyard.attempt"
local ATTEMPT_RESPONSE_HEADERS_KEY = "response_headers"

function envoy_on_request(handle)
  local headers = handle:headers()
  headers:remove(TRANSLATE_HEADER)
  headers:remove(TRANSLATE_STREAM_HEADER)
end

function envoy_on_response(handle)
  local provider = {}
  for name, value in pairs(handle:headers()) do
    provider[name] = value
  end
  handle:streamInfo():dynamicMetadata():set(ATTEMPT_METADATA_NAMESPACE, ATTEMPT_RESPONSE_HEADERS_KEY, provider)
end
