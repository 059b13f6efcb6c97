/* The error object. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

static void set_msg(struct hutch_error *err, const char *fmt, va_list ap)
{
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (n < 0)
		err->msg[0] = '\0';
}

int hutch_error_set(struct hutch_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (code > 0)
		code = -code;
	if (!err)
		return code;
	err->code = code;
	err->status = 0;
	err->kind[0] = '\0';
	va_start(ap, fmt);
	set_msg(err, fmt, ap);
	va_end(ap);
	return code;
}

int hutch_error_errno(struct hutch_error *err, const char *fmt, ...)
{
	va_list ap;
	int saved = errno ? errno : EIO;

	if (!err)
		return -saved;
	err->code = -saved;
	err->status = 0;
	err->kind[0] = '\0';
	va_start(ap, fmt);
	set_msg(err, fmt, ap);
	va_end(ap);
	size_t len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(saved));
	return -saved;
}

int hutch_error_api(struct hutch_error *err, int status, const char *kind, const char *fmt, ...)
{
	va_list ap;
	int code = status == 404   ? -ENOENT
	           : status == 409 ? -EBUSY
	           : status >= 500 ? -EIO
	                           : -EINVAL;

	if (!err)
		return code;
	err->code = code;
	err->status = status;
	snprintf(err->kind, sizeof(err->kind), "%s", kind ? kind : "");
	va_start(ap, fmt);
	set_msg(err, fmt, ap);
	va_end(ap);
	return code;
}

int hutch_error_wrap(struct hutch_error *err, const char *fmt, ...)
{
	char prefix[256];
	va_list ap;

	if (!err)
		return -EIO;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n < 0)
		return err->code;
	size_t plen = strlen(prefix) + 2, cap = sizeof(err->msg) - 1;
	size_t mlen = strlen(err->msg);
	if (plen > cap)
		plen = cap;
	if (mlen > cap - plen)
		mlen = cap - plen;
	memmove(err->msg + plen, err->msg, mlen);
	memcpy(err->msg, prefix, plen - 2);
	memcpy(err->msg + plen - 2, ": ", 2);
	err->msg[plen + mlen] = '\0';
	return err->code ? err->code : -EIO;
}

void hutch_error_clear(struct hutch_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->status = 0;
	err->kind[0] = '\0';
	err->msg[0] = '\0';
}

int hutch_error_http_status(const struct hutch_error *err)
{
	if (err->status)
		return err->status;
	switch (-err->code) {
	case 0:
		return 200;
	case EINVAL:
	case E2BIG:
	case ERANGE:
	case ENAMETOOLONG:
		return 400;
	case EACCES:
	case EPERM:
		return 403;
	case ENOENT:
	case ESRCH:
		return 404;
	case EEXIST:
	case EBUSY:
		return 409;
	case EMSGSIZE:
		return 413;
	case ETIMEDOUT:
		return 504;
	case EAGAIN:
		return 503;
	default:
		return 500;
	}
}

const char *hutch_error_kind(const struct hutch_error *err)
{
	if (err->kind[0])
		return err->kind;
	switch (hutch_error_http_status(err)) {
	case 400:
		return "INVALID_ARGUMENT";
	case 401:
		return "UNAUTHENTICATED";
	case 403:
		return "FORBIDDEN";
	case 404:
		return "NOT_FOUND";
	case 409:
		return "CONFLICT";
	case 413:
		return "PAYLOAD_TOO_LARGE";
	case 503:
		return "UNAVAILABLE";
	case 504:
		return "TIMEOUT";
	default:
		return "INTERNAL_ERROR";
	}
}
