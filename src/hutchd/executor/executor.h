/* The executor role's private structures, shared by executor.c (long-poll, reports,
 * reconciliation), ops.c (runtime operations on the thread pool) and snapref.c (where each
 * snapshot's data lives on this host). Everything here runs on the executor's one loop thread,
 * except the *_run work functions, which run on the thread pool and touch only their work item. */
#ifndef HUTCHD_EXECUTOR_H
#define HUTCHD_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "../config.h"
#include "base/error.h"
#include "http/client.h"
#include "net/net.h"
#include "runtime/runtime.h"

enum sb_state {
	S_NONE,    /* nothing on this host */
	S_ADOPTED, /* found at start; frozen or not is unknown until desired state says */
	S_RUNNING,
	S_FROZEN,       /* suspended in memory (freezer) */
	S_CHECKPOINTED, /* suspended to disk (CRIU): no processes, state kept */
	S_DEAD,         /* PID 1 exited; resources still to be removed */
};

enum sb_op {
	OP_CREATE,
	OP_FREEZE,
	OP_THAW,
	OP_DESTROY,
	OP_SNAPSHOT,
	OP_CHECKPOINT,
	OP_RESTORE,
	OP_NETWORK, /* attach the network or apply a changed policy */
};

struct ex;

struct ex_sandbox {
	struct ex *ex;
	char id[32];
	enum sb_state state;
	bool busy;            /* a thread-pool operation is in flight */
	const char *busy_dir; /* the snapshot/checkpoint directory that operation reads, or NULL */
	bool wanted;          /* present in the latest assignment list */
	bool reported_destroyed;
	json_t *want;          /* latest assignment (owned) */
	char reported[16];     /* last status reported */
	char snap_done[32];    /* last snapshot op carried out (not repeated) */
	uint64_t frozen_at_ms; /* monotonic, when it was frozen (durable suspend timer) */
	char *net_applied;     /* policy in force (canonical JSON, "null"); NULL = not attached */
	unsigned failures;     /* operations failed in a row (backoff) */
	uint64_t retry_at_ms;  /* monotonic: no new operation before (0 = none pending) */
	char ip[16];           /* its address, "" without a network */
	struct rt_sandbox *rt;
	uv_poll_t *poll; /* on rt->pidfd */
	struct ex_sandbox *next;
};

struct ex_work {
	uv_work_t w;
	struct ex_sandbox *sb;
	enum sb_op op;
	struct rt_spec spec;
	char **argv;
	char *image, *hostname;
	char snap_id[32], snap_type[16];
	char *dir; /* checkpoint / snapshot directory (restore source or dump target) */
	struct rt_sandbox *result;
	json_t *snap_result; /* OP_SNAPSHOT: the report for the api */
	char *policy;        /* OP_CREATE, OP_RESTORE, OP_NETWORK: the policy to apply */
	bool policy_pending; /* OP_NETWORK: it answers a PATCH (report the verdict) */
	char ip[16];         /* the address the network part gave */
	int net_status;      /* HTTP status of a network failure (400: rejected policy) */
	uint64_t queued_ns, started_ns, done_ns;
	uint64_t net_ns; /* of which connecting or disconnecting the network */
	int rc;
	struct hutch_error err;
	enum rt_exit_reason reason;
};

struct ex {
	struct hutchd_config *cfg;
	struct rt_config rt;
	uv_loop_t *loop;
	struct http_client *client;
	char *auth_header;
	struct ex_sandbox *sandboxes;
	uint64_t version;
	bool synced; /* got at least one assignment list */
	bool stopping;
	bool criu;             /* CRIU usable: memory snapshots and durable suspend */
	char criu_reason[512]; /* why not */
	unsigned poll_failures;
	uv_timer_t retry, tick, report_retry;
	uv_signal_t sigterm, sigint;
	json_t *pending_reports;   /* object id -> report, waiting to be sent */
	json_t *snapshots_deleted; /* ids whose data is gone, to tell the api */
	bool report_in_flight;
	json_t *report_sent;        /* the batch in flight (re-queued if it fails) */
	uint64_t report_backoff_ms; /* after a failed batch; 0 after a good one */
	bool refill_busy;
	char *state_dir;
	struct net_config net;
	char *net_state_dir;
	bool net_ok; /* sandbox networking works on this host */
	struct net_dns *dns;
	char resolver[16];
};

/* executor.c */
void ex_report(struct ex_sandbox *sb, const char *status, const char *outcome, const char *error,
               bool destroyed);
/* Attaches a snapshot result to sb's next report. */
void ex_report_snapshot(struct ex_sandbox *sb, json_t *snap);
/* Attaches the verdict on a pending network policy to sb's next report. */
void ex_report_network(struct ex_sandbox *sb, json_t *result);
void ex_send_reports(struct ex *ex);
void ex_kick(struct ex_sandbox *sb);
void ex_watch(struct ex_sandbox *sb);
void ex_unwatch(struct ex_sandbox *sb);
void ex_sb_remove(struct ex_sandbox *sb);
const char *ex_want_str(struct ex_sandbox *sb, const char *key);
void ex_refill_pool(struct ex *ex);

/* The policy the api wants for sb, as canonical JSON ("null" = unrestricted); malloc'd. */
char *ex_wanted_policy(struct ex_sandbox *sb, bool *ret_pending);

/* ops.c */
void ex_start_op(struct ex_sandbox *sb, enum sb_op op);
const char *ex_outcome_for(enum rt_exit_reason reason);

/* snapref.c */
/* The directory of a memory checkpoint for snapshot id (malloc'd). */
char *ex_snap_memory_dir(struct ex *ex, const char *snap_id);
/* The checkpoint directory of a durable suspend of sandbox id (malloc'd). */
char *ex_suspend_dir(struct ex *ex, const char *sandbox_id);
/* Records that snapshot id's data is at dir. */
int ex_snapref_set(struct ex *ex, const char *snap_id, const char *dir);
/* The data directory of snapshot id on this host, or NULL. */
char *ex_snapref_get(struct ex *ex, const char *snap_id);
/* Removes snapshot id's reference and its data when nothing else references it. */
/* Removes a snapshot's reference and its data (unless another reference shares it). Returns
 * false, changing nothing, while an operation is reading that data: ask again later. */
bool ex_snapref_delete(struct ex *ex, const char *snap_id);

#endif
