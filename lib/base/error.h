/* The one error object that carries a message (and an HTTP status and machine code where one is
 * known) from the failure site up to the boundary that reports it (crun's libcrun_error idea).
 * Library code fills it and returns a negative errno-style code; it never logs. */
#ifndef HUTCH_ERROR_H
#define HUTCH_ERROR_H

struct hutch_error {
	int code;      /* negative errno-style code; 0 = no error */
	int status;    /* HTTP status to answer with; 0 = derive from code */
	char kind[40]; /* machine code for API answers ("SANDBOX_NOT_FOUND"); "" = derive */
	char msg[512];
};

#define HUTCH_ERROR_INIT     \
	{                    \
		0, 0, "", "" \
	}

/* Records code (negative errno) and a message. Returns code so callers can
 * `return hutch_error_set(err, -EINVAL, "...")`. err may be NULL. */
int hutch_error_set(struct hutch_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Like hutch_error_set with -errno, appending ": strerror(errno)". Uses errno at call time. */
int hutch_error_errno(struct hutch_error *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Records an error that must reach an API client with an exact status and machine code. */
int hutch_error_api(struct hutch_error *err, int status, const char *kind, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Prefixes the message with context ("starting sandbox: <old message>"); returns err->code. */
int hutch_error_wrap(struct hutch_error *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void hutch_error_clear(struct hutch_error *err);
/* HTTP status for the error: the recorded one, else derived from code. */
int hutch_error_http_status(const struct hutch_error *err);
/* Machine code for the error: the recorded one, else derived from the status. */
const char *hutch_error_kind(const struct hutch_error *err);

#endif
