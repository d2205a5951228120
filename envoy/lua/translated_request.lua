--[[
Switchyard's companion to the ext_proc on the attempts Envoy sends it, as an *upstream* Lua filter placed
right AFTER the ext_proc filters (only on attempts marked for one: `x-switchyard-translate`, `-translate-stream`
or `-rules`).

The ext_proc is sent no headers message: it gets the request body alone (what it needs of the headers comes as
request attributes with it), which saves a gRPC round trip per attempt. Without a headers message
Envoy does not hold the headers for it, and ignores header changes in its answer to the body. So this filter holds
them instead, until the ext_proc's body has come through, and then applies the headers the ext_proc asked for in
the metadata `switchyard.translated` (content-length of the new body, content-type, a streaming path, a SigV4
signature), and removes the markers, which must never reach a provider. It blanks them in the metadata once
applied: Envoy's access logs carry the request's metadata, and a signature must not travel there.

On the way back it sees the provider's response before the ext_proc does, and hands the ext_proc its headers
(status, content-type, error type) as metadata: the ext_proc gets no response headers message either. It blanks
them once read.
]]

local TRANSLATE_HEADER = "x-switchyard-translate"
local TRANSLATE_STREAM_HEADER = "x-switchyard-translate-stream"
local RULES_HEADER = "x-switchyard-rules"
local ATTEMPT_METADATA_NAMESPACE = "switchyard.attempt"
local ATTEMPT_RESPONSE_HEADERS_KEY = "response_headers"
local TRANSLATED_METADATA_NAMESPACE = "switchyard.translated"
local TRANSLATED_HEADERS_KEY = "headers"
local TRANSLATED_READS_RESPONSE_KEY = "reads_response"

local FAILED = "Switchyard could not prepare this request for its target."

local function apply_ext_proc_headers(handle)
  handle:body() -- yields until the ext_proc's body is there; the ext_proc answered before it
  local headers = handle:headers() -- the wrapper from before the yield is dead
  headers:remove(TRANSLATE_HEADER)
  headers:remove(TRANSLATE_STREAM_HEADER)
  headers:remove(RULES_HEADER)
  local translated = handle:streamInfo():dynamicMetadata():get(TRANSLATED_METADATA_NAMESPACE)
  local set = translated and translated[TRANSLATED_HEADERS_KEY]
  if type(set) ~= "table" then
    return false
  end
  for name, value in pairs(set) do
    headers:replace(name, value)
  end
  handle:streamInfo():dynamicMetadata():set(TRANSLATED_METADATA_NAMESPACE, TRANSLATED_HEADERS_KEY, "")
  return true
end

function envoy_on_request(handle)
  local ok, applied = pcall(apply_ext_proc_headers, handle)
  if not (ok and applied) then
    -- Never send a body whose headers do not match it (a wrong length or signature, or the markers upstream).
    pcall(handle.logErr, handle, "switchyard: no ext_proc headers for this attempt: " .. tostring(applied))
    handle:respond({ [":status"] = "500", ["content-type"] = "text/plain" }, FAILED)
  end
end

function envoy_on_response(handle)
  local translated = handle:streamInfo():dynamicMetadata():get(TRANSLATED_METADATA_NAMESPACE)
  if not (translated and translated[TRANSLATED_READS_RESPONSE_KEY] == true) then
    return -- a same-API attempt with body rules: its response skips the ext_proc
  end
  local provider = {}
  for name, value in pairs(handle:headers()) do
    provider[name] = value
  end
  handle:streamInfo():dynamicMetadata():set(ATTEMPT_METADATA_NAMESPACE, ATTEMPT_RESPONSE_HEADERS_KEY, provider)
end
