--[[
Switchyard's client authentication, run by Envoy as a *downstream* Lua filter (once per client request, after
json_to_metadata has lifted the body's `model`, before the request-rate limiter and the router).

The control plane puts this script into the virtual host's per-route config (RDS) with one line in front of
it: `local CLIENT_TABLE = "<table>"`. The table holds no key, only SHA-256 digests of keys, so neither the
pushed config nor Envoy's config_dump holds anything a caller could use. A route-config update applies to
requests on connections already open (a listener change would leave them on the old filter chain while
they drain), so a removed key stops working as soon as Envoy has the new routes.

Table format: `name=value` pairs joined by `&`, names and values percent-encoded (only `%XX` is decoded):

  key.<hex sha256 of a key>   the client the key belongs to
  models.<client>             comma-separated, percent-encoded route models the client may use (absent: all)
  routed                      the same for every routed model (a model nobody routes stays a 404)
  wait.<client>               Retry-After seconds when the request-rate limiter refuses this client
  rpm.<client>                the client's requests_per_minute, fleet-wide (the rate-limit headers' limit)
  tpm.<client>                the client's tokens_per_minute, fleet-wide
  until.<client>              refused (token limit or budget) until this time, in epoch seconds

For each request: the key from `Authorization: Bearer KEY`, else `x-api-key` (either on every endpoint),
its client (missing or unknown: 401), a refused client (429 with Retry-After), a model the client may not
use (403). An authenticated request goes on with the client in dynamic metadata (`switchyard.client`, read
by the limiter and the answer log) and in `x-switchyard-client` (any client-sent copy replaced; the route
removes it again before any attempt), and without the client's key: no provider ever sees it.

Hashing: SHA-256 in pure LuaJIT (the `bit` library). Each distinct known key is hashed once per worker and
remembered in a table bounded by the number of configured keys; an unknown key is hashed on every request
(a few microseconds) and never remembered, so made-up keys cannot grow anything.

On the way back (envoy_on_response), a limited client's answer gets rate-limit headers in the convention of
the API it called: Envoy's local rate limiter (after this filter in the chain, so its headers are already on
every answer here, its own 429s included) counts the requests and sets the IETF draft's `x-ratelimit-limit`,
`-remaining` and `-reset`; this script renames them to OpenAI's `x-ratelimit-*-requests` (reset as `2s`) or,
on the Anthropic endpoints, `anthropic-ratelimit-requests-*` (reset as an RFC 3339 time), with the fleet-wide
limit. Tokens per minute count in UTC minutes in the control plane: their headers give the limit and the end
of the minute, and a remaining count of 0 only while the client is refused (the data plane does not know it
otherwise).

A Lua error would make Envoy log it and let the request through: everything runs under pcall, and any
failure answers 500 instead.
]]

local byte, char, concat, format, gmatch, gsub, rep =
  string.byte, string.char, table.concat, string.format, string.gmatch, string.gsub, string.rep
local ceil, floor = math.ceil, math.floor
local bit = require("bit")
local band, bnot, bor, bxor, lshift, rshift, ror, tobit, tohex =
  bit.band, bit.bnot, bit.bor, bit.bxor, bit.lshift, bit.rshift, bit.ror, bit.tobit, bit.tohex

local METADATA_NAMESPACE = "switchyard"
local MODEL_KEY = "model"
local CLIENT_METADATA_KEY = "client"
local RETRY_AFTER_METADATA_KEY = "retry_after"
local CLIENT_HEADER = "x-switchyard-client"
local TEXT_PLAIN = "text/plain"

------------------------------------------------------------------------------------------------------------
-- SHA-256 (FIPS 180-4), on 32-bit words held as LuaJIT bit values; sums stay exact in doubles before tobit.
------------------------------------------------------------------------------------------------------------

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
for i = 1, 64 do
  K[i] = tobit(K[i])
end

local W = {} -- the message schedule, reused (a worker runs one request at a time)

--- The big-endian bytes of a message's length in bits, as SHA-256 pads with them.
local function length_bytes(length)
  local bits = length * 8
  local high = floor(bits / 4294967296)
  local low = bits % 4294967296
  local function word(value)
    return char(floor(value / 16777216) % 256, floor(value / 65536) % 256, floor(value / 256) % 256, value % 256)
  end
  return word(high) .. word(low)
end

local function sha256_hex(message)
  local length = #message
  local padded = message .. "\128" .. rep("\0", (55 - length) % 64) .. length_bytes(length)
  local h0, h1, h2, h3 = tobit(0x6a09e667), tobit(0xbb67ae85), tobit(0x3c6ef372), tobit(0xa54ff53a)
  local h4, h5, h6, h7 = tobit(0x510e527f), tobit(0x9b05688c), tobit(0x1f83d9ab), tobit(0x5be0cd19)
  local w = W
  for block = 1, #padded, 64 do
    for i = 0, 15 do
      local b1, b2, b3, b4 = byte(padded, block + i * 4, block + i * 4 + 3)
      w[i] = bor(lshift(b1, 24), lshift(b2, 16), lshift(b3, 8), b4)
    end
    for i = 16, 63 do
      local v15, v2 = w[i - 15], w[i - 2]
      local s0 = bxor(ror(v15, 7), ror(v15, 18), rshift(v15, 3))
      local s1 = bxor(ror(v2, 17), ror(v2, 19), rshift(v2, 10))
      w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 0, 63 do
      local s1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local choice = bxor(band(e, f), band(bnot(e), g))
      local t1 = h + s1 + choice + K[i + 1] + w[i]
      local s0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local majority = bxor(band(a, b), band(a, c), band(b, c))
      h, g, f, e = g, f, e, tobit(d + t1)
      d, c, b, a = c, b, a, tobit(t1 + s0 + majority)
    end
    h0, h1, h2, h3 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d)
    h4, h5, h6, h7 = tobit(h4 + e), tobit(h5 + f), tobit(h6 + g), tobit(h7 + h)
  end
  return concat({ tohex(h0), tohex(h1), tohex(h2), tohex(h3), tohex(h4), tohex(h5), tohex(h6), tohex(h7) })
end

------------------------------------------------------------------------------------------------------------
-- The client table, parsed once per worker when Envoy loads this script
------------------------------------------------------------------------------------------------------------

local function hex_byte(hex)
  return char(tonumber(hex, 16))
end

local function percent_decode(text)
  return (gsub(text, "%%(%x%x)", hex_byte))
end

local function name_set(encoded)
  local set = {}
  for item in gmatch(encoded, "[^,]+") do
    set[percent_decode(item)] = true
  end
  return set
end

local function parse_table(encoded)
  local parsed =
    { clients = {}, models = {}, routed = {}, wait = {}, rpm = {}, tpm = {}, refused = {}, key_count = 0 }
  for raw_name, raw_value in gmatch(encoded, "([^&=]*)=([^&]*)") do
    local name, value = percent_decode(raw_name), percent_decode(raw_value)
    local kind, subject = name:match("^([a-z]+)%.(.*)$")
    if kind == "key" then
      parsed.clients[subject] = value
      parsed.key_count = parsed.key_count + 1
    elseif kind == "models" then
      parsed.models[subject] = name_set(value)
    elseif kind == "wait" then
      parsed.wait[subject] = value
    elseif kind == "rpm" then
      parsed.rpm[subject] = value
    elseif kind == "tpm" then
      parsed.tpm[subject] = value
    elseif kind == "until" then
      parsed.refused[subject] = tonumber(value)
    elseif name == "routed" then
      parsed.routed = name_set(value)
    else
      error("unexpected entry in the client table: " .. name)
    end
  end
  return parsed
end

local TABLE = parse_table(CLIENT_TABLE)

-- key → client, for keys that belong to a client only: bounded by the configured keys (a cap all the same).
local known_keys, known_count = {}, 0
local KNOWN_LIMIT = TABLE.key_count + 16

local function client_of(key)
  local client = known_keys[key]
  if client then
    return client
  end
  client = TABLE.clients[sha256_hex(key)]
  if client then
    if known_count >= KNOWN_LIMIT then
      known_keys, known_count = {}, 0
    end
    known_keys[key], known_count = client, known_count + 1
  end
  return client
end

------------------------------------------------------------------------------------------------------------
-- Per request
------------------------------------------------------------------------------------------------------------

local MISSING = "Missing API key: send it as `Authorization: Bearer KEY` (or as `x-api-key: KEY`)."
local INVALID = "Invalid API key."
local FAILED = "Switchyard could not check this request's API key."

--- The key the client presented, or nil: a Bearer token first, else `x-api-key`.
local function presented_key(headers)
  local authorization = headers:get("authorization")
  if authorization then
    local token = authorization:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
    if token then
      return token
    end
  end
  local api_key = headers:get("x-api-key")
  if api_key and api_key ~= "" then
    return api_key
  end
  return nil
end

--- Seconds a refused client still waits, or nil when it is not refused (any more: no push needed to end it).
local function refused_for(client)
  local until_time = TABLE.refused[client]
  if not until_time then
    return nil
  end
  local now = os.time()
  if until_time > now then
    return math.max(1, ceil(until_time - now))
  end
  return nil
end

local function model_of(handle)
  local metadata = handle:streamInfo():dynamicMetadata():get(METADATA_NAMESPACE)
  return metadata and metadata[MODEL_KEY]
end

--- Returns nil to let the request on, or status, message, retry_after to answer it.
local function authenticate(handle)
  local headers = handle:headers()
  local key = presented_key(headers)
  if not key then
    return 401, MISSING
  end
  local client = client_of(key)
  if not client then
    return 401, INVALID
  end
  local wait = refused_for(client)
  if wait then
    return 429,
      format("Client %s is over its token limit or budget; retry after %d seconds.", client, wait),
      tostring(wait)
  end
  local allowed = TABLE.models[client]
  if allowed then
    local model = model_of(handle)
    if model and TABLE.routed[model] and not allowed[model] then
      return 403, format("Client %s may not use model %s.", client, model)
    end
  end
  headers:replace(CLIENT_HEADER, client)
  headers:remove("authorization")
  headers:remove("x-api-key")
  local metadata = handle:streamInfo():dynamicMetadata()
  metadata:set(METADATA_NAMESPACE, CLIENT_METADATA_KEY, client)
  local limit_wait = TABLE.wait[client]
  if limit_wait then
    metadata:set(METADATA_NAMESPACE, RETRY_AFTER_METADATA_KEY, limit_wait)
  end
  return nil
end

function envoy_on_request(handle)
  local ok, status, message, retry_after = pcall(authenticate, handle)
  if not ok then
    pcall(handle.logErr, handle, "switchyard client authentication failed: " .. tostring(status))
    status, message, retry_after = 500, FAILED, nil
  end
  if status then
    local reply = { [":status"] = tostring(status), ["content-type"] = TEXT_PLAIN }
    if retry_after then
      reply["retry-after"] = retry_after
    end
    handle:respond(reply, message)
  end
end

------------------------------------------------------------------------------------------------------------
-- Rate-limit headers on the answer
------------------------------------------------------------------------------------------------------------

-- What Envoy's local rate limiter sets (enable_x_ratelimit_headers: DRAFT_VERSION_03).
local DRAFT_LIMIT, DRAFT_REMAINING, DRAFT_RESET = "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"
-- Client endpoints (the route name's prefix) that speak Anthropic's API.
local ANTHROPIC_ENDPOINTS = { messages = true, count_tokens = true }
local ROUTE_NAME_SEPARATOR = ":"
local MINUTE_S = 60

local function rfc3339(epoch_s)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", epoch_s)
end

--- The headers of a limited client's answer as {name = value}, nil for a client without limits.
--- `draft` holds the limiter's draft headers (nil values when it did not count this request).
local function rate_limit_headers(client, endpoint, draft, now)
  local rpm, tpm = TABLE.rpm[client], TABLE.tpm[client]
  if not rpm and not tpm then
    return nil
  end
  local anthropic = ANTHROPIC_ENDPOINTS[endpoint]
  local out = {}
  if rpm and draft.remaining then
    local reset = tonumber(draft.reset) or 0
    if anthropic then
      out["anthropic-ratelimit-requests-limit"] = rpm
      out["anthropic-ratelimit-requests-remaining"] = draft.remaining
      out["anthropic-ratelimit-requests-reset"] = rfc3339(now + reset)
    else
      out["x-ratelimit-limit-requests"] = rpm
      out["x-ratelimit-remaining-requests"] = draft.remaining
      out["x-ratelimit-reset-requests"] = format("%ds", reset)
    end
  end
  if tpm then
    local minute_end = (floor(now / MINUTE_S) + 1) * MINUTE_S
    local refused = TABLE.refused[client] and TABLE.refused[client] > now
    if anthropic then
      out["anthropic-ratelimit-tokens-limit"] = tpm
      out["anthropic-ratelimit-tokens-reset"] = rfc3339(minute_end)
      if refused then
        out["anthropic-ratelimit-tokens-remaining"] = "0"
      end
    else
      out["x-ratelimit-limit-tokens"] = tpm
      out["x-ratelimit-reset-tokens"] = format("%ds", minute_end - now)
      if refused then
        out["x-ratelimit-remaining-tokens"] = "0"
      end
    end
  end
  return out
end

local function endpoint_of(route_name)
  local separator = string.find(route_name, ROUTE_NAME_SEPARATOR, 1, true)
  return separator and route_name:sub(1, separator - 1) or route_name
end

local function add_rate_limit_headers(handle)
  local headers = handle:headers()
  local draft = {
    remaining = headers:get(DRAFT_REMAINING),
    reset = headers:get(DRAFT_RESET),
  }
  if draft.remaining then
    headers:remove(DRAFT_LIMIT)
    headers:remove(DRAFT_REMAINING)
    headers:remove(DRAFT_RESET)
  end
  local info = handle:streamInfo()
  local metadata = info:dynamicMetadata():get(METADATA_NAMESPACE)
  local client = metadata and metadata[CLIENT_METADATA_KEY]
  if not client then
    return
  end
  local out = rate_limit_headers(client, endpoint_of(info:routeName() or ""), draft, os.time())
  if out then
    for name, value in pairs(out) do
      headers:replace(name, value)
    end
  end
end

-- Defined only when some client has a limit: without envoy_on_response Envoy does not run the script on answers.
if next(TABLE.rpm) or next(TABLE.tpm) then
  function envoy_on_response(handle)
    local ok, problem = pcall(add_rate_limit_headers, handle)
    if not ok then
      pcall(handle.logErr, handle, "switchyard rate-limit headers failed: " .. tostring(problem))
    end
  end
end

-- The pure pieces, for tests (the script is loaded as one chunk, as Envoy does).
switchyard_client_auth = {
  sha256_hex = sha256_hex,
  client_of = client_of,
  table = TABLE,
  rate_limit_headers = rate_limit_headers,
  known_count = function()
    return known_count
  end,
}
