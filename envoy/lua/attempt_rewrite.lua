--[[
Switchyard's per-attempt rewrite, run by Envoy as an *upstream* Lua filter: once for every attempt
(first try and each retry), after Envoy has picked the endpoint.

The header_mutation filter before this one copies the picked endpoint's metadata `switchyard:rewrite`
into the request header `x-switchyard-rewrite` (the "blob"). This script turns the request into the one
that target expects: upstream path, credentials, the body's top-level `model`, `content-length`. On the way
back it reads a small failed answer whole, so that a failover keeps the failing target's connection
(envoy_on_response).

Blob format: `name=value` pairs joined by `&`, names and values percent-encoded as Python's
`urllib.parse.quote(s, safe="")` does (only `%XX` is decoded; `+` is not a space):

  path.<endpoint>       upstream `:path` (query included) for a client call to <endpoint>
  set.<header>          header overwritten on every attempt (credentials, API version); repeatable
  remove                comma-separated headers removed on every attempt
  model                 JSON string literal (quotes included) for the body's top-level `model`
  length                `1`: another attempt may have changed the body length, reset `content-length`
  translate.<endpoint>  opaque value for `x-switchyard-translate` (`x-switchyard-translate-stream` when the client
                        asked for a stream): a later filter translates the body
  rules.<endpoint>      the same for `x-switchyard-rules`: a same-API attempt whose body only gets body rules
  usage                 `1`: the target speaks OpenAI's API; a streamed request (`"stream": true`) gets
                        `stream_options.include_usage: true`, so the stream ends with its token usage

Why it is written this way:
- Envoy shares one request header map across attempts but restores the body: every header this script may
  touch is overwritten or removed on every attempt, so nothing of an earlier attempt leaks into this one.
- A Lua error makes Envoy log it and send the request on UNREWRITTEN (wrong model, client credentials). All
  logic runs under pcall; any failure answers 500 instead. Anything unexpected in the blob answers 503.
- This is the hot path of every request: blobs are parsed once and cached (there are as many as endpoints);
  per attempt only header calls remain, plus one `string.find`-driven scan when the body is rewritten.
- Envoy runs LuaJIT 2.1 (Lua 5.1 semantics): no utf8 library, no JSON library. Wrapper objects (headers,
  body) do not survive the yield inside handle:body(), so headers are fetched again after it.
]]

local byte, char, concat, find, format, gmatch, gsub, lower, match, sub =
  string.byte, string.char, table.concat, string.find, string.format, string.gmatch, string.gsub,
  string.lower, string.match, string.sub
local min = math.min

local REWRITE_HEADER = "x-switchyard-rewrite"
local TRANSLATE_HEADER = "x-switchyard-translate"
local TRANSLATE_STREAM_HEADER = "x-switchyard-translate-stream"
local RULES_HEADER = "x-switchyard-rules"
local METADATA_NAMESPACE = "switchyard"
local STREAM_KEY = "stream"
local ROUTE_NAME_SEPARATOR = ":"
local CACHE_LIMIT = 1024
-- The largest failed answer read whole before the router sees it (envoy_on_response): error bodies are small.
local FAILED_ANSWER_LIMIT = 65536

local QUOTE, BACKSLASH, COMMA, COLON = 34, 92, 44, 58
local LBRACE, RBRACE, LBRACKET = 123, 125, 91

local TEXT_PLAIN = "text/plain"
local NO_REWRITE = "Switchyard has no rewrite for this target."
local BAD_REWRITE = "Switchyard cannot read the rewrite for this target."
local FAILED = "Switchyard could not rewrite this request for its target."

-- Client-side refusals raised while scanning a body; anything else raised there is a bug (answered 500).
local Refusal = {}

local function refuse(message)
  error(setmetatable({ message = message }, Refusal), 0)
end

local NOT_OBJECT = "The request body is not a JSON object."
local UNTERMINATED_STRING = "The request body is not valid JSON: a string is not terminated."
local UNBALANCED = "The request body is not valid JSON: its brackets do not match."
local BAD_ESCAPE = "The request body is not valid JSON: a member name has an invalid escape."
local DUPLICATE_MODEL = 'The request body has more than one top-level "model" member.'
local NO_MODEL = 'The request body has no top-level "model" member.'
local MODEL_NOT_STRING = 'The request body\'s top-level "model" is not a string.'
local TRUNCATED = "The request body is not valid JSON: it ends too early."

--- Refuses the body for what is at `position` (nil: the end of the body).
local function unexpected(position)
  if not position then
    refuse(TRUNCATED)
  end
  refuse(format("The request body is not valid JSON: unexpected data at byte %d.", position))
end

------------------------------------------------------------------------------------------------------------
-- JSON strings
------------------------------------------------------------------------------------------------------------

-- Where the next byte of each kind is, from the scan position on (HUGE: nowhere). A scan only moves forward,
-- so each is searched again only once the scan has passed it, by a plain find (memchr in LuaJIT): a long string
-- costs one jump to its closing quote, never a per-byte pattern match (which is ~10x slower) or Lua loop.
local HUGE = math.huge
local next_quote, next_backslash, next_brace, next_close_brace, next_bracket, next_close_bracket

--- Forgets the positions of the previous scan; call before scanning a new text.
local function start_scan()
  next_quote, next_backslash, next_brace, next_close_brace, next_bracket, next_close_bracket = 0, 0, 0, 0, 0, 0
end

--- The next `char` at or after `position`: the cached one while the scan has not passed it, else found anew.
local function ahead(text, char, cached, position)
  if cached >= position then
    return cached
  end
  return find(text, char, position, true) or HUGE
end

--- Position of the closing quote of the string opening at `first`, and whether it holds an escape.
local function string_end(text, first)
  local position, escaped = first + 1, false
  while true do
    next_quote = ahead(text, '"', next_quote, position)
    next_backslash = ahead(text, "\\", next_backslash, position)
    if next_quote < next_backslash then
      return next_quote, escaped
    elseif next_backslash == HUGE then
      refuse(UNTERMINATED_STRING)
    end
    escaped, position = true, next_backslash + 2
  end
end

local SIMPLE_ESCAPES = {
  [QUOTE] = '"', [BACKSLASH] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r",
  [116] = "\t",
}

--- UTF-8 bytes of a code point (lone surrogates are encoded as they are, like a WTF-8 string).
local function utf8_char(code)
  if code < 0x80 then
    return char(code)
  elseif code < 0x800 then
    return char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
  elseif code < 0x10000 then
    return char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end
  return char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
    0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

--- One `\u` escape (and its low surrogate, if it is a high one) at `at`: the text and the position after it.
local function decode_unicode_escape(text, at)
  local hex = match(text, "^%x%x%x%x", at + 2)
  if not hex then
    return nil
  end
  local code, after = tonumber(hex, 16), at + 6
  if code >= 0xD800 and code <= 0xDBFF then
    local low = match(text, "^\\u(%x%x%x%x)", after)
    local low_code = low and tonumber(low, 16)
    if low_code and low_code >= 0xDC00 and low_code <= 0xDFFF then
      code, after = 0x10000 + (code - 0xD800) * 0x400 + (low_code - 0xDC00), after + 6
    end
  end
  return utf8_char(code), after
end

--- The value of the JSON string literal `literal` (quotes included), or nil if an escape is invalid.
--- Only short texts come here (member names with a backslash, the blob's model), never a whole body.
local function decode_json_string(literal)
  local parts, count, position, last = {}, 0, 2, #literal
  while true do
    local slash = find(literal, "\\", position, true)
    if not slash or slash >= last then
      parts[count + 1] = sub(literal, position, last - 1)
      return concat(parts)
    end
    parts[count + 1] = sub(literal, position, slash - 1)
    local escape, decoded = byte(literal, slash + 1), nil
    if escape == 117 then -- u
      decoded, position = decode_unicode_escape(literal, slash)
    else
      decoded, position = SIMPLE_ESCAPES[escape], slash + 2
    end
    if not decoded then
      return nil
    end
    parts[count + 2], count = decoded, count + 2
  end
end

--- Whether `text` is exactly one JSON string literal (the blob's `model` value is inserted as it is).
local function is_string_literal(text)
  if byte(text, 1) ~= QUOTE then
    return false
  end
  start_scan()
  local ok, last = pcall(string_end, text, 1)
  return ok and last == #text and decode_json_string(text) ~= nil
end

------------------------------------------------------------------------------------------------------------
-- The top-level `model` member
------------------------------------------------------------------------------------------------------------

--- Position of the next byte that is not JSON whitespace, or nil at the end.
local function skip_space(text, position)
  return find(text, "[^ \t\n\r]", position)
end

--- Position of the next quote or bracket at or after `position` (HUGE: none).
local function next_structural(text, position)
  next_quote = ahead(text, '"', next_quote, position)
  next_brace = ahead(text, "{", next_brace, position)
  next_close_brace = ahead(text, "}", next_close_brace, position)
  next_bracket = ahead(text, "[", next_bracket, position)
  next_close_bracket = ahead(text, "]", next_close_bracket, position)
  return min(next_quote, next_brace, next_close_brace, next_bracket, next_close_bracket)
end

--- Position of the bracket closing the object or array opening at `first`.
--- Jumps between quotes and brackets; strings are skipped whole so brackets inside them do not count.
local function container_end(text, first)
  local expected, depth, position = { byte(text, first) + 2 }, 1, first + 1 -- `{`+2 is `}`, `[`+2 is `]`
  while true do
    local found = next_structural(text, position)
    if found == HUGE then
      refuse(UNBALANCED)
    end
    local c = byte(text, found)
    if c == QUOTE then
      found = string_end(text, found)
    elseif c == LBRACE or c == LBRACKET then
      depth = depth + 1
      expected[depth] = c + 2
    elseif c ~= expected[depth] then
      refuse(UNBALANCED)
    elseif depth == 1 then
      return found
    else
      depth = depth - 1
    end
    position = found + 1
  end
end

local LITERALS = { ["true"] = true, ["false"] = true, ["null"] = true }

--- Whether a bare top-level token is a JSON number or literal.
local function is_scalar(token)
  if LITERALS[token] then
    return true
  end
  local mantissa = match(token, "^(.-)[eE][-+]?%d+$") or token
  return match(mantissa, "^-?%d+$") ~= nil or match(mantissa, "^-?%d+%.%d+$") ~= nil
end

--- Position of the last byte of the top-level number or literal starting at `first`.
local function scalar_end(text, first)
  local after = find(text, "[ \t\n\r,}]", first)
  if not after then
    unexpected(nil)
  elseif not is_scalar(sub(text, first, after - 1)) then
    unexpected(first)
  end
  return after - 1
end

--- Position of the last byte of the value starting at `first`.
local function value_end(text, first)
  local c = byte(text, first)
  if c == QUOTE then
    return (string_end(text, first))
  elseif c == LBRACE or c == LBRACKET then
    return container_end(text, first)
  end
  return scalar_end(text, first)
end

-- The members the walk looks for, by the length of their plain spelling (other keys cost no string).
local WANTED_LENGTHS = { [5] = true, [6] = true, [13] = true, [14] = true }
-- The longest spelling of a wanted name: every letter of `stream_options` as a `\uXXXX` escape, plus quotes.
local LONGEST_WANTED_KEY = 86

--- The name of the member whose quotes are at `first` and `last` if it may be one the walk wants (nil when it
--- cannot be, by its length), however it is spelled.
local function member_name(text, first, last, escaped)
  if not escaped then
    return WANTED_LENGTHS[last - first - 1] and sub(text, first + 1, last - 1) or nil
  elseif last - first + 1 > LONGEST_WANTED_KEY then
    return nil
  end
  local name = decode_json_string(sub(text, first, last))
  if not name then
    refuse(BAD_ESCAPE)
  end
  return name
end

--- The members named in `wanted` of the object opening at `open`, as name -> {first, last} of their value
--- tokens, and the position of the object's closing brace. Nested values are skipped whole, so nested members
--- and text in strings never count. A wanted name given twice is refused: Envoy routed on the last `model`, a
--- provider may read the first.
local function object_members(text, open, wanted)
  local found = {}
  local position = skip_space(text, open + 1)
  if position and byte(text, position) == RBRACE then
    return found, position
  end
  while true do
    if not position or byte(text, position) ~= QUOTE then
      unexpected(position)
    end
    local key_last, escaped = string_end(text, position)
    local name = member_name(text, position, key_last, escaped)
    position = skip_space(text, key_last + 1)
    if not position or byte(text, position) ~= COLON then
      unexpected(position)
    end
    position = skip_space(text, position + 1)
    if not position then
      unexpected(nil)
    end
    local last = value_end(text, position)
    if name and wanted[name] then
      if found[name] then
        refuse(wanted[name])
      end
      found[name] = { position, last }
    end
    position = skip_space(text, last + 1)
    local c = position and byte(text, position)
    if c == RBRACE then
      return found, position
    elseif c ~= COMMA then
      unexpected(position)
    end
    position = skip_space(text, position + 1)
  end
end

local TOP_LEVEL = {
  model = DUPLICATE_MODEL,
  stream = 'The request body has more than one top-level "stream" member.',
  stream_options = 'The request body has more than one top-level "stream_options" member.',
}

--- The top-level members the rewrite cares about (see TOP_LEVEL) and the position of the opening brace.
local function top_level_members(body)
  start_scan()
  local open = skip_space(body, 1)
  if not open or byte(body, open) ~= LBRACE then
    refuse(NOT_OBJECT)
  end
  local found, close = object_members(body, open, TOP_LEVEL)
  if skip_space(body, close + 1) then
    unexpected(skip_space(body, close + 1))
  end
  return found, open
end

local DUPLICATE_INCLUDE_USAGE = 'The request body\'s "stream_options" has more than one "include_usage" member.'
local INCLUDE_USAGE = { include_usage = DUPLICATE_INCLUDE_USAGE }

--- The edit that makes a streamed request ask for its usage, as {first, last, text} (bytes first..last become
--- text; last = first - 1 inserts), or nil: the body does not stream, already asks, or has a `stream_options`
--- that is neither an object nor null (the provider answers that one).
local function usage_edit(body, members, open)
  local stream = members.stream
  if not stream or sub(body, stream[1], stream[2]) ~= "true" then
    return nil
  end
  local options = members.stream_options
  if not options then
    return { open + 1, open, '"stream_options":{"include_usage":true},' }
  end
  local first, last = options[1], options[2]
  if sub(body, first, last) == "null" then
    return { first, last, '{"include_usage":true}' }
  elseif byte(body, first) ~= LBRACE then
    return nil
  end
  start_scan() -- the walk goes back to an earlier position: forget the cached ones
  local inner, close = object_members(body, first, INCLUDE_USAGE)
  local include = inner.include_usage
  if include then
    return sub(body, include[1], include[2]) ~= "true" and { include[1], include[2], "true" } or nil
  end
  local empty = close == skip_space(body, first + 1)
  return { first + 1, first, empty and '"include_usage":true' or '"include_usage":true,' }
end

--- The body with its edits applied, last first so that earlier positions stay valid.
local function apply_edits(body, edits)
  table.sort(edits, function(a, b)
    return a[1] > b[1]
  end)
  for i = 1, #edits do
    local edit = edits[i]
    body = sub(body, 1, edit[1] - 1) .. edit[3] .. sub(body, edit[2] + 1)
  end
  return body
end

--- The rewritten body: top-level `model` value token replaced by `literal` (nil: kept), and with `usage`, a
--- streamed request asking for its usage. Every other byte is untouched.
local function edit_body(body, literal, usage)
  local members, open = top_level_members(body)
  local edits = {}
  if literal then
    local model = members.model
    if not model then
      refuse(NO_MODEL)
    elseif byte(body, model[1]) ~= QUOTE then
      refuse(MODEL_NOT_STRING)
    end
    if sub(body, model[1], model[2]) ~= literal then
      edits[1] = { model[1], model[2], literal }
    end
  end
  local edit = usage and usage_edit(body, members, open)
  if edit then
    edits[#edits + 1] = edit
  end
  return #edits == 0 and body or apply_edits(body, edits)
end

--- `edit_body` for the attempt: the very same string when nothing changes; nil and a message for the client
--- when the body cannot be rewritten exactly.
local function rewritten_body(body, literal, usage)
  local ok, result = pcall(edit_body, body, literal, usage)
  if not ok then
    if getmetatable(result) == Refusal then
      return nil, result.message
    end
    error(result, 0)
  end
  return result
end

--- The body with its top-level `model` value token replaced by `literal`, every other byte untouched.
local function splice_model(body, literal)
  return rewritten_body(body, literal, false)
end

------------------------------------------------------------------------------------------------------------
-- The blob
------------------------------------------------------------------------------------------------------------

local function hex_byte(hex)
  return char(tonumber(hex, 16))
end

--- Decoded `%XX` text, or nil if a `%` does not start such an escape.
local function percent_decode(text)
  if find((gsub(text, "%%%x%x", "")), "%", 1, true) then
    return nil
  end
  return (gsub(text, "%%(%x%x)", hex_byte))
end

--- Lower-cased, trimmed, non-empty header names of a comma-separated list.
local function header_list(value)
  local names = {}
  for item in gmatch(value, "[^,]+") do
    local name = match(item, "^%s*(.-)%s*$")
    if name ~= "" then
      names[#names + 1] = lower(name)
    end
  end
  return names
end

--- Whether a value can go into a header as it is (no control bytes: Envoy would reject or mangle it).
local function is_header_value(value)
  return not find(value, "[%z\1-\31\127]")
end

--- Stores one decoded blob member in the plan; returns what is wrong with it, if anything.
local function add_member(plan, name, value)
  local kind, argument = match(name, "^(%a+)%.(.+)$")
  if name ~= "model" and not is_header_value(value) then
    return name .. " has control characters"
  elseif kind == "path" then
    if byte(value, 1) ~= 47 then -- `/`
      return name .. " is not a path"
    end
    plan.paths[argument] = value
  elseif kind == "set" then
    plan.set_names[#plan.set_names + 1] = lower(argument)
    plan.set_values[#plan.set_values + 1] = value
  elseif kind == "translate" then
    plan.translate[argument] = value
  elseif kind == "rules" then
    plan.rules[argument] = value
  elseif name == "remove" then
    plan.remove = header_list(value)
  elseif name == "model" then
    if not is_string_literal(value) then
      return "model is not one JSON string literal"
    end
    plan.model = value
  elseif name == "length" and value == "1" then
    plan.length = true
  elseif name == "usage" and value == "1" then
    plan.usage = true
  else
    return "unexpected member " .. name
  end
end

--- The rewrite plan of a blob, or nil and why not. Strict: this script and the blob come from the same
--- control plane, so anything unknown is a bug that must not turn into a half-rewritten request.
local function parse_blob(blob)
  -- quote(safe="") leaves only these bytes; anything else (e.g. the `,` of two joined headers) is foreign.
  if blob == "" or find(blob, "[^A-Za-z0-9_.~%%&=-]") then
    return nil, "unexpected characters"
  end
  local plan = {
    paths = {}, translate = {}, rules = {}, set_names = {}, set_values = {}, remove = {}, length = false,
    usage = false,
  }
  local seen = {}
  for pair in gmatch(blob .. "&", "([^&]*)&") do
    local raw_name, raw_value = match(pair, "^([^=]+)=(.*)$")
    local name = raw_name and percent_decode(raw_name)
    local value = raw_value and percent_decode(raw_value)
    if not name or not value then
      return nil, "malformed member " .. pair
    elseif seen[name] then
      return nil, "duplicate member " .. name
    end
    seen[name] = true
    local problem = add_member(plan, name, value)
    if problem then
      return nil, problem
    end
  end
  return plan
end

local plans, plan_count = {}, 0

--- The cached plan of a blob (parsed on first sight), or nil and why not.
local function plan_for(blob)
  local plan = plans[blob]
  if plan then
    return plan
  end
  local parsed, problem = parse_blob(blob)
  if not parsed then
    return nil, problem
  end
  if plan_count >= CACHE_LIMIT then
    plans, plan_count = {}, 0
  end
  plans[blob], plan_count = parsed, plan_count + 1
  return parsed
end

------------------------------------------------------------------------------------------------------------
-- The attempt
------------------------------------------------------------------------------------------------------------

--- The client endpoint of a route named `<endpoint>:<client model>`.
local function endpoint_of(route_name)
  local colon = find(route_name, ROUTE_NAME_SEPARATOR, 1, true)
  return colon and sub(route_name, 1, colon - 1) or route_name
end

--- One of the ext_proc markers with `value`, the others removed.
local function mark(headers, marker, value)
  for _, name in ipairs({ TRANSLATE_HEADER, TRANSLATE_STREAM_HEADER, RULES_HEADER }) do
    if name == marker then
      headers:replace(name, value)
    else
      headers:remove(name)
    end
  end
end

--- Path, credentials, and the ext_proc marker: every header any attempt may touch, set or removed.
--- Removals go first, so a header both removed and set ends up set.
local function rewrite_headers(headers, plan, path, marker, value)
  headers:replace(":path", path)
  local remove = plan.remove
  for i = 1, #remove do
    headers:remove(remove[i])
  end
  local names, values = plan.set_names, plan.set_values
  for i = 1, #names do
    headers:replace(names[i], values[i])
  end
  mark(headers, marker, value)
end

--- Whether the client asked for a stream: `json_to_metadata` lifted the body's `stream` into the request's
--- metadata, so requests that do not stream never have their body read for it.
local function streams(handle)
  local metadata = handle:streamInfo():dynamicMetadata():get(METADATA_NAMESPACE)
  return metadata ~= nil and metadata[STREAM_KEY] == true
end

--- The body's model, a streamed request's usage, and a content-length that matches the body sent. Returns a
--- status and message to answer the client with instead, or nothing.
local function rewrite_body(handle, plan, usage)
  local body = handle:body() -- yields until the whole body is there; earlier wrappers are dead after it
  if not body then
    return
  end
  local size = body:length()
  if plan.model or usage then
    local original = body:getBytes(0, size)
    local rewritten, problem = rewritten_body(original, plan.model, usage)
    if not rewritten then
      return 400, problem
    end
    if rewritten ~= original then
      body:setBytes(rewritten) -- Envoy sets content-length itself
      return
    end
  end
  local headers = handle:headers()
  if headers:get("content-length") then
    headers:replace("content-length", format("%d", size))
  end
end

--- The whole rewrite of one attempt. Returns a status and message to answer the client with, or nothing.
local function rewrite_attempt(handle)
  local headers = handle:headers()
  local blob = headers:get(REWRITE_HEADER)
  headers:remove(REWRITE_HEADER)
  if not blob or blob == "" or blob == "-" then
    return 503, NO_REWRITE
  end
  local plan = plan_for(blob)
  if not plan then
    return 503, BAD_REWRITE
  end
  local endpoint = endpoint_of(handle:streamInfo():routeName() or "")
  local path = plan.paths[endpoint]
  if not path then
    return 503, "Switchyard has no rewrite for this target: it cannot serve " .. endpoint .. " calls."
  end
  -- Which ext_proc filter gets the attempt: a stream's answer goes to it chunk by chunk, a whole answer in one
  -- message, a same-API attempt with body rules only never.
  local translate, rules = plan.translate[endpoint], plan.rules[endpoint]
  local marker, value = nil, translate or rules
  if translate then
    marker = streams(handle) and TRANSLATE_STREAM_HEADER or TRANSLATE_HEADER
  elseif rules then
    marker = RULES_HEADER
  end
  rewrite_headers(headers, plan, path, marker, value)
  if marker then
    return -- the attempt's body and length are the ext_proc's
  end
  local usage = plan.usage and streams(handle)
  if not (plan.model or plan.length or usage) then
    return
  end
  return rewrite_body(handle, plan, usage)
end

local function log_error(handle, message)
  pcall(handle.logErr, handle, "switchyard attempt rewrite failed: " .. tostring(message))
end

--- Envoy's entry point, called once per attempt. Never lets a request continue half rewritten: a failure
--- answers 500 (pcall is yieldable in LuaJIT, so handle:body() may yield inside it).
function envoy_on_request(handle)
  local ok, status, message = pcall(rewrite_attempt, handle)
  if not ok then
    log_error(handle, status)
    status, message = 500, FAILED
  end
  if status then
    handle:respond({ [":status"] = tostring(status), ["content-type"] = TEXT_PLAIN }, message)
  end
end

--- Envoy's entry point for the attempt's answer. A failed answer (4xx, 5xx) whose declared length is small is
--- read whole before the router sees its headers. Why: when the router retries an attempt on its status, it
--- resets the attempt unless the answer has already ended, and on HTTP/1 a reset closes the connection. So every
--- failover cost the failing target's next request a new connection (and, to a real provider, a TLS handshake):
--- measured on loopback, D's p50 2.2-2.6 ms with the connection closed each time, 0.9 ms with it kept. Read
--- whole, the answer has ended on the wire and its connection goes back to the pool before the reset. Only a
--- declared, small length is waited for, so a slow or endless error body never holds the failover back.
function envoy_on_response(handle)
  local headers = handle:headers()
  local status = headers:get(":status")
  if status and status >= "400" then
    local length = tonumber(headers:get("content-length"))
    if length and length <= FAILED_ANSWER_LIMIT then
      handle:body()
    end
  end
end

-- The pure pieces, for tests: the script is loaded as one chunk (as Envoy does), so they are reached here.
switchyard_attempt_rewrite = {
  parse_blob = parse_blob,
  plan_for = plan_for,
  splice_model = splice_model,
  rewritten_body = rewritten_body,
  decode_json_string = decode_json_string,
  endpoint_of = endpoint_of,
  cached_plans = function()
    return plan_count
  end,
  CACHE_LIMIT = CACHE_LIMIT,
  FAILED_ANSWER_LIMIT = FAILED_ANSWER_LIMIT,
}
