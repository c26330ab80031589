#ifndef RT_REVOKE_H
#define RT_REVOKE_H

/*
 * The revocation table: digests of revoked token ids (jti) and the time
 * each revocation ends, in the shared-memory registry.  One writer (the
 * master); readers (workers, at every handshake and auth) take no lock:
 * a sequence counter, odd while the writer changes the table, tells a
 * reader to look again.  Open addressing with linear probing over
 * rt_slots (a power of two, at least twice rt_max), tombstones for
 * removed entries, rebuilt in place when tombstones pile up.  Pure: the
 * caller gives the memory and the time.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RVK_DIGEST	16	/* bytes: the first 16 of SHA-256(jti) */

struct rvk_entry {
	uint8_t		 re_digest[RVK_DIGEST];
	int64_t		 re_until;	/* Unix s; 0 empty, -1 a tombstone */
	uint32_t	 re_gen;	/* the sync generation that last set it */
	uint32_t	 re_pad;
};

struct rvk_table {
	_Atomic uint64_t rt_seq;	/* odd while the writer is at work */
	uint32_t	 rt_slots;
	uint32_t	 rt_max;	/* entries the table takes */
	uint32_t	 rt_used;	/* live entries (expired ones until swept) */
	uint32_t	 rt_tombs;
	uint32_t	 rt_gen;
	uint32_t	 rt_pad;
	_Atomic int64_t	 rt_full;	/* adds refused: the table was full */
	_Atomic int64_t	 rt_count;	/* rt_used, for readers */
	struct rvk_entry rt_e[];
};

/* Bytes a table of max entries needs (max >= 1). */
size_t	rvk_size(uint32_t max);
/* Make an empty table in mem (rvk_size(max) bytes, any contents). */
void	rvk_init(struct rvk_table *t, uint32_t max);
/* The digest of a jti. */
void	rvk_digest(const char *jti, size_t len, uint8_t out[RVK_DIGEST]);

/*
 * Writer side (one process).  Add or update a revocation (until > now);
 * 0, or -1 when the table is full even after dropping expired entries
 * (counted in rt_full).  An update sets the new until and generation.
 */
int	rvk_add(struct rvk_table *t, const uint8_t d[RVK_DIGEST], int64_t until,
	    int64_t now);
/* Remove one; 1 if it was there, else 0. */
int	rvk_del(struct rvk_table *t, const uint8_t d[RVK_DIGEST]);
/* Drop the entries whose until has passed; how many. */
uint32_t rvk_expire(struct rvk_table *t, int64_t now);
/*
 * A full replace, for a writer that holds the whole list (the daemon reads
 * Redis additively instead, see bridge_ctl.c): rvk_sync_begin() starts a
 * new generation,
 * the rvk_add()s that follow carry it, and rvk_sync_end() drops every
 * entry an earlier generation set; how many it dropped.
 */
void	rvk_sync_begin(struct rvk_table *t);
uint32_t rvk_sync_end(struct rvk_table *t);

/*
 * Reader side (any process, no lock): 1 if d is revoked at now (an entry
 * with until > now), else 0.
 */
int	rvk_revoked(const struct rvk_table *t, const uint8_t d[RVK_DIGEST], int64_t now);
/* Live entries (a reader's view). */
int64_t	rvk_count(const struct rvk_table *t);

#endif
