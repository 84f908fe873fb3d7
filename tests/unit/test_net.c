/* test_net.c - the socket helpers shared by proxy/ and linkserver/: what an
 * address is (table-driven), and a real listener, connection and its names. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

static void
sa_from(const char *text, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		g_assert_cmpint(inet_pton(AF_INET6, text, &s6->sin6_addr), ==, 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		g_assert_cmpint(inet_pton(AF_INET, text, &s4->sin_addr), ==, 1);
	}
}

static const struct {
	const char *addr;
	unsigned port;
	bool loopback;
	const char *name;      /* sp_net_addr_name */
} addr_cases[] = {
	{ "127.0.0.1", 587, true, "127.0.0.1:587" },
	{ "127.255.255.254", 1, true, "127.255.255.254:1" },
	{ "126.255.255.255", 2525, false, "126.255.255.255:2525" },
	{ "128.0.0.1", 65535, false, "128.0.0.1:65535" },
	{ "192.0.2.1", 54321, false, "192.0.2.1:54321" },
	{ "::1", 587, true, "[::1]:587" },
	{ "::", 587, false, "[::]:587" },
	{ "::2", 587, false, "[::2]:587" },
	{ "::ffff:127.0.0.1", 25, true, "[::ffff:127.0.0.1]:25" },
	{ "::ffff:127.1.2.3", 25, true, "[::ffff:127.1.2.3]:25" },
	{ "::ffff:10.0.0.1", 25, false, "[::ffff:10.0.0.1]:25" },
	{ "::127.0.0.1", 25, false, "[::127.0.0.1]:25" },     /* v4-compatible, not mapped */
	{ "2001:db8::1", 8025, false, "[2001:db8::1]:8025" },
	{ "fe80::1", 8025, false, "[fe80::1]:8025" },
};

static void
test_addresses(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(addr_cases); i++) {
		struct sockaddr_storage ss;
		const struct sockaddr *sa = (const struct sockaddr *)&ss;
		char name[80], ip[INET6_ADDRSTRLEN], want_ip[INET6_ADDRSTRLEN];

		g_test_message("case %s", addr_cases[i].addr);
		sa_from(addr_cases[i].addr, addr_cases[i].port, &ss);
		g_assert_cmpint(sp_net_addr_is_loopback(sa), ==, addr_cases[i].loopback);
		sp_net_addr_name(sa, name, sizeof name);
		g_assert_cmpstr(name, ==, addr_cases[i].name);
		g_assert_cmpuint(sp_net_addr_port(sa), ==, addr_cases[i].port);
		g_assert_true(sp_net_addr_ip(sa, ip, sizeof ip));
		/* The address part of the name, without brackets. */
		snprintf(want_ip, sizeof want_ip, "%s", name + (name[0] == '['));
		*strrchr(want_ip, name[0] == '[' ? ']' : ':') = '\0';
		g_assert_cmpstr(ip, ==, want_ip);
	}
}

static void
test_other_family(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	const struct sockaddr *sa = (const struct sockaddr *)&un;
	char out[32] = "untouched";

	g_assert_false(sp_net_addr_is_loopback(sa));
	g_assert_false(sp_net_addr_is_loopback(NULL));
	g_assert_false(sp_net_addr_ip(sa, out, sizeof out));
	g_assert_cmpstr(out, ==, "untouched");
	g_assert_cmpuint(sp_net_addr_port(sa), ==, 0);
	sp_net_addr_name(sa, out, sizeof out);
	g_assert_cmpstr(out, ==, "unknown");
}

static const struct {
	const char *host;
	bool loopback;
} host_cases[] = {
	{ "localhost", true },
	{ "localhost.", true },
	{ "LOCALHOST.", true },
	{ "localhost.example", false },
	{ "127.0.0.1", true },
	{ "127.9.9.9", true },
	{ "128.0.0.1", false },
	{ "::1", true },
	{ "::ffff:127.0.0.1", false },  /* a config names loopback plainly */
	{ "0.0.0.0", false },
	{ "::", false },
	{ "mail.example.net", false },
	{ "", false },
};

static void
test_hosts(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(host_cases); i++) {
		g_test_message("case '%s'", host_cases[i].host);
		g_assert_cmpint(sp_net_host_is_loopback(host_cases[i].host), ==, host_cases[i].loopback);
	}
}

/* A real listener on an ephemeral port, a connection to it, and the names of
 * both ends. */
static void
test_listen_connect(void)
{
	struct sp_net_failure why = { 0 };
	struct sockaddr_storage ss;
	char port[8], name[80], ip[64], want[80], err[SP_ERRLEN];
	int lfd, cfd, afd;

	lfd = sp_net_listen("127.0.0.1", "0", true, 4, &why);
	g_assert_cmpint(lfd, >=, 0);
	g_assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	g_assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	g_assert_true(sp_net_local_addr(lfd, &ss));
	g_assert_cmpuint(sp_net_addr_port((struct sockaddr *)&ss), >, 0);
	snprintf(port, sizeof port, "%u", sp_net_addr_port((struct sockaddr *)&ss));
	g_assert_true(sp_net_local_is_loopback(lfd));

	cfd = sp_net_connect("127.0.0.1", port, sp_now_ms() + 10000, err, sizeof err);
	g_assert_cmpint(cfd, >=, 0);
	sp_net_peer_name(cfd, name, sizeof name);
	snprintf(want, sizeof want, "127.0.0.1:%s", port);
	g_assert_cmpstr(name, ==, want);
	g_assert_true(sp_net_peer_is_loopback(cfd));

	/* The accepted end sees the client's address. */
	do
		afd = accept(lfd, NULL, NULL);
	while (afd < 0 && (errno == EAGAIN || errno == EINTR));
	g_assert_cmpint(afd, >=, 0);
	g_assert_true(sp_net_peer_ip(afd, ip, sizeof ip));
	g_assert_cmpstr(ip, ==, "127.0.0.1");
	g_assert_true(sp_net_peer_is_loopback(afd));
	g_assert_true(sp_net_local_is_loopback(afd));
	close(afd);
	close(cfd);

	/* The port is taken: bind fails, and says so. */
	g_assert_cmpint(sp_net_listen("127.0.0.1", port, false, 4, &why), ==, -1);
	g_assert_cmpint(why.step, ==, SP_NET_BIND);
	g_assert_cmpint(why.code, ==, EADDRINUSE);
	g_assert_cmpstr(sp_net_failure_text(&why), ==, strerror(EADDRINUSE));
	close(lfd);

	/* Nobody listens there any more. */
	g_assert_cmpint(sp_net_connect("127.0.0.1", port, sp_now_ms() + 10000, err, sizeof err), ==, -1);
	snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%s: %s", port, strerror(ECONNREFUSED));
	g_assert_cmpstr(err, ==, want);
}

static void
test_listen_blocking(void)
{
	struct sp_net_failure why = { 0 };
	int fd = sp_net_listen("127.0.0.1", "0", false, 4, &why);

	g_assert_cmpint(fd, >=, 0);
	g_assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
}

/* A port that is not a number never reaches the resolver's network side. */
static void
test_listen_unresolvable(void)
{
	struct sp_net_failure why = { 0 };

	g_assert_cmpint(sp_net_listen("127.0.0.1", "smtp", true, 4, &why), ==, -1);
	g_assert_cmpint(why.step, ==, SP_NET_RESOLVE);
	g_assert_cmpstr(sp_net_failure_text(&why), ==, gai_strerror(why.code));
}

/* A socket that is not connected has no peer. */
static void
test_no_peer(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char name[80], ip[64] = "untouched";

	g_assert_cmpint(fd, >=, 0);
	sp_net_peer_name(fd, name, sizeof name);
	g_assert_cmpstr(name, ==, "unknown");
	g_assert_false(sp_net_peer_ip(fd, ip, sizeof ip));
	g_assert_false(sp_net_peer_is_loopback(fd));
	close(fd);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/net/addresses", test_addresses);
	g_test_add_func("/net/other_family", test_other_family);
	g_test_add_func("/net/hosts", test_hosts);
	g_test_add_func("/net/listen_connect", test_listen_connect);
	g_test_add_func("/net/listen_blocking", test_listen_blocking);
	g_test_add_func("/net/listen_unresolvable", test_listen_unresolvable);
	g_test_add_func("/net/no_peer", test_no_peer);
	return g_test_run();
}
