/* hutchd's proxy role: opens the store read-only, runs the ingress proxy (lib/proxy) on
 * --proxy-listen until SIGTERM/SIGINT, then shuts it down gracefully and exits. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "config.h"
#include "proxy/proxy.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define STORE_WAIT_MS 10000

struct proxy_role {
	struct proxy *px;
	uv_signal_t sigterm, sigint;
	bool stopping;
};

static void role_signal(uv_signal_t *s, int signum)
{
	struct proxy_role *r = s->data;
	if (r->stopping)
		return;
	r->stopping = true;
	log_info("stopping (signal %d)", signum);
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
	proxy_close(r->px);
}

/* The api creates and migrates the database; when both roles start together the proxy may come
 * first, so it waits a little for the file. */
static int role_store_open(const char *path, struct store **ret)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	uint64_t deadline = time_mono_ms() + STORE_WAIT_MS;
	for (;;) {
		if (store_open_sqlite_readonly(path, ret, &err) == 0)
			return 0;
		if (time_mono_ms() >= deadline) {
			log_error("cannot open the store: %s", err.msg);
			return -1;
		}
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Timeouts not (yet) in hutchd's option table, for tests and tuning. */
static uint64_t env_ms(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	uint64_t ms;
	if (!v || !v[0] || sv_to_u64(sv_from(v), UINT64_MAX / 2, &ms) < 0)
		return def;
	return ms;
}

static void role_config(const struct hutchd_config *cfg, struct proxy_config *pc)
{
	proxy_config_defaults(pc);
	pc->domain = cfg->proxy_domain;
	pc->api_url = cfg->api_url;
	pc->node_token = cfg->node_token ? cfg->node_token : "";
	pc->node_id = cfg->node_id;
	pc->auth_none = strcmp(cfg->auth, "none") == 0;
	pc->first_byte_timeout_ms =
	        env_ms("HUTCH_PROXY_FIRST_BYTE_TIMEOUT_MS", pc->first_byte_timeout_ms);
	pc->connect_timeout_ms = env_ms("HUTCH_PROXY_CONNECT_TIMEOUT_MS", pc->connect_timeout_ms);
	pc->wake_timeout_ms = env_ms("HUTCH_PROXY_WAKE_TIMEOUT_MS", pc->wake_timeout_ms);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int role_run(uv_loop_t *loop, const struct hutchd_config *cfg, struct store *store)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct proxy_config pc;
	struct proxy_role r = {0};

	role_config(cfg, &pc);
	if (proxy_new(loop, &pc, store, &r.px, &err) < 0 ||
	    proxy_listen(r.px, cfg->proxy_listen, NULL, &err) < 0) {
		log_error("proxy: %s", err.msg);
		if (r.px) {
			proxy_close(r.px);
			uv_run(loop, UV_RUN_DEFAULT);
			proxy_free(r.px);
		}
		return 1;
	}
	log_info("proxy listening on %s (domain '%s', auth %s)", cfg->proxy_listen,
	         cfg->proxy_domain, pc.auth_none ? "none" : "key");
	uv_signal_init(loop, &r.sigterm);
	uv_signal_init(loop, &r.sigint);
	r.sigterm.data = r.sigint.data = &r;
	uv_signal_start(&r.sigterm, role_signal, SIGTERM);
	uv_signal_start(&r.sigint, role_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);

	struct proxy_stats st;
	proxy_stats_get(r.px, &st);
	log_info("proxy stopped: %llu requests, %llu forwarded, %llu tunnels, %llu upstream "
	         "connections (%llu reuses)",
	         (unsigned long long)st.requests, (unsigned long long)st.forwarded,
	         (unsigned long long)st.tunnels, (unsigned long long)st.upstream_connects,
	         (unsigned long long)st.upstream_reuses);
	proxy_free(r.px);
	return 0;
}

int proxy_main(struct hutchd_config *cfg)
{
	struct store *store = NULL;
	uv_loop_t loop;

	signal(SIGPIPE, SIG_IGN);
	if (role_store_open(cfg->store_path, &store) < 0)
		return 1;
	uv_loop_init(&loop);
	int rc = role_run(&loop, cfg, store);
	uv_walk(&loop, close_leftover, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	store_close(store);
#ifdef __SANITIZE_ADDRESS__
	/* hutchd's roles end with _exit(), which skips LeakSanitizer's exit-time check */
	__lsan_do_leak_check();
#endif
	return rc;
}
