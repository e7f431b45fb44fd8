-- wrk: each request takes one line of the file $LINES (the lines split
-- between wrk's $THREADS threads) and, but for refreshes, comes from an
-- address of its own (X-Forwarded-For; the server trusts the loopback proxy).
--   MODE=verify   lines "email_key code", posted to /v1/auth/verify, each once;
--   MODE=refresh  refresh tokens, posted to /v1/auth/refresh. The token each
--                 answer hands back joins the queue: a rotated token is
--                 followed by its successor (with rotation off, the same
--                 token comes back);
--   MODE=client   lines "api_key api_secret" of machine clients, posted to
--                 /v1/clients/auth/login in turn, over and over.
-- A thread that runs dry sends an empty key, which counts as a non-2xx
-- answer: bench/run.py refuses a run with any.
local count = 0
function setup(thread)
   thread:set("id", count)
   count = count + 1
end

local paths = { verify = "/v1/auth/verify", refresh = "/v1/auth/refresh", client = "/v1/clients/auth/login" }

function init(args)
   local threads = tonumber(os.getenv("THREADS"))
   mode = os.getenv("MODE")
   path = paths[mode]
   queue, head, tail = {}, 1, 0
   local i = 0
   for line in io.lines(os.getenv("LINES")) do
      if i % threads == id then
         tail = tail + 1
         queue[tail] = line
      end
      i = i + 1
   end
   sent = 0
end

function request()
   local item = ""
   if head <= tail then
      item = queue[head]
      queue[head] = nil
      head = head + 1
   end
   local body
   if mode == "verify" then
      local key, code = item:match("(%S+) (%S+)")
      body = string.format('{"email_key":"%s","verification_code":"%s"}', key or "", code or "")
   elseif mode == "client" then
      local key, secret = item:match("(%S+) (%S+)")
      body = string.format('{"username":"%s","password":"%s"}', key or "", secret or "")
      tail = tail + 1
      queue[tail] = item
   else
      body = string.format('{"refresh_token":"%s"}', item)
   end
   -- A device keeps its address from one refresh to the next; logins come from everywhere.
   sent = mode == "refresh" and 1 or sent + 1
   local headers = {
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = string.format("10.%d.%d.%d", id, math.floor(sent / 256) % 256, sent % 256),
   }
   return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
   if mode == "refresh" then
      local token = body:match('"refresh_token":"([^"]+)"')
      if token then
         tail = tail + 1
         queue[tail] = token
      end
   end
end
