package redisbroker

import "github.com/redis/go-redis/v9"

// The broker's state changes in Lua scripts, each of which Redis runs
// atomically: no other client sees a topic half-way through a change.
//
// A topic's keys share a hash tag, so that a script's keys are in one
// slot of a cluster too:
//
//	PREFIX{TOPIC}:position          hash: epoch, offset (the last one given)
//	PREFIX{TOPIC}:history           stream: entry 0-OFFSET has t (type), d (payload)
//	PREFIX{TOPIC}:presence          hash: client → info
//	PREFIX{TOPIC}:presence-expiry   sorted set: client → expiry, ms of Redis's clock
//
// and its publications go out on the Pub/Sub channel PREFIX+TOPIC as
// EPOCH:OFFSET:TYPE:PAYLOAD.

// script is a Lua script with its SHA-1, by which Redis runs it once it
// has it cached.
type script struct {
	src  string
	hash string
}

func newScript(src string) script {
	return script{src: src, hash: redis.NewScript(src).Hash()}
}

// positionLua defines position(), which returns the topic's epoch
// (KEYS[1] the position hash, KEYS[2] the history, ARGV[1] a new random
// epoch).  A topic without a position starts a new epoch: a new topic,
// one whose keys expired, or one that Redis lost with its data when it
// restarted.  That is how a subscriber learns that what it has seen of
// the topic is gone.  What history is left of an older epoch goes with
// it, so that the history holds only offsets of the current one.
const positionLua = `
local function position()
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if not epoch then
    epoch = ARGV[1]
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  end
  return epoch
end
`

// publishScript gives a publication the topic's next offset, keeps it in
// the history and publishes it on the topic's channel, all at once: the
// channel carries a topic's publications in the order of their offsets,
// whichever instances they come from.
//
// ARGV: new epoch, history size, TTL in ms (0: none), type, payload,
// channel.  It returns {epoch, offset}.
var publishScript = newScript(positionLua + `
local epoch = position()
local offset = string.format('%d', redis.call('HINCRBY', KEYS[1], 'offset', 1))
local size, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, '0-' .. offset, 't', ARGV[4], 'd', ARGV[5])
else
  redis.call('DEL', KEYS[2])
end
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
redis.call('PUBLISH', ARGV[6], epoch .. ':' .. offset .. ':' .. ARGV[4] .. ':' .. ARGV[5])
return {epoch, offset}
`)

// historyScript returns the topic's position and the history after an
// offset, read together so that they agree.
//
// ARGV: new epoch, the offset after which to read.  It returns {epoch,
// offset, entries}.
var historyScript = newScript(positionLua + `
local epoch = position()
local offset = redis.call('HGET', KEYS[1], 'offset')
local entries = {}
if tonumber(ARGV[2]) < tonumber(offset) then
  entries = redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[2], '+')
end
return {epoch, offset, entries}
`)

// presenceLua defines the helpers of the presence scripts (KEYS[1] the
// presence hash, KEYS[2] its expiry times).  Expiry is reckoned by
// Redis's clock, the one clock that all instances share.
const presenceLua = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(t)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', t)
  if #gone > 0 then
    for _, client in ipairs(gone) do
      redis.call('HDEL', KEYS[1], client)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
  end
end
`

// addPresenceScript records a client's presence, unless it is to be
// unique and is present with other info, which it answers with 0.  The
// keys expire with their last client, so that the presence of a topic
// whose instances all went away does not stay behind.
//
// ARGV: client, info, TTL in ms, unique ("1" or "0").
var addPresenceScript = newScript(presenceLua + `
local t = now()
prune(t)
if ARGV[4] == '1' then
  local held = redis.call('HGET', KEYS[1], ARGV[1])
  if held and held ~= ARGV[2] then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], t + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local keep = tonumber(last[2]) - t
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return 1
`)

// removePresenceScript removes a client if it is present with the info
// given: a compare-and-delete, so that an instance never removes a claim
// that another made since.
//
// ARGV: client, info.
var removePresenceScript = newScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
`)

// presenceScript returns the clients present, as client, info, client,
// info..., after it removed those that expired.
var presenceScript = newScript(presenceLua + `
prune(now())
return redis.call('HGETALL', KEYS[1])
`)
