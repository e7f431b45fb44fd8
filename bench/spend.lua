-- wrk: each request spends one line of the file $LINES, the lines split
-- between wrk's $THREADS threads.
--   MODE=verify   lines "email_key code", posted to /v1/auth/verify;
--   MODE=refresh  refresh tokens, posted to /v1/auth/refresh. The token each
--                 answer hands back joins the queue: a rotated token is
--                 followed by its successor (with rotation off, the same
--                 token comes back).
-- A thread that runs dry sends an empty key, which counts as a non-2xx
-- answer: bench/run.py refuses a run with any.
local count = 0
function setup(thread)
   thread:set("id", count)
   count = count + 1
end

function init(args)
   local threads = tonumber(os.getenv("THREADS"))
   mode = os.getenv("MODE")
   path = mode == "verify" and "/v1/auth/verify" or "/v1/auth/refresh"
   queue, head, tail = {}, 1, 0
   local i = 0
   for line in io.lines(os.getenv("LINES")) do
      if i % threads == id then
         tail = tail + 1
         queue[tail] = line
      end
      i = i + 1
   end
   wrk.headers["Content-Type"] = "application/json"
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
   else
      body = string.format('{"refresh_token":"%s"}', item)
   end
   return wrk.format("POST", path, nil, body)
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
