/*
 * Cluster positions: the Redis function library and the parsers of its
 * envelopes and answers.  See cluster.h.  Pure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realtimed.h"
#include "channel.h"
#include "cluster.h"

/*
 * The library after its namespace table NS: { history, history_ttl (ms),
 * parts... } in the table's order, each part {'l', literal}, {'s'} or
 * {'c', term}, matched as chan_shape() does.  Keys and envelopes: see
 * cluster.h.  A channel's keys expire a day (or its history_ttl, when
 * longer) after its last event.
 */
static const char cluster_lua_body[] =
	"local KEEP_MS = 86400000\n"
	"local B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'\n"
	"\n"
	"local function fail(msg)\n"
	"  error({err = 'ERR realtimed: ' .. msg})\n"
	"end\n"
	"\n"
	"local function shape(p, name)\n"
	"  local pos, len = 1, #name\n"
	"  for i = 3, #p do\n"
	"    local part = p[i]\n"
	"    if part[1] == 'l' then\n"
	"      local s = part[2]\n"
	"      if string.sub(name, pos, pos + #s - 1) ~= s then return false end\n"
	"      pos = pos + #s\n"
	"    elseif part[1] == 's' then\n"
	"      if pos > len then return false end\n"
	"      pos = len + 1\n"
	"    else\n"
	"      if pos > len then return false end\n"
	"      local stop = len + 1\n"
	"      if part[2] ~= '' then\n"
	"        stop = string.find(name, part[2], pos, true)\n"
	"        if stop == nil then return false end\n"
	"      end\n"
	"      if stop == pos then return false end\n"
	"      pos = stop\n"
	"    end\n"
	"  end\n"
	"  return pos == len + 1\n"
	"end\n"
	"\n"
	"-- the history and history_ttl (ms) of a channel's namespace; 0, 0: none\n"
	"local function history_of(name)\n"
	"  for _, p in ipairs(NS) do\n"
	"    if shape(p, name) then return p[1], p[2] end\n"
	"  end\n"
	"  return 0, 0\n"
	"end\n"
	"\n"
	"local function channel_of(keys)\n"
	"  if #keys ~= 1 then fail('one key: the channel') end\n"
	"  local ch = keys[1]\n"
	"  if #ch == 0 or #ch > 200 or string.find(ch, '[^%w_.:@%-]') then\n"
	"    fail('invalid channel name')\n"
	"  end\n"
	"  return ch\n"
	"end\n"
	"\n"
	"-- integers as digits (tostring() writes 1e+14)\n"
	"local function int(n)\n"
	"  return string.format('%d', n)\n"
	"end\n"
	"\n"
	"local function now_ms()\n"
	"  local t = redis.call('TIME')\n"
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"end\n"
	"\n"
	"-- a new epoch: never one the channel had before (the clock, in us)\n"
	"local function new_epoch()\n"
	"  local t = redis.call('TIME')\n"
	"  local v = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"  local s = ''\n"
	"  repeat\n"
	"    local d = v % 62\n"
	"    s = string.sub(B62, d + 1, d + 1) .. s\n"
	"    v = math.floor(v / 62)\n"
	"  until v == 0\n"
	"  return 'c' .. s\n"
	"end\n"
	"\n"
	"local function keys_of(ch)\n"
	"  return 'realtimed:{' .. ch .. '}:m', 'realtimed:{' .. ch .. '}:h'\n"
	"end\n"
	"\n"
	"local function publish(keys, args)\n"
	"  local ch = channel_of(keys)\n"
	"  if #args ~= 1 then fail('one argument: the payload') end\n"
	"  local data = args[1]\n"
	"  local n, ttl = history_of(ch)\n"
	"  if n == 0 then\n"
	"    return 0, redis.call('PUBLISH', ch, data)\n"
	"  end\n"
	"  local m, h = keys_of(ch)\n"
	"  local e = redis.call('HGET', m, 'e')\n"
	"  if not e then\n"
	"    -- a history begins (or Redis lost the last one): a new epoch\n"
	"    e = new_epoch()\n"
	"    redis.call('DEL', h)\n"
	"    redis.call('HSET', m, 'e', e, 'o', 0)\n"
	"  end\n"
	"  local off = redis.call('HINCRBY', m, 'o', 1)\n"
	"  local t = now_ms()\n"
	"  redis.call('XADD', h, 'MAXLEN', n, int(off) .. '-1', 't', int(t), 'd', data)\n"
	"  local keep = ttl > KEEP_MS and ttl or KEEP_MS\n"
	"  redis.call('PEXPIRE', m, keep)\n"
	"  redis.call('PEXPIRE', h, keep)\n"
	"  local r = redis.call('PUBLISH', 'realtimed:e:{' .. ch .. '}',\n"
	"    e .. ' ' .. int(off) .. ' ' .. int(t) .. '\\n' .. data)\n"
	"  return off, r\n"
	"end\n"
	"\n"
	"redis.register_function('realtimed_publish', function(keys, args)\n"
	"  local off = publish(keys, args)\n"
	"  return off\n"
	"end)\n"
	"\n"
	"redis.register_function('realtimed_publish_count', function(keys, args)\n"
	"  local off, r = publish(keys, args)\n"
	"  return {off, r}\n"
	"end)\n"
	"\n"
	"-- A bridge asks where a channel is (and, with an epoch, for what follows\n"
	"-- since); the answer goes out on its reply channel, after every event\n"
	"-- published before it.\n"
	"redis.register_function('realtimed_read', function(keys, args)\n"
	"  local ch = channel_of(keys)\n"
	"  if #args ~= 5 then fail('realtimed_read: five arguments') end\n"
	"  local reply, tag, want = args[1], args[2], args[3]\n"
	"  local since, max = tonumber(args[4]), tonumber(args[5])\n"
	"  if since == nil or max == nil then fail('realtimed_read: bad numbers') end\n"
	"  local m, h = keys_of(ch)\n"
	"  local e = redis.call('HGET', m, 'e')\n"
	"  if not e then\n"
	"    redis.call('PUBLISH', reply, tag .. ' N - 0\\n')\n"
	"    return 0\n"
	"  end\n"
	"  local o = tonumber(redis.call('HGET', m, 'o'))\n"
	"  local head = e .. ' ' .. int(o) .. '\\n'\n"
	"  if want == '' then\n"
	"    redis.call('PUBLISH', reply, tag .. ' P ' .. head)\n"
	"    return 1\n"
	"  end\n"
	"  if want ~= e or since > o then\n"
	"    redis.call('PUBLISH', reply, tag .. ' U ' .. head)\n"
	"    return 1\n"
	"  end\n"
	"  if since == o then\n"
	"    redis.call('PUBLISH', reply, tag .. ' R ' .. head)\n"
	"    return 1\n"
	"  end\n"
	"  local n, ttl = history_of(ch)\n"
	"  local ents = redis.call('XRANGE', h, int(since + 1) .. '-1', '+')\n"
	"  if #ents ~= o - since or ents[1][1] ~= int(since + 1) .. '-1' or\n"
	"      (ttl > 0 and tonumber(ents[1][2][2]) < now_ms() - ttl) then\n"
	"    redis.call('PUBLISH', reply, tag .. ' U ' .. head)\n"
	"    return 1\n"
	"  end\n"
	"  local out, bytes = {tag .. ' R ' .. head}, 0\n"
	"  for i, ent in ipairs(ents) do\n"
	"    local d = ent[2][4]\n"
	"    bytes = bytes + #d\n"
	"    if bytes > max then\n"
	"      redis.call('PUBLISH', reply, tag .. ' B ' .. head)\n"
	"      return 1\n"
	"    end\n"
	"    out[#out + 1] = int(since + i) .. ' ' .. ent[2][2] .. ' ' .. #d .. '\\n' .. d\n"
	"  end\n"
	"  redis.call('PUBLISH', reply, table.concat(out))\n"
	"  return 1\n"
	"end)\n";

/* A Lua string literal of s: every byte but [A-Za-z0-9_.:@-] escaped. */
static void
cluster_lua_string(FILE *f, const char *s, size_t len)
{
	size_t	 i;

	fputc('\'', f);
	for (i = 0; i < len; i++)
		if (chan_name_valid(s + i, 1))
			fputc(s[i], f);
		else
			fprintf(f, "\\%03u", (unsigned char)s[i]);
	fputc('\'', f);
}

static void
cluster_lua_part(int kind, const char *s, size_t len, char term, void *arg)
{
	FILE	*f = arg;

	switch (kind) {
	case 'l':
		fputs(", {'l', ", f);
		cluster_lua_string(f, s, len);
		fputc('}', f);
		break;
	case 's':
		fputs(", {'s'}", f);
		break;
	default:
		fputs(", {'c', ", f);
		cluster_lua_string(f, &term, term == '\0' ? 0 : 1);
		fputc('}', f);
		break;
	}
}

char *
cluster_library(const struct chan_table *t, const char *version)
{
	const struct chan_ns	*ns;
	FILE			*f;
	char			*buf = NULL;
	size_t			 len = 0;
	int			 i;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fprintf(f, "#!lua name=realtimed\n"
	    "-- realtimed %s: cluster positions (PROTOCOL.md \"Positions and recovery\").\n"
	    "-- FCALL realtimed_publish 1 CHANNEL PAYLOAD returns the event's offset.\n"
	    "-- Made from the namespaces of the node that loaded it last: nodes that\n"
	    "-- share a Redis should share their namespace lines.\n"
	    "local NS = {\n", version);
	for (i = 0; (ns = chan_table_ns(t, i)) != NULL; i++) {
		fprintf(f, "  {%d, %lld", ns->ns_history, (long long)ns->ns_history_ttl);
		chan_ns_shape(ns, cluster_lua_part, f);
		fputs("},\n", f);
	}
	fputs("}\n", f);
	fputs(cluster_lua_body, f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- parsing ------------------------------------------------------------- */

int
cluster_epoch_is(const char *epoch)
{
	size_t	 i, n = strlen(epoch);

	if (n == 0 || n > HIST_EPOCH_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((epoch[i] >= '0' && epoch[i] <= '9') || (epoch[i] >= 'a' &&
		    epoch[i] <= 'z') || (epoch[i] >= 'A' && epoch[i] <= 'Z')))
			return 0;
	return 1;
}

/*
 * A decimal number ended by end at *pp (at most *left bytes): 0 and *v,
 * past the end character; -1 when not one (empty, not digits, too big).
 */
static int
cluster_number(const char **pp, size_t *left, char end, uint64_t *v)
{
	const char	*p = *pp;
	size_t		 i;
	uint64_t	 n = 0;

	for (i = 0; i < *left && p[i] != end; i++) {
		if (p[i] < '0' || p[i] > '9' || i >= 19)
			return -1;
		n = n * 10 + (uint64_t)(p[i] - '0');
	}
	if (i == 0 || i == *left)
		return -1;
	*v = n;
	*pp = p + i + 1;
	*left -= i + 1;
	return 0;
}

/* An epoch ended by a space: 0, or -1. */
static int
cluster_epoch(const char **pp, size_t *left, char *out)
{
	const char	*p = *pp, *sp;
	size_t		 n;

	if ((sp = memchr(p, ' ', *left)) == NULL || (n = (size_t)(sp - p)) > HIST_EPOCH_MAX ||
	    memchr(p, '\0', n) != NULL)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	*pp = sp + 1;
	*left -= n + 1;
	return 0;
}

int
cluster_envelope_parse(const char *rch, size_t rchlen, const char *msg, size_t len,
    struct cluster_event *ev)
{
	size_t	 plen = sizeof(CLUSTER_ENV_PREFIX) - 1;

	if (rchlen < plen + 2 || memcmp(rch, CLUSTER_ENV_PREFIX, plen) != 0 ||
	    rch[rchlen - 1] != '}')
		return -1;
	ev->ce_channel = rch + plen;
	ev->ce_chlen = rchlen - plen - 1;
	if (!chan_name_valid(ev->ce_channel, ev->ce_chlen))
		return -1;
	if (cluster_epoch(&msg, &len, ev->ce_epoch) == -1 || !cluster_epoch_is(ev->ce_epoch) ||
	    cluster_number(&msg, &len, ' ', &ev->ce_offset) == -1 || ev->ce_offset == 0)
		return -1;
	/* the payload may be empty: the head's newline is then the last byte */
	if (cluster_number(&msg, &len, '\n', &ev->ce_at) == -1)
		return -1;
	ev->ce_data = msg;
	ev->ce_len = len;
	return 0;
}

int
cluster_answer_parse(const char *msg, size_t len, struct cluster_answer *a)
{
	uint64_t	 tag;

	if (cluster_number(&msg, &len, ' ', &tag) == -1 || tag > UINT32_MAX || len < 2 ||
	    msg[1] != ' ')
		return -1;
	a->ca_tag = (uint32_t)tag;
	a->ca_status = msg[0];
	msg += 2;
	len -= 2;
	if (cluster_epoch(&msg, &len, a->ca_epoch) == -1 ||
	    cluster_number(&msg, &len, '\n', &a->ca_offset) == -1)
		return -1;
	switch (a->ca_status) {
	case CLUSTER_NONE:
		if (strcmp(a->ca_epoch, "-") != 0)
			return -1;
		a->ca_epoch[0] = '\0';
		break;
	case CLUSTER_POSITION:
	case CLUSTER_RECOVERED:
	case CLUSTER_UNRECOVERED:
	case CLUSTER_TOO_LARGE:
		if (!cluster_epoch_is(a->ca_epoch))
			return -1;
		break;
	default:
		return -1;
	}
	if (a->ca_status != CLUSTER_RECOVERED && len != 0)
		return -1;
	a->ca_next = msg;
	a->ca_left = len;
	return 0;
}

int
cluster_answer_next(struct cluster_answer *a, struct cluster_event *ev)
{
	uint64_t	 n;

	if (a->ca_left == 0)
		return 0;
	if (cluster_number(&a->ca_next, &a->ca_left, ' ', &ev->ce_offset) == -1 ||
	    cluster_number(&a->ca_next, &a->ca_left, ' ', &ev->ce_at) == -1 ||
	    cluster_number(&a->ca_next, &a->ca_left, '\n', &n) == -1 || n > a->ca_left)
		return -1;
	ev->ce_channel = NULL;
	ev->ce_chlen = 0;
	snprintf(ev->ce_epoch, sizeof(ev->ce_epoch), "%s", a->ca_epoch);
	ev->ce_data = a->ca_next;
	ev->ce_len = (size_t)n;
	a->ca_next += n;
	a->ca_left -= (size_t)n;
	return 1;
}
