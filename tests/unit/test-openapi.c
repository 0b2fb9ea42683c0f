/* SPDX-License-Identifier: MIT */
/* The embedded OpenAPI document (GET /openapi.json) against the daemon's route table: every
 * route is documented with its method and nothing else is, references resolve, path parameters
 * are declared, and the version is the project's. */
#include "build-config.h"
#include "http/http-api.h"
#include "shared/json-util.h"
#include "tests.h"

static const char *const methods[] = { "get", "put", "post", "delete", "options", "head", "patch",
                                       "trace" };

static json_object *openapi_parse(void)
{
        json_object *doc = json_tokener_parse(http_openapi_json);

        ASSERT_NOT_NULL(doc);
        ASSERT_TRUE(json_object_is_type(doc, json_type_object));
        return doc;
}

static json_object *get(json_object *o, const char *key)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *get_string(json_object *o, const char *key)
{
        json_object *v = get(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool is_method(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (streq(methods[i], key))
                        return true;
        return false;
}

/* A route pattern or a document path, comparable: every parameter ("{}", "{**}", "{name}")
 * becomes "{}", and a trailing slash goes (the server takes "/x/" for "/x"). */
static char *path_normalize(const char *p)
{
        char *r = malloc(strlen(p) + 1), *o = r;
        size_t n;

        ASSERT_NOT_NULL(r);
        while (*p) {
                if (*p == '{') {
                        const char *end = strchr(p, '}');
                        ASSERT_NOT_NULL(end);
                        *o++ = '{';
                        *o++ = '}';
                        p = end + 1;
                } else
                        *o++ = *p++;
        }
        *o = 0;
        n = strlen(r);
        if (n > 1 && r[n - 1] == '/')
                r[n - 1] = 0;
        return r;
}

static void lowercase(char *s)
{
        for (; *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                        *s = (char) (*s - 'A' + 'a');
}

/* The document's operation for a route, NULL when there is none. */
static json_object *find_operation(json_object *paths, const char *method, const char *pattern)
{
        _cleanup_free_ char *want = path_normalize(pattern), *m = strdup(method);

        ASSERT_NOT_NULL(m);
        lowercase(m);
        json_object_object_foreach(paths, path, item) {
                _cleanup_free_ char *have = path_normalize(path);
                if (streq(have, want))
                        return get(item, m);
        }
        return NULL;
}

static bool route_exists(const char *method, const char *path)
{
        _cleanup_free_ char *want = path_normalize(path);
        const char *rm, *rp;

        for (size_t i = 0; http_api_route(i, &rm, &rp); i++) {
                _cleanup_free_ char *have = path_normalize(rp), *m = strdup(rm);
                ASSERT_NOT_NULL(m);
                lowercase(m);
                if (streq(have, want) && streq(m, method))
                        return true;
        }
        return false;
}

/* Follows a local reference ("#/components/schemas/Run"); NULL when it leads nowhere. */
static json_object *ref_resolve(json_object *doc, const char *ref)
{
        json_object *o = doc;
        const char *p = startswith(ref, "#/");

        if (!p)
                return NULL;
        while (o && *p) {
                size_t n = strcspn(p, "/");
                char key[256], *k = key;

                if (n >= sizeof(key))
                        return NULL;
                for (size_t i = 0; i < n; i++) {
                        if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
                                *k++ = p[i + 1] == '0' ? '~' : '/';
                                i++;
                        } else
                                *k++ = p[i];
                }
                *k = 0;
                o = get(o, key);
                p += n;
                if (*p == '/')
                        p++;
        }
        return o;
}

static json_object *deref(json_object *doc, json_object *o)
{
        const char *ref = get_string(o, "$ref");
        return ref ? ref_resolve(doc, ref) : o;
}

static void check_refs(json_object *doc, json_object *o, unsigned *n_refs)
{
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        check_refs(doc, json_object_array_get_idx(o, i), n_refs);
                return;
        }
        if (!json_object_is_type(o, json_type_object))
                return;
        json_object_object_foreach(o, key, v) {
                if (streq(key, "$ref")) {
                        const char *ref = json_object_get_string(v);
                        if (!ref_resolve(doc, ref)) {
                                fprintf(stderr, "  unresolved $ref: %s\n", ref);
                                ASSERT_TRUE(!"every $ref resolves");
                        }
                        (*n_refs)++;
                } else
                        check_refs(doc, v, n_refs);
        }
}

/* Whether the path item or the operation declares path parameter name. */
static bool path_parameter_declared(json_object *doc, json_object *item, json_object *op,
                                    const char *name)
{
        json_object *lists[] = { get(item, "parameters"), get(op, "parameters") };

        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (size_t i = 0; lists[l] && i < json_object_array_length(lists[l]); i++) {
                        json_object *p = deref(doc, json_object_array_get_idx(lists[l], i));
                        json_object *req = get(p, "required");
                        if (streq_ptr(get_string(p, "in"), "path") &&
                            streq_ptr(get_string(p, "name"), name) && req &&
                            json_object_get_boolean(req))
                                return true;
                }
        return false;
}

/* The number of path parameters declared for an operation. */
static size_t path_parameters_count(json_object *doc, json_object *item, json_object *op)
{
        json_object *lists[] = { get(item, "parameters"), get(op, "parameters") };
        size_t n = 0;

        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (size_t i = 0; lists[l] && i < json_object_array_length(lists[l]); i++)
                        if (streq_ptr(get_string(deref(doc, json_object_array_get_idx(lists[l], i)),
                                                 "in"),
                                      "path"))
                                n++;
        return n;
}

static bool tag_declared(json_object *tags, const char *name)
{
        for (size_t i = 0; i < json_object_array_length(tags); i++)
                if (streq_ptr(get_string(json_object_array_get_idx(tags, i), "name"), name))
                        return true;
        return false;
}

TEST(embedded_size)
{
        ASSERT_EQ(http_openapi_json_size, strlen(http_openapi_json));
        ASSERT_TRUE(http_openapi_json_size > 0);
}

TEST(version_and_info)
{
        _cleanup_(json_object_putp) json_object *doc = openapi_parse();
        json_object *info = get(doc, "info");

        ASSERT_NOT_NULL(startswith(strempty(get_string(doc, "openapi")), "3."));
        ASSERT_STREQ(get_string(info, "title"), "arkevent");
        ASSERT_STREQ(get_string(info, "version"), PACKAGE_VERSION);
        /* Substituted everywhere. */
        ASSERT_NULL(strstr(http_openapi_json, "@VERSION@"));
}

TEST(every_route_is_documented)
{
        _cleanup_(json_object_putp) json_object *doc = openapi_parse();
        json_object *paths = get(doc, "paths");
        const char *method, *pattern;
        size_t n = 0;

        ASSERT_NOT_NULL(paths);
        for (size_t i = 0; http_api_route(i, &method, &pattern); i++, n++)
                if (!find_operation(paths, method, pattern)) {
                        fprintf(stderr, "  route %s %s is not in the document\n", method,
                                pattern);
                        ASSERT_TRUE(!"every route is documented");
                }
        ASSERT_TRUE(n > 0);
        /* The operations endpoints are routes like the others. */
        ASSERT_TRUE(route_exists("get", "/healthz"));
        ASSERT_TRUE(route_exists("get", "/metrics"));
        ASSERT_TRUE(route_exists("get", "/openapi.json"));
}

TEST(every_operation_is_a_route)
{
        _cleanup_(json_object_putp) json_object *doc = openapi_parse();
        json_object *paths = get(doc, "paths");
        unsigned n_ops = 0;

        json_object_object_foreach(paths, path, item) {
                ASSERT_NOT_NULL(startswith(path, "/"));
                json_object_object_foreach(item, key, op) {
                        (void) op;
                        if (!is_method(key))
                                continue;
                        if (!route_exists(key, path)) {
                                fprintf(stderr, "  %s %s is not a route\n", key, path);
                                ASSERT_TRUE(!"every operation is a route");
                        }
                        n_ops++;
                }
        }
        ASSERT_TRUE(n_ops > 0);
}

TEST(paths_are_distinct)
{
        _cleanup_(json_object_putp) json_object *doc = openapi_parse();
        json_object *paths = get(doc, "paths");

        json_object_object_foreach(paths, path, v1) {
                _cleanup_free_ char *a = path_normalize(path);
                unsigned n = 0;

                (void) v1;
                json_object_object_foreach(paths, other, v2) {
                        _cleanup_free_ char *b = path_normalize(other);
                        (void) v2;
                        n += streq(a, b);
                }
                if (n != 1) {
                        fprintf(stderr, "  %s is documented %u times\n", path, n);
                        ASSERT_TRUE(!"paths are distinct");
                }
        }
}

/* An assertion about the operation at hand, which it names when it fails. */
#define ASSERT_OP(expr)                                                                           \
        do {                                                                                      \
                if (!(expr)) {                                                                    \
                        fprintf(stderr, "  operation: %s %s\n", method, path);                    \
                        ASSERT_TRUE(expr);                                                        \
                }                                                                                 \
        } while (0)

TEST(operations_are_complete)
{
        _cleanup_(json_object_putp) json_object *doc = openapi_parse();
        json_object *paths = get(doc, "paths"), *tags = get(doc, "tags"),
                    *schemes = get(get(doc, "components"), "securitySchemes");
        _cleanup_(json_object_putp) json_object *ids = json_object_new_object();

        ASSERT_TRUE(tags);
        ASSERT_TRUE(schemes);
        json_object_object_foreach(paths, path, item) {
                json_object_object_foreach(item, method, op) {
                        json_object *responses = get(op, "responses"), *sec = get(op, "security"),
                                    *op_tags = get(op, "tags");
                        const char *id = get_string(op, "operationId");

                        if (!is_method(method))
                                continue;
                        /* A unique operationId. */
                        ASSERT_OP(id);
                        ASSERT_OP(!get(ids, id));
                        json_object_object_add(ids, id, json_object_new_boolean(true));
                        /* Responses, each with a description. */
                        ASSERT_OP(responses);
                        ASSERT_OP(json_object_object_length(responses) > 0);
                        json_object_object_foreach(responses, status, resp) {
                                (void) status;
                                ASSERT_OP(get_string(deref(doc, resp), "description"));
                        }
                        /* Tags among the document's. */
                        ASSERT_OP(op_tags && json_object_array_length(op_tags) > 0);
                        for (size_t i = 0; i < json_object_array_length(op_tags); i++)
                                ASSERT_OP(tag_declared(tags, json_object_get_string(
                                                                     json_object_array_get_idx(
                                                                             op_tags, i))));
                        /* Security schemes that exist. */
                        for (size_t i = 0; sec && i < json_object_array_length(sec); i++) {
                                json_object_object_foreach(json_object_array_get_idx(sec, i),
                                                           scheme, scopes) {
                                        (void) scopes;
                                        ASSERT_OP(get(schemes, scheme));
                                }
                        }
                        /* Every {name} of the path is a declared path parameter, and only
                         * those. */
                        size_t n_template = 0;
                        for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
                                const char *end = strchr(p, '}');
                                char name[64];
                                ASSERT_OP(end && (size_t) (end - p) < sizeof(name));
                                snprintf(name, sizeof(name), "%.*s", (int) (end - p - 1), p + 1);
                                ASSERT_OP(path_parameter_declared(doc, item, op, name));
                                n_template++;
                        }
                        ASSERT_OP(path_parameters_count(doc, item, op) == n_template);
                }
        }
}

TEST(references_resolve)
{
        _cleanup_(json_object_putp) json_object *doc = openapi_parse();
        unsigned n = 0;

        check_refs(doc, doc, &n);
        ASSERT_TRUE(n > 0);
}

TEST(security)
{
        _cleanup_(json_object_putp) json_object *doc = openapi_parse();
        json_object *paths = get(doc, "paths"), *sec;

        /* The API token by default. */
        sec = get(doc, "security");
        ASSERT_NOT_NULL(sec);
        ASSERT_NOT_NULL(get(json_object_array_get_idx(sec, 0), "bearerAuth"));
        /* No token for these two. */
        sec = get(find_operation(paths, "GET", "/healthz"), "security");
        ASSERT_TRUE(sec && json_object_array_length(sec) == 0);
        sec = get(find_operation(paths, "GET", "/openapi.json"), "security");
        ASSERT_TRUE(sec && json_object_array_length(sec) == 0);
        /* /metrics takes the API token: the default. */
        ASSERT_NULL(get(find_operation(paths, "GET", "/metrics"), "security"));
        /* A fire takes the trigger's own token. */
        sec = get(find_operation(paths, "POST", "/triggers/{}/{}/fire"), "security");
        ASSERT_TRUE(sec && json_object_array_length(sec) > 0);
        ASSERT_NULL(get(json_object_array_get_idx(sec, 0), "bearerAuth"));
}

TEST_MAIN()
