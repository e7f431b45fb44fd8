-- wrk: POSTs the JSON in $BODY to the URL's path, each request from an
-- address of its own (X-Forwarded-For; the server trusts the loopback
-- proxy), as traffic from many clients would come.
wrk.method = "POST"
wrk.body = os.getenv("BODY")

local count = 0
function setup(thread)
   thread:set("id", count)
   count = count + 1
end

local sent = 0
function request()
   sent = sent + 1
   local address = string.format("10.%d.%d.%d", id, math.floor(sent / 256) % 256, sent % 256)
   -- Headers given to wrk.format replace wrk.headers: all of them are here.
   local headers = { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = address }
   return wrk.format(nil, nil, headers, nil)
end
