-- ---- the clock -----------------------------------------------------------------------------------
-- The script's one reading of the time: Redis' own clock (TIME) in epoch ms, so client clocks
-- never matter. Every absolute expiry the script gives Redis is a due plus expiryShiftMs (0
-- here). The exact-clock test adapter (@sluice/store-redis/testing) supplies its own clock module.
local time = call('TIME')
local now = tonumber(time[1]) * 1000 + floor(tonumber(time[2]) / 1000)
local expiryShiftMs = 0
