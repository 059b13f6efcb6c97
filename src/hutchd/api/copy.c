/* POST /sandboxes/{id}/copy?times=N: a memory snapshot of the running sandbox, then N sandboxes
 * restored from it. The request is held until all N settled (200), some failed (422, same
 * body), or the client's bound elapsed (504, same body with "timeout" entries). The snapshot
 * is deleted once every copy has restored from it. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

#define MAX_COPIES 16

struct api_copy_job {
	struct api *api;
	struct http_request *req;
	char ns[64];
	char src[32];
	char snap[32];
	int times;
	int created;
	char ids[MAX_COPIES][32];
	uv_timer_t timer;
	struct api_copy_job *next;
};

static void job_closed(uv_handle_t *h)
{
	free(h->data);
}

static void job_end(struct api_copy_job *j)
{
	for (struct api_copy_job **pp = &j->api->copy_jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	if (j->req) {
		j->req->on_abort = NULL;
		j->req->data = NULL;
		j->req = NULL;
	}
	uv_timer_stop(&j->timer);
	uv_close((uv_handle_t *)&j->timer, job_closed);
}

static void job_abort(struct http_request *req)
{
	struct api_copy_job *j = req->data;
	if (j) {
		j->req = NULL;
		job_end(j);
	}
}

/* Answers with the copies' create responses; timed_out marks unsettled ones "timeout". */
static void job_answer(struct api_copy_job *j, bool timed_out, const char *error)
{
	struct api *api = j->api;
	json_t *arr = json_array();
	bool all_running = j->created == j->times;
	for (int i = 0; i < j->created; i++) {
		struct sandbox_rec r = {0};
		if (store_sandbox_get_id(api->store, j->ids[i], &r, NULL) < 0)
			continue;
		bool running = strcmp(r.status, "running") == 0;
		bool settled = running || strcmp(r.status, "terminated") == 0;
		all_running = all_running && running;
		json_array_append_new(
		        arr, api_create_response_json(api, &r, settled ? NULL : "timeout"));
		sandbox_rec_release(&r);
	}
	json_t *o = json_object();
	json_object_set_new(o, "source_sandbox_id", json_string(j->src));
	json_object_set_new(o, "sandboxes", arr);
	if (error)
		json_object_set_new(o, "error", json_string(error));
	struct http_request *req = j->req;
	j->req->on_abort = NULL;
	j->req->data = NULL;
	j->req = NULL;
	api_respond_json(req, all_running ? 200 : timed_out ? 504 : 422, o);
	/* the copies restored from it (or never will): the snapshot is no longer needed */
	struct snapshot_rec s = {0};
	if (store_snapshot_get(api->store, NULL, j->snap, &s, NULL) == 0) {
		api_snapshot_drop(api, &s, NULL);
		snapshot_rec_release(&s);
	}
	log_info("copy of %s: %d of %d running", j->src, (int)json_array_size(arr), j->times);
}

static void job_timeout(uv_timer_t *t)
{
	struct api_copy_job *j = t->data;
	job_answer(j, true, NULL);
	job_end(j);
}

/* Creates the N copies once the snapshot completed. */
static void job_create_copies(struct api_copy_job *j)
{
	struct api *api = j->api;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec src = {0};
	if (store_sandbox_get_id(api->store, j->src, &src, &err) < 0)
		return;
	for (int i = 0; i < j->times; i++) {
		struct sandbox_rec r = {0};
		char id[HUTCH_ID_LEN + 1];
		int64_t now = time_now_ms();
		id_generate(id);
		rec_set(&r.id, id);
		rec_set(&r.ns, j->ns);
		rec_set(&r.image, src.image);
		rec_set(&r.network, src.network);
		r.timeout_secs = src.timeout_secs;
		rec_set(&r.status, "pending");
		rec_set(&r.desired, "running");
		r.created_at = r.updated_at = r.last_activity_at = now;
		r.generation = 1;
		struct create_req c = {.snapshot_id = j->snap};
		if (api_snapshot_apply(api, j->ns, &c, &api->limits, &r, &err) == 0 &&
		    store_sandbox_insert(api->store, &r, &err) == 0)
			snprintf(j->ids[j->created++], sizeof(j->ids[0]), "%s", id);
		else
			log_warn("copy of %s: %s", j->src, err.msg);
		sandbox_rec_release(&r);
	}
	sandbox_rec_release(&src);
	api_desired_changed(api);
}

void api_copy_snapshot_changed(struct api *api, const char *snap_id)
{
	for (struct api_copy_job *j = api->copy_jobs, *next; j; j = next) {
		next = j->next;
		if (strcmp(j->snap, snap_id) != 0 || j->created || !j->req)
			continue;
		struct snapshot_rec s = {0};
		if (store_snapshot_get(api->store, NULL, snap_id, &s, NULL) < 0)
			continue;
		if (strcmp(s.status, "failed") == 0) {
			job_answer(j, false, s.error ? s.error : "the memory snapshot failed");
			job_end(j);
		} else if (strcmp(s.status, "completed") == 0) {
			job_create_copies(j);
			if (j->created == 0) {
				job_answer(j, false, "no copy could be created");
				job_end(j);
			}
		}
		snapshot_rec_release(&s);
	}
}

void api_copy_sandbox_changed(struct api *api, const char *id)
{
	for (struct api_copy_job *j = api->copy_jobs, *next; j; j = next) {
		next = j->next;
		bool mine = false, all_settled = j->created == j->times;
		for (int i = 0; i < j->created; i++) {
			struct sandbox_rec r = {0};
			mine = mine || strcmp(j->ids[i], id) == 0;
			if (store_sandbox_get_id(api->store, j->ids[i], &r, NULL) == 0) {
				all_settled = all_settled && (strcmp(r.status, "running") == 0 ||
				                              strcmp(r.status, "terminated") == 0);
				sandbox_rec_release(&r);
			}
		}
		if (mine && all_settled && j->req) {
			job_answer(j, false, NULL);
			job_end(j);
		}
	}
}

void api_copy_close(struct api *api)
{
	while (api->copy_jobs) {
		struct api_copy_job *j = api->copy_jobs;
		if (j->req) {
			struct http_request *req = j->req;
			j->req->on_abort = NULL;
			j->req->data = NULL;
			j->req = NULL;
			http_respond_error(req, 503, "SHUTTING_DOWN",
			                   "the server is shutting down");
		}
		job_end(j);
	}
}

void api_sandbox_copy(struct http_request *req, struct api_ctx *ctx)
{
	struct api *api = ctx->api;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	struct snapshot_rec s = {0};
	struct buf q = BUF_INIT;
	uint64_t times = 1;
	int rc = 0;
	if (http_request_query_has(req, "times") &&
	    (!http_request_query(req, "times", &q) ||
	     sv_to_u64(sv_make(q.data, q.len), MAX_COPIES, &times) < 0 || times == 0))
		rc = hutch_error_api(&err, 400, "INVALID_ARGUMENT", "times must be 1..%d",
		                     MAX_COPIES);
	buf_release(&q);
	if (rc == 0)
		rc = store_sandbox_get(api->store, ctx->ns, http_request_param(req, "id"), 0, &r,
		                       &err);
	if (rc == 0)
		rc = api_ns_room(api, ctx->ns, (int64_t)times, &err);
	if (rc == 0)
		rc = api_snapshot_begin(api, &r, "memory", &s, &err);
	if (rc < 0) {
		api_respond_err(req, &err);
		sandbox_rec_release(&r);
		return;
	}
	struct api_copy_job *j = xcalloc(1, sizeof(*j));
	j->api = api;
	j->req = req;
	j->times = (int)times;
	snprintf(j->ns, sizeof(j->ns), "%s", ctx->ns);
	snprintf(j->src, sizeof(j->src), "%s", r.id);
	snprintf(j->snap, sizeof(j->snap), "%s", s.id);
	req->data = j;
	req->on_abort = job_abort;
	uv_timer_init(api->loop, &j->timer);
	j->timer.data = j;
	/* a copy answers with the new sandboxes: ?wait=false does not apply */
	uint64_t bound = api_request_bound_ms(api, req);
	uv_timer_start(&j->timer, job_timeout, bound ? bound : (uint64_t)api->cfg->create_wait_ms,
	               0);
	j->next = api->copy_jobs;
	api->copy_jobs = j;
	sandbox_rec_release(&r);
	snapshot_rec_release(&s);
}
