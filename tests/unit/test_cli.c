/* Unit tests for the hutch CLI's pure logic: which API URLs count as loopback, the only ones the
 * local admin key is sent to. The CLI's sources are compiled in directly (they live in a
 * program, not a library). */
#include "../../src/hutch/loopback.c"
#include "t.h"

static void test_loopback_yes(void)
{
	CHECK(cli_url_is_loopback("http://127.0.0.1:8900"));
	CHECK(cli_url_is_loopback("http://127.0.0.1"));
	CHECK(cli_url_is_loopback("https://127.0.0.1:8900/"));
	CHECK(cli_url_is_loopback("http://127.1.2.3:1/api?x=1#f"));
	CHECK(cli_url_is_loopback("http://127.255.255.255:65535"));
	CHECK(cli_url_is_loopback("HTTP://127.0.0.1:8900"));
	CHECK(cli_url_is_loopback("http://[::1]:8900"));
	CHECK(cli_url_is_loopback("http://[0:0:0:0:0:0:0:1]/"));
	CHECK(cli_url_is_loopback("http://localhost:8900"));
	CHECK(cli_url_is_loopback("http://LocalHost"));
	CHECK(cli_url_is_loopback("127.0.0.1:8900")); /* no scheme: curl uses http */
	CHECK(cli_url_is_loopback("localhost"));
}

static void test_loopback_no(void)
{
	CHECK(!cli_url_is_loopback(NULL));
	CHECK(!cli_url_is_loopback(""));
	CHECK(!cli_url_is_loopback("http://"));
	CHECK(!cli_url_is_loopback("http://:8900"));
	CHECK(!cli_url_is_loopback("http://10.0.0.1:8900"));
	CHECK(!cli_url_is_loopback("http://128.0.0.1"));
	CHECK(!cli_url_is_loopback("http://0.0.0.0:8900"));
	CHECK(!cli_url_is_loopback("https://api.example.com"));
	CHECK(!cli_url_is_loopback("http://127.0.0.1.invalid"));
	CHECK(!cli_url_is_loopback("http://127.0.0.1.nip.io:8900"));
	CHECK(!cli_url_is_loopback("http://localhost.example.com"));
	CHECK(!cli_url_is_loopback("http://localhost."));
	CHECK(!cli_url_is_loopback("http://foo.localhost"));
	/* user info: the host is what follows the '@' (or the URL is ambiguous) */
	CHECK(!cli_url_is_loopback("http://127.0.0.1@evil.example"));
	CHECK(!cli_url_is_loopback("http://127.0.0.1:8900@evil.example/"));
	CHECK(!cli_url_is_loopback("http://user:pw@127.0.0.1:8900"));
	CHECK(!cli_url_is_loopback("http://evil.example/@127.0.0.1")); /* path, host is evil */
	CHECK(!cli_url_is_loopback("http://evil.example?127.0.0.1"));
	CHECK(!cli_url_is_loopback("http://evil.example#127.0.0.1"));
	/* odd spellings are not recognised (refused, never mistaken) */
	CHECK(!cli_url_is_loopback("http://2130706433"));
	CHECK(!cli_url_is_loopback("http://0x7f.0.0.1"));
	CHECK(!cli_url_is_loopback("http://127.1"));
	CHECK(!cli_url_is_loopback("http://[::ffff:127.0.0.1]"));
	CHECK(!cli_url_is_loopback("http://[::1%25lo]:80"));
	CHECK(!cli_url_is_loopback("http://[::2]"));
	CHECK(!cli_url_is_loopback("http://[::1"));
	CHECK(!cli_url_is_loopback("http://::1"));
	CHECK(!cli_url_is_loopback("http://127.0.0.1:"));
	CHECK(!cli_url_is_loopback("http://127.0.0.1:80x"));
	CHECK(!cli_url_is_loopback("http://127.0.0.1:123456"));
	CHECK(!cli_url_is_loopback("http://127.0.0.1 "));
	CHECK(!cli_url_is_loopback("http://127.0.0.1\\@evil.example"));
	CHECK(!cli_url_is_loopback("http://[::1]evil"));
	/* other schemes are not the HTTP API */
	CHECK(!cli_url_is_loopback("ftp://127.0.0.1"));
	CHECK(!cli_url_is_loopback("file://localhost/etc"));
}

int main(void)
{
	test_loopback_yes();
	test_loopback_no();
	T_DONE();
}
