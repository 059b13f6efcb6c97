/* hutchd's proxy role: runs the ingress proxy (lib/proxy) on --proxy-listen with one worker
 * thread per core (each its own loop, store connection and SO_REUSEPORT listener; traffic
 * batches shared and posted from the main thread) until SIGTERM/SIGINT, then shuts down
 * gracefully and exits. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "config.h"
#include "proxy/proxy.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define STORE_WAIT_MS 10000
#define MAX_WORKERS   16
#define DRAIN_MS      5000

struct proxy_role;

struct proxy_worker {
	struct proxy_role *role;
	uv_thread_t thread;
	uv_loop_t loop;
	uv_async_t stop;
	struct proxy *px;
	struct proxy_stats stats;
	int rc;
	char error[512];
};

struct proxy_role {
	const struct hutchd_config *cfg;
	struct proxy_config pc;
	uv_sem_t ready;
	uv_signal_t sigterm, sigint;
	struct proxy_worker *workers;
	size_t nworkers;
	bool stopping;
};

/* The api creates and migrates the database; when both roles start together the proxy may come
 * first, so it waits a little for the file (or the PostgreSQL schema). */
static int role_store_open(const char *path, struct store **ret, struct hutch_error *err)
{
	uint64_t deadline = time_mono_ms() + STORE_WAIT_MS;
	while (store_open_readonly(path, ret, err) < 0) {
		if (time_mono_ms() >= deadline)
			return -1;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void role_config(const struct hutchd_config *cfg, struct proxy_config *pc)
{
	proxy_config_defaults(pc);
	pc->domain = cfg->proxy_domain;
	pc->api_url = cfg->api_url;
	pc->node_token = cfg->node_token ? cfg->node_token : "";
	pc->node_id = cfg->node_id;
	pc->auth_none = strcmp(cfg->auth, "none") == 0;
	/* the cache watches a SQLite file; a PostgreSQL store is read on every request */
	pc->store_path = store_spec_is_postgres(cfg->store_path) ? NULL : cfg->store_path;
	pc->first_byte_timeout_ms = (uint64_t)cfg->proxy_first_byte_timeout_ms;
	pc->connect_timeout_ms = (uint64_t)cfg->proxy_connect_timeout_ms;
	pc->wake_timeout_ms = (uint64_t)cfg->proxy_wake_timeout_ms;
}

static size_t role_worker_count(const struct hutchd_config *cfg)
{
	if (strncmp(cfg->proxy_listen, "unix:", 5) == 0)
		return 1; /* SO_REUSEPORT is for TCP */
	uint64_t n =
	        cfg->proxy_workers > 0 ? (uint64_t)cfg->proxy_workers : uv_available_parallelism();
	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (size_t)n;
}

/* ---- worker threads ---- */

static void worker_stop(uv_async_t *a)
{
	struct proxy_worker *w = a->data;
	uv_close((uv_handle_t *)a, NULL);
	if (w->rc == 0)
		proxy_shutdown(w->px, DRAIN_MS); /* hutchd waits 10 s before SIGKILL */
	else
		proxy_close(w->px);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Serves until stopped; reports through role->ready whether it listens. */
static void worker_run(void *arg)
{
	struct proxy_worker *w = arg;
	struct proxy_role *r = w->role;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct store *store = NULL;

	uv_loop_init(&w->loop);
	uv_async_init(&w->loop, &w->stop, worker_stop);
	w->stop.data = w;
	w->rc = role_store_open(r->cfg->store_path, &store, &err);
	if (w->rc == 0)
		w->rc = proxy_new(&w->loop, &r->pc, store, &w->px, &err);
	if (w->rc == 0)
		w->rc = proxy_listen(w->px, r->cfg->proxy_listen, NULL, &err);
	snprintf(w->error, sizeof(w->error), "%s", err.msg);
	if (w->rc < 0 && w->px)
		uv_async_send(&w->stop); /* close what was made */
	else if (w->rc < 0)
		uv_close((uv_handle_t *)&w->stop, NULL);
	uv_sem_post(&r->ready);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	if (w->px)
		proxy_stats_get(w->px, &w->stats);
	proxy_free(w->px);
	uv_walk(&w->loop, close_leftover, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_loop_close(&w->loop);
	store_close(store);
}

/* ---- the main thread ---- */

static void role_signal(uv_signal_t *s, int signum)
{
	struct proxy_role *r = s->data;
	if (r->stopping)
		return;
	r->stopping = true;
	log_info("stopping (signal %d)", signum);
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
	for (size_t i = 0; i < r->nworkers; i++)
		uv_async_send(&r->workers[i].stop);
}

/* Starts the workers; returns how many started, all listening or not. */
static int role_start_workers(struct proxy_role *r, size_t n)
{
	int failed = 0;
	r->workers = xcalloc(n, sizeof(*r->workers));
	uv_sem_init(&r->ready, 0);
	for (size_t i = 0; i < n; i++) {
		r->workers[i].role = r;
		if (uv_thread_create(&r->workers[i].thread, worker_run, &r->workers[i]) < 0)
			break;
		r->nworkers++;
	}
	for (size_t i = 0; i < r->nworkers; i++)
		uv_sem_wait(&r->ready);
	for (size_t i = 0; i < r->nworkers; i++)
		if (r->workers[i].rc < 0 && !failed++)
			log_error("proxy: %s", r->workers[i].error);
	if (!failed && r->nworkers == n)
		return 0;
	if (r->nworkers < n)
		log_error("proxy: cannot start worker threads");
	for (size_t i = 0; i < r->nworkers; i++)
		if (r->workers[i].rc == 0)
			uv_async_send(&r->workers[i].stop);
	return -1;
}

static void role_stop_workers(struct proxy_role *r, struct proxy_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < r->nworkers; i++) {
		struct proxy_stats *s = &r->workers[i].stats;
		uv_thread_join(&r->workers[i].thread);
		ret->requests += s->requests;
		ret->forwarded += s->forwarded;
		ret->tunnels += s->tunnels;
		ret->upstream_connects += s->upstream_connects;
		ret->upstream_reuses += s->upstream_reuses;
		ret->activity_posts = s->activity_posts; /* shared batcher: the same figure */
	}
	uv_sem_destroy(&r->ready);
	free(r->workers);
}

static int role_run(uv_loop_t *loop, const struct hutchd_config *cfg)
{
	struct proxy_role r = {.cfg = cfg};
	struct proxy_stats st;
	size_t n = role_worker_count(cfg);

	role_config(cfg, &r.pc);
	r.pc.http.reuse_port = n > 1;
	r.pc.activity = proxy_activity_new(loop, &r.pc);
	int rc = role_start_workers(&r, n);
	if (rc == 0) {
		log_info("proxy listening on %s (%zu workers, domain '%s', auth %s)",
		         cfg->proxy_listen, n, cfg->proxy_domain, r.pc.auth_none ? "none" : "key");
		uv_signal_init(loop, &r.sigterm);
		uv_signal_init(loop, &r.sigint);
		r.sigterm.data = r.sigint.data = &r;
		uv_signal_start(&r.sigterm, role_signal, SIGTERM);
		uv_signal_start(&r.sigint, role_signal, SIGINT);
		uv_run(loop, UV_RUN_DEFAULT);
	}
	role_stop_workers(&r, &st);
	proxy_activity_close(r.pc.activity); /* the last batch, then the batcher is freed */
	uv_run(loop, UV_RUN_DEFAULT);
	if (rc == 0)
		log_info(
		        "proxy stopped: %llu requests, %llu forwarded, %llu tunnels, %llu upstream "
		        "connections (%llu reuses), %llu activity posts",
		        (unsigned long long)st.requests, (unsigned long long)st.forwarded,
		        (unsigned long long)st.tunnels, (unsigned long long)st.upstream_connects,
		        (unsigned long long)st.upstream_reuses,
		        (unsigned long long)st.activity_posts);
	return rc == 0 ? 0 : 1;
}

int proxy_main(struct hutchd_config *cfg)
{
	uv_loop_t loop;

	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&loop);
	int rc = role_run(&loop, cfg);
	uv_walk(&loop, close_leftover, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
#ifdef __SANITIZE_ADDRESS__
	/* hutchd's roles end with _exit(), which skips LeakSanitizer's exit-time check */
	__lsan_do_leak_check();
#endif
	return rc;
}
