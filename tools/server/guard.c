/* What the server checks before it reads a request's body: the API key (compared in
 * constant time, so its bytes cannot be guessed one by one from response times), the Host
 * header (a web page that rebinds its DNS name to 127.0.0.1 sends its own name there), the
 * Origin for CORS, and the Content-Type (a page may send a text/plain POST to any server
 * without asking, but not an application/json one). */
#include "server.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

bool guard_key_ok(const char *key, const char *authorization)
{
    if (!key)
        return true;
    if (!authorization || strncasecmp(authorization, "Bearer", 6) || (authorization[6] != ' ' && authorization[6] != '\t'))
        return false;
    const char *t = authorization + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(key), m = strlen(t);
    while (m > 0 && (t[m - 1] == ' ' || t[m - 1] == '\t'))
        m--;
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) /* every byte of the key looked at, whatever matches */
        diff |= (unsigned char)(key[i] ^ (i < m ? t[i] : 0));
    return diff == 0;
}

bool guard_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcasecmp(host, "localhost"))
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static bool is_wildcard(const char *host)
{
    return !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "[::]");
}

/* The name part of a Host header ("name:port", "[v6]:port") into out. */
static bool host_name(const char *h, char *out, size_t cap)
{
    size_t n;
    if (*h == '[') {
        const char *e = strchr(h, ']');
        if (!e)
            return false;
        h++;
        n = (size_t)(e - h);
    } else {
        const char *colon = strchr(h, ':');
        n = colon ? (size_t)(colon - h) : strlen(h);
    }
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, h, n);
    out[n] = 0;
    return true;
}

bool guard_host_ok(const serve_config *cfg, const char *host_header)
{
    if (cfg->any_host)
        return true;
    char name[256];
    if (!host_header || !host_name(host_header, name, sizeof name))
        return false;
    for (int i = 0; i < cfg->n_allow_hosts; i++)
        if (!strcasecmp(name, cfg->allow_hosts[i]))
            return true;
    if (guard_is_loopback(cfg->host)) /* this machine's names only */
        return guard_is_loopback(name);
    /* bound to every interface: any address is one of ours, a name must be allowed */
    struct in6_addr a;
    if (is_wildcard(cfg->host))
        return inet_pton(AF_INET, name, &a) == 1 || inet_pton(AF_INET6, name, &a) == 1;
    return !strcasecmp(name, cfg->host);
}

const char *guard_cors(const serve_config *cfg, const char *origin)
{
    if (!origin)
        return NULL;
    for (int i = 0; i < cfg->n_cors; i++)
        if (!strcmp(cfg->cors[i], "*") || !strcasecmp(cfg->cors[i], origin))
            return !strcmp(cfg->cors[i], "*") ? "*" : origin;
    return NULL;
}

bool guard_json_type(const char *content_type)
{
    static const char want[] = "application/json";
    if (!content_type || strncasecmp(content_type, want, sizeof want - 1))
        return false;
    const char *rest = content_type + sizeof want - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == 0 || *rest == ';';
}
