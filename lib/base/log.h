/* Logging for program boundaries (daemon loops, request handlers, CLI main): library code
 * returns errors instead of logging. One line per event on stderr. */
#ifndef HUTCH_LOG_H
#define HUTCH_LOG_H

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Sets the name printed on each line ("hutchd[api]"); the string must stay valid. */
void log_init(const char *name);
void log_set_level(enum log_level level);
/* Parses "debug" / "info" / "warn" / "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
__attribute__((noreturn)) void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_debug(...)                                         \
	do {                                                   \
		if (log_enabled(LOG_LEVEL_DEBUG))              \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#define BUG_ON(cond)                                                          \
	do {                                                                  \
		if (cond)                                                     \
			fatal("BUG at %s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

#endif
