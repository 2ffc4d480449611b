-- pipeline.lua - send DEPTH requests per write, as TechEmpower's pipeline.lua.
--
--   wrk ... -s pipeline.lua URL -- 16
--
-- wrk counts responses, so "N requests" and "Requests/sec" are responses.

init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
