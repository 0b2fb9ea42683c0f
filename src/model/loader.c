/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>

#include "cron.h"
#include "limits.h"
#include "loader.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/strv.h"
#include "shared/time-util.h"
#include "template.h"
#include "yaml-node.h"

#define API_VERSION "arkonis.dev/v1alpha1"
#define RESOURCE_FILE_SIZE_MAX (16 * 1024 * 1024)
#define RESOURCE_NAME_LEN_MAX 200
/* Bounds that keep every check linear enough for any input, far above real flows. */
#define STEPS_MAX 1000
#define CALENDARS_MAX 64
#define KEY_VALUES_MAX 1000
#define TIMEOUT_SECONDS_MAX (366 * 24 * 3600)
#define RETRIES_MAX 100
#define BACKOFF_SECONDS_MAX (24 * 3600)
#define CONCURRENCY_MAX 100000
#define CYCLE_PATHS_MAX 100

typedef struct Parse {
        const char *file;
        TextCursor cursor;
        yaml_document_t *doc;
        Diagnostics *diags;
        unsigned n_errors;
        int error; /* sticky: the first failure that is not a problem of the input (ENOMEM) */
} Parse;

/* ---- reporting --------------------------------------------------------------------------- */

static void fatal(Parse *p, int r)
{
        if (r < 0 && p->error == 0)
                p->error = r;
}

static void *check_alloc(Parse *p, void *ptr)
{
        if (!ptr)
                fatal(p, -ENOMEM);
        return ptr;
}

static char *p_strdup(Parse *p, const char *s)
{
        return s ? check_alloc(p, strdup(s)) : NULL;
}

static char *p_strdup_len(Parse *p, const char *s, size_t n)
{
        return check_alloc(p, strndup(s, n));
}

static void p_strv_extend(Parse *p, char ***l, const char *s)
{
        fatal(p, strv_extend(l, s));
}

_printf_(4, 5) static void report_at(Parse *p, unsigned line, unsigned column, const char *format,
                                     ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        /* Counted even when it cannot be recorded: the document is broken either way. */
        p->n_errors++;
        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                fatal(p, -ENOMEM);
                return;
        }
        fatal(p, diag_add(p->diags, DIAG_ERROR, p->file, line, column, "%s", msg));
}

static void *mfree(void *ptr)
{
        free(ptr);
        return NULL;
}

#define report(p, node, ...)                                                                      \
        report_at(p, yaml_node_line(node), yaml_node_column(node), __VA_ARGS__)

/* Reports at a character inside a scalar's value. */
#define report_in(p, node, offset, ...)                                                           \
        do {                                                                                      \
                unsigned _l_, _c_;                                                                \
                yaml_scalar_locate(&(p)->cursor, node, offset, &_l_, &_c_);                       \
                report_at(p, _l_, _c_, __VA_ARGS__);                                              \
        } while (0)

static SourceLoc node_loc(Parse *p, yaml_node_t *n)
{
        return (SourceLoc){ p_strdup(p, p->file), yaml_node_line(n), yaml_node_column(n) };
}

/* How a node reads in "expected X, got Y". */
static const char *node_kind(yaml_node_t *n, char buf[static 64])
{
        const char *s = yaml_scalar(n);

        if (!n || yaml_scalar_is_null(n))
                return "nothing";
        if (n->type == YAML_SEQUENCE_NODE)
                return "a sequence";
        if (n->type == YAML_MAPPING_NODE)
                return "a mapping";
        if (!s)
                return "something else";
        /* The value itself, shortened to its first line. */
        size_t l = strcspn(s, "\r\n");
        bool cut = l > 40 || s[l];
        l = MIN(l, 40u);
        while (l > 0 && ((unsigned char) s[l] & 0xC0) == 0x80)
                l--; /* not in the middle of a character */
        snprintf(buf, 64, "'%.*s%s'", (int) l, s, cut ? "..." : "");
        return buf;
}

static const char *type_name(yaml_node_type_t t)
{
        switch (t) {
        case YAML_SCALAR_NODE:
                return "a string";
        case YAML_SEQUENCE_NODE:
                return "a sequence";
        case YAML_MAPPING_NODE:
                return "a mapping";
        default:
                return "a value";
        }
}

/* ---- reading fields ---------------------------------------------------------------------- */

/* The value of key in map. A key written with no value (or null) counts as not given. */
static yaml_node_t *field(Parse *p, yaml_node_t *map, const char *key, yaml_node_t **ret_key)
{
        yaml_node_t *v = yaml_map_get(p->doc, map, key, ret_key);
        return yaml_scalar_is_null(v) ? NULL : v;
}

/* A required field: reports "what is required" (at the key if it is there with no value). */
static yaml_node_t *require_field(Parse *p, yaml_node_t *map, const char *key, const char *what)
{
        yaml_node_t *k = NULL, *v = field(p, map, key, &k);
        if (!v)
                report(p, k ?: map, "%s is required", what);
        return v;
}

static bool expect_type(Parse *p, yaml_node_t *n, yaml_node_type_t type, const char *what)
{
        char buf[64];

        if (n && n->type == type)
                return true;
        if (n)
                report(p, n, "%s: expected %s, got %s", what, type_name(type), node_kind(n, buf));
        return false;
}

static char *get_string(Parse *p, yaml_node_t *n, const char *what)
{
        if (!expect_type(p, n, YAML_SCALAR_NODE, what))
                return NULL;
        return p_strdup(p, yaml_scalar(n));
}

/* A string that must not be empty. */
static char *get_nonempty(Parse *p, yaml_node_t *n, const char *what)
{
        char *s = get_string(p, n, what);
        if (s && !*s) {
                report(p, n, "%s must not be empty", what);
                s = mfree(s);
        }
        return s;
}

static bool get_int(Parse *p, yaml_node_t *n, const char *what, int64_t min, int64_t max,
                    int64_t *ret)
{
        char buf[64];
        int64_t v;

        if (!n)
                return false;
        if (n->type != YAML_SCALAR_NODE || yaml_scalar_to_int64(n, &v) < 0) {
                report(p, n, "%s: expected an integer, got %s", what, node_kind(n, buf));
                return false;
        }
        if (v < min || v > max) {
                report(p, n, "%s: %" PRIi64 " is out of range (%" PRIi64 "..%" PRIi64 ")", what,
                       v, min, max);
                return false;
        }
        *ret = v;
        return true;
}

static bool get_bool(Parse *p, yaml_node_t *n, const char *what, bool *ret)
{
        char buf[64];

        if (!n)
                return false;
        if (n->type != YAML_SCALAR_NODE || yaml_scalar_to_bool(n, ret) < 0) {
                report(p, n, "%s: expected a boolean (true or false), got %s", what,
                       node_kind(n, buf));
                return false;
        }
        return true;
}

/* One of a fixed set of words (an enum), with a suggestion for near misses. */
static int get_word(Parse *p, yaml_node_t *n, const char *what, const char *const *words)
{
        _cleanup_free_ char *list = NULL;
        const char *s, *c;

        if (!expect_type(p, n, YAML_SCALAR_NODE, what))
                return -EINVAL;
        s = yaml_scalar(n);
        for (size_t i = 0; words[i]; i++)
                if (streq(s, words[i]))
                        return (int) i;
        list = strv_join((char **) words, ", ");
        c = diag_closest(s, words);
        if (c)
                report(p, n, "%s: unknown value '%s' (did you mean '%s'?)", what, s, c);
        else
                report(p, n, "%s: unknown value '%s' (expected one of: %s)", what, s,
                       strna(list));
        return -EINVAL;
}

/* Resource names and namespaces end up in unit names, journal fields and URLs; step names also
 * in template paths (.steps.<name>.output), so they take no dots. */
static bool name_valid(const char *s, bool allow_dot)
{
        size_t n = strlen(s);

        if (n == 0 || n > RESOURCE_NAME_LEN_MAX || !isalnum((unsigned char) s[0]))
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '-' && *c != '_' &&
                    !(allow_dot && *c == '.'))
                        return false;
        return true;
}

static char *get_name(Parse *p, yaml_node_t *n, const char *what, bool allow_dot)
{
        _cleanup_free_ char *s = get_string(p, n, what);

        if (!s)
                return NULL;
        if (!name_valid(s, allow_dot)) {
                report(p, n,
                       "%s: invalid name '%s' (letters, digits, '-', '_'%s; starting with a "
                       "letter or digit; at most %u characters)",
                       what, s, allow_dot ? ", '.'" : "", RESOURCE_NAME_LEN_MAX);
                return NULL;
        }
        return TAKE_PTR(s);
}

/* Whether two input names become the same INPUT_<NAME> variable. */
static bool input_names_collide(const char *a, const char *b)
{
        for (;; a++, b++) {
                char x = isalnum((unsigned char) *a) ? (char) toupper((unsigned char) *a) : '_';
                char y = isalnum((unsigned char) *b) ? (char) toupper((unsigned char) *b) : '_';
                if (!*a || !*b)
                        return !*a && !*b;
                if (x != y)
                        return false;
        }
}

static bool env_name_valid(const char *s)
{
        if (!*s || isdigit((unsigned char) *s))
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '_')
                        return false;
        return true;
}

typedef struct Hint {
        const char *wrong;
        const char *right;
} Hint;

/* Reports unknown and duplicate keys of a mapping. hints (may be NULL, ends with {}) name
 * fields that belong elsewhere. */
static void check_keys(Parse *p, yaml_node_t *map, const char *const *allowed, const char *where,
                       const Hint *hints)
{
        bool seen[32] = {};
        char buf[64];

        YAML_MAP_FOREACH(a, map) {
                yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
                const char *key = yaml_scalar(k), *c = NULL;
                size_t i;

                if (!key) {
                        report(p, k ?: map, "%s: expected a field name, got %s", where,
                               node_kind(k, buf));
                        continue;
                }
                for (i = 0; allowed[i]; i++)
                        if (streq(allowed[i], key))
                                break;
                if (allowed[i]) {
                        if (i < ELEMENTSOF(seen) && seen[i])
                                report(p, k, "duplicate field '%s' in %s", key, where);
                        if (i < ELEMENTSOF(seen))
                                seen[i] = true;
                        continue;
                }
                for (const Hint *h = hints; h && h->wrong; h++)
                        if (streq(h->wrong, key))
                                c = h->right;
                if (!c)
                        c = diag_closest(key, allowed);
                if (c)
                        report(p, k, "unknown field '%s' in %s (did you mean '%s'?)", key, where,
                               c);
                else
                        report(p, k, "unknown field '%s' in %s", key, where);
        }
}

/* A mapping of names to scalars (labels, annotations, inputs, env), keys unique. Returns the
 * value nodes (for positions) alongside the pairs, or nothing if n is not a mapping. */
typedef enum KeyRule {
        KEY_ANY,
        KEY_NAME,    /* inputs: become INPUT_<NAME> */
        KEY_ENV_VAR, /* env: must be usable from a shell */
} KeyRule;

static void parse_kv(Parse *p, yaml_node_t *n, const char *what, KeyRule rule, KeyValue **ret,
                     size_t *ret_n, yaml_node_t ***ret_nodes)
{
        _cleanup_free_ KeyValue *kv = NULL;
        _cleanup_free_ yaml_node_t **nodes = NULL;
        size_t k = 0;
        char buf[64];

        if (!expect_type(p, n, YAML_MAPPING_NODE, what))
                return;
        if (yaml_map_length(n) > KEY_VALUES_MAX) {
                report(p, n, "%s: too many entries (%zu, at most %u)", what, yaml_map_length(n),
                       KEY_VALUES_MAX);
                return;
        }
        kv = check_alloc(p, new0(KeyValue, yaml_map_length(n)));
        nodes = check_alloc(p, new0(yaml_node_t *, yaml_map_length(n)));
        if (!kv || !nodes)
                return;

        YAML_MAP_FOREACH(a, n) {
                yaml_node_t *key = yaml_document_get_node(p->doc, a->key);
                yaml_node_t *val = yaml_document_get_node(p->doc, a->value);
                const char *ks = yaml_scalar(key);
                bool dup = false;

                if (!ks) {
                        report(p, key ?: n, "%s: expected a name, got %s", what,
                               node_kind(key, buf));
                        continue;
                }
                if (rule == KEY_NAME && !name_valid(ks, false)) {
                        report(p, key, "%s: invalid name '%s' (letters, digits, '-' and '_')",
                               what, ks);
                        continue;
                }
                if (rule == KEY_ENV_VAR && !env_name_valid(ks)) {
                        report(p, key,
                               "%s: invalid variable name '%s' (letters, digits and '_', not "
                               "starting with a digit)",
                               what, ks);
                        continue;
                }
                for (size_t j = 0; j < k && !dup; j++)
                        dup = streq(kv[j].key, ks);
                if (dup) {
                        report(p, key, "%s: '%s' is given twice", what, ks);
                        continue;
                }
                if (!val || val->type != YAML_SCALAR_NODE) {
                        report(p, val ?: key, "%s.%s: expected a string, got %s", what, ks,
                               node_kind(val, buf));
                        continue;
                }
                kv[k].key = p_strdup(p, ks);
                /* A null value is the empty string. */
                kv[k].value = p_strdup(p, yaml_scalar_is_null(val) ? "" : yaml_scalar(val));
                nodes[k++] = val;
        }
        if (ret_nodes)
                *ret_nodes = TAKE_PTR(nodes);
        *ret = TAKE_PTR(kv);
        *ret_n = k;
}

/* Converts free-form YAML (flow input defaults, trigger target inputs) to JSON. */
static json_object *to_json(Parse *p, yaml_node_t *n, const char *what)
{
        json_object *j = NULL;
        yaml_node_t *bad = NULL;
        char buf[64];
        int r;

        r = yaml_node_to_json(p->doc, n, &j, &bad);
        switch (r) {
        case 0:
                return j;
        case -ELOOP:
                report(p, bad, "%s: nested more than %u levels deep (or an alias contains itself)",
                       what, YAML_JSON_DEPTH_MAX);
                break;
        case -E2BIG:
                /* Where the budget ran out says little: the whole value is too big. */
                report(p, n, "%s: more than %u values (aliases can multiply them)", what,
                       YAML_JSON_VALUES_MAX);
                break;
        case -EINVAL:
                report(p, bad, "%s: expected a string as key, got %s", what, node_kind(bad, buf));
                break;
        case -EEXIST:
                report(p, bad, "%s: key '%s' is given twice", what, strna(yaml_scalar(bad)));
                break;
        default:
                fatal(p, r);
        }
        return NULL;
}

/* Checks a template-bearing scalar, reporting at the exact position of the problem. */
static void check_template(Parse *p, yaml_node_t *n, TemplateRoots roots,
                           TemplateStepCheck check_step, void *userdata)
{
        _cleanup_free_ char *e = NULL;
        size_t off = 0;
        int r;

        if (!n || n->type != YAML_SCALAR_NODE)
                return;
        r = template_validate(yaml_scalar(n), roots, check_step, userdata, &e, &off);
        if (r == -EINVAL)
                report_in(p, n, off, "%s", e ?: "invalid template");
        else
                fatal(p, r);
}

/* ---- steps ------------------------------------------------------------------------------- */

/* What the checks across steps need to point at. */
typedef struct StepNodes {
        yaml_node_t *node;
        yaml_node_t *name;
        yaml_node_t **deps; /* one per depends_on entry */
        yaml_node_t *if_node;
        yaml_node_t **input_nodes;
        yaml_node_t **env_nodes;
} StepNodes;

static const char *const step_keys[] = {
        "name",    "run",         "command",     "dependsOn",  "if",     "inputs",
        "env",     "timeoutSeconds", "retries", "cpuLimit",   "memoryLimit", "image",
        "runtime", "volumes",     "user",        NULL,
};

static const Hint step_hints[] = {
        { "script", "run" },   { "depends_on", "dependsOn" }, { "needs", "dependsOn" },
        { "input", "inputs" }, { "timeout", "timeoutSeconds" }, { "environment", "env" },
        {},
};

static void parse_volumes(Parse *p, yaml_node_t *n, Volume **ret, size_t *ret_n)
{
        Volume *v;
        size_t k = 0;

        if (!expect_type(p, n, YAML_SEQUENCE_NODE, "volumes"))
                return;
        v = check_alloc(p, new0(Volume, yaml_seq_length(n)));
        if (!v)
                return;
        YAML_SEQ_FOREACH(it, n) {
                yaml_node_t *item = yaml_document_get_node(p->doc, *it);
                const char *s = yaml_scalar(item), *c1, *c2;

                if (!expect_type(p, item, YAML_SCALAR_NODE, "volumes[]"))
                        continue;
                c1 = strchr(s, ':');
                if (s[0] != '/' || !c1 || c1[1] != '/') {
                        report(p, item,
                               "volume '%s': expected \"/host/path:/container/path\" (with an "
                               "optional \":ro\" or \":rw\")",
                               s);
                        continue;
                }
                c2 = strchr(c1 + 1, ':');
                if (c2 && !streq(c2 + 1, "ro") && !streq(c2 + 1, "rw")) {
                        report(p, item, "volume '%s': the option after the second ':' must be "
                                        "ro or rw",
                               s);
                        continue;
                }
                v[k].host = check_alloc(p, strndup(s, (size_t) (c1 - s)));
                v[k].target = check_alloc(p, c2 ? strndup(c1 + 1, (size_t) (c2 - c1 - 1))
                                                : strdup(c1 + 1));
                v[k].read_only = c2 && streq(c2 + 1, "ro");
                k++;
        }
        *ret = v;
        *ret_n = k;
}

static void parse_command(Parse *p, Step *s, yaml_node_t *cmd)
{
        static const char *const command_keys[] = { "entrypoint", "arguments", NULL };
        char buf[64];

        if (cmd->type == YAML_SEQUENCE_NODE) {
                /* The plain argv form. */
                YAML_SEQ_FOREACH(it, cmd) {
                        yaml_node_t *a = yaml_document_get_node(p->doc, *it);
                        if (expect_type(p, a, YAML_SCALAR_NODE, "command[]"))
                                p_strv_extend(p, &s->command, yaml_scalar(a));
                }
                if (yaml_seq_length(cmd) == 0)
                        report(p, cmd, "command: must not be empty");
                else if (s->command && !*s->command[0])
                        report(p, cmd, "command: the program must not be empty");
                return;
        }
        if (cmd->type != YAML_MAPPING_NODE) {
                report(p, cmd, "command: expected a mapping (entrypoint, arguments), got %s",
                       node_kind(cmd, buf));
                return;
        }

        check_keys(p, cmd, command_keys, "command", NULL);
        yaml_node_t *ep = require_field(p, cmd, "entrypoint", "command.entrypoint");
        _cleanup_free_ char *e = ep ? get_nonempty(p, ep, "command.entrypoint") : NULL;
        if (e)
                p_strv_extend(p, &s->command, e);

        yaml_node_t *args = field(p, cmd, "arguments", NULL);
        if (args && expect_type(p, args, YAML_SEQUENCE_NODE, "command.arguments"))
                YAML_SEQ_FOREACH(it, args) {
                        yaml_node_t *a = yaml_document_get_node(p->doc, *it);
                        if (expect_type(p, a, YAML_SCALAR_NODE, "command.arguments[]") && e)
                                p_strv_extend(p, &s->command, yaml_scalar(a));
                }
}

static void add_dependency(Parse *p, Step *s, StepNodes *sn, yaml_node_t *d)
{
        size_t n = strv_length(s->depends_on);

        if (!expect_type(p, d, YAML_SCALAR_NODE, "dependsOn[]"))
                return;
        if (strv_contains(s->depends_on, yaml_scalar(d))) {
                report(p, d, "dependsOn: '%s' is listed twice", yaml_scalar(d));
                return;
        }
        p_strv_extend(p, &s->depends_on, yaml_scalar(d));
        if (strv_length(s->depends_on) == n + 1)
                sn->deps[n] = d;
}

static void parse_dependencies(Parse *p, Step *s, StepNodes *sn, yaml_node_t *v)
{
        /* A single name may stand without a list. */
        if (v->type == YAML_SCALAR_NODE) {
                sn->deps = check_alloc(p, new0(yaml_node_t *, 1));
                if (sn->deps)
                        add_dependency(p, s, sn, v);
                return;
        }
        if (!expect_type(p, v, YAML_SEQUENCE_NODE, "dependsOn"))
                return;
        sn->deps = check_alloc(p, new0(yaml_node_t *, yaml_seq_length(v)));
        if (!sn->deps)
                return;
        YAML_SEQ_FOREACH(it, v)
                add_dependency(p, s, sn, yaml_document_get_node(p->doc, *it));
}

static void parse_retries(Parse *p, Step *s, yaml_node_t *v)
{
        static const char *const retries_keys[] = { "limit", "backoffSeconds", NULL };
        yaml_node_t *l, *b;
        int64_t i;

        s->retries_backoff_usec = USEC_PER_SEC;
        if (v->type != YAML_MAPPING_NODE) {
                /* retries: 3 is the limit alone. */
                if (get_int(p, v, "retries", 0, RETRIES_MAX, &i))
                        s->retries_limit = (unsigned) i;
                return;
        }
        check_keys(p, v, retries_keys, "retries", NULL);
        l = require_field(p, v, "limit", "retries.limit");
        if (get_int(p, l, "retries.limit", 0, RETRIES_MAX, &i))
                s->retries_limit = (unsigned) i;
        b = field(p, v, "backoffSeconds", NULL);
        if (get_int(p, b, "retries.backoffSeconds", 0, BACKOFF_SECONDS_MAX, &i))
                s->retries_backoff_usec = (uint64_t) i * USEC_PER_SEC;
}

typedef struct LimitKind {
        const char *field;
        int (*parse)(const char *s, uint64_t *ret);
        const char *range;    /* what is in range */
        const char *expected; /* what a valid one looks like */
} LimitKind;

static const LimitKind cpu_limit = {
        "cpuLimit",
        parse_cpu_limit,
        "more than 0, at most 1000000 cores",
        "cores like 1 or 0.5, or millicores like \"500m\"",
};

static const LimitKind memory_limit = {
        "memoryLimit",
        parse_memory_limit,
        "more than 0, at most 1Ei",
        "bytes, or a size like 256Mi, 1Gi, 512M or 1G",
};

static void parse_limit(Parse *p, yaml_node_t *v, const LimitKind *k, uint64_t *ret)
{
        const char *s;
        int r;

        if (!expect_type(p, v, YAML_SCALAR_NODE, k->field))
                return;
        s = yaml_scalar(v);
        r = k->parse(s, ret);
        if (r == -ERANGE)
                report(p, v, "%s '%s' is out of range (%s)", k->field, s, k->range);
        else if (r < 0)
                report(p, v, "invalid %s '%s' (expected %s)", k->field, s, k->expected);
}

static void parse_user(Parse *p, Step *s, yaml_node_t *v)
{
        const char *u;

        s->user = get_nonempty(p, v, "user");
        if (!s->user)
                return;
        /* A user name or a numeric id, as systemd's User= takes them. */
        for (u = s->user; *u; u++)
                if (!isalnum((unsigned char) *u) && !strchr("._-", *u))
                        break;
        if (*u || s->user[0] == '-' || strlen(s->user) > 32)
                report(p, v, "user: invalid user name '%s'", s->user);
}

static void parse_step(Parse *p, yaml_node_t *n, Step *s, StepNodes *sn)
{
        yaml_node_t *v, *run, *cmd, *cmd_key = NULL;
        int64_t i;

        sn->node = n;
        s->loc = node_loc(p, n);
        if (!expect_type(p, n, YAML_MAPPING_NODE, "step"))
                return;
        check_keys(p, n, step_keys, "a step", step_hints);

        v = require_field(p, n, "name", "a step's name");
        if (v && (s->name = get_name(p, v, "step name", false)))
                sn->name = v;

        run = field(p, n, "run", NULL);
        cmd = field(p, n, "command", &cmd_key);
        if (run && (s->run = get_string(p, run, "run"))) {
                const char *t = strstr(s->run, "{{");
                if (t)
                        report_in(p, run, (size_t) (t - s->run),
                                  "templates are not expanded in run:, pass values through "
                                  "inputs: or env: and read them as environment variables");
                else if (!s->run[strspn(s->run, " \t\r\n")])
                        report(p, run, "run: must not be empty");
        }
        if (cmd) {
                if (run)
                        report(p, cmd_key, "run: and command: are exclusive");
                parse_command(p, s, cmd);
        }
        if (!run && !cmd)
                report(p, n, "step '%s' needs run: or command:", strna(s->name));

        if ((v = field(p, n, "dependsOn", NULL)))
                parse_dependencies(p, s, sn, v);
        if ((v = field(p, n, "if", NULL)) && (s->if_expr = get_string(p, v, "if")))
                sn->if_node = v;
        if ((v = field(p, n, "inputs", NULL))) {
                parse_kv(p, v, "inputs", KEY_NAME, &s->inputs, &s->n_inputs, &sn->input_nodes);
                /* Inputs reach the step as INPUT_<NAME>: two must not land on one variable. */
                for (size_t a = 0; a < s->n_inputs; a++)
                        for (size_t b = 0; b < a; b++)
                                if (input_names_collide(s->inputs[a].key, s->inputs[b].key)) {
                                        _cleanup_free_ char *var = p_strdup(p, s->inputs[a].key);
                                        for (char *c = var; c && *c; c++)
                                                *c = isalnum((unsigned char) *c)
                                                             ? (char) toupper((unsigned char) *c)
                                                             : '_';
                                        report(p, sn->input_nodes[a],
                                               "inputs: '%s' and '%s' would both be passed as "
                                               "INPUT_%s",
                                               s->inputs[b].key, s->inputs[a].key, strna(var));
                                        break;
                                }
        }
        if ((v = field(p, n, "env", NULL))) {
                parse_kv(p, v, "env", KEY_ENV_VAR, &s->env, &s->n_env, &sn->env_nodes);
                for (size_t k = 0; k < s->n_env; k++)
                        if (startswith(s->env[k].key, "ARKEVENT_"))
                                report(p, sn->env_nodes[k],
                                       "env: %s: ARKEVENT_* variables are set by arkevent itself",
                                       s->env[k].key);
        }
        if (get_int(p, field(p, n, "timeoutSeconds", NULL), "timeoutSeconds", 1,
                    TIMEOUT_SECONDS_MAX, &i))
                s->timeout_usec = (uint64_t) i * USEC_PER_SEC;
        if ((v = field(p, n, "retries", NULL)))
                parse_retries(p, s, v);
        if ((v = field(p, n, "cpuLimit", NULL)))
                parse_limit(p, v, &cpu_limit, &s->cpu_millis);
        if ((v = field(p, n, "memoryLimit", NULL)))
                parse_limit(p, v, &memory_limit, &s->memory_bytes);
        if ((v = field(p, n, "image", NULL)))
                s->image = get_nonempty(p, v, "image");
        if ((v = field(p, n, "runtime", NULL)))
                s->runtime = get_nonempty(p, v, "runtime");
        if ((v = field(p, n, "user", NULL)))
                parse_user(p, s, v);
        if ((v = field(p, n, "volumes", NULL)))
                parse_volumes(p, v, &s->volumes, &s->n_volumes);
}

/* ---- the steps of a flow, together ------------------------------------------------------- */

typedef struct StepGraph {
        const Flow *flow;
        size_t *by_name;   /* step indexes sorted by (name, index); unnamed steps left out */
        size_t n_by_name;
        size_t *edge_start; /* n + 1 offsets into edges */
        size_t *edges;      /* the resolved dependencies of each step, as indexes */
        yaml_node_t **edge_nodes;
        uint64_t *reach; /* per step, a bit set of what it depends on, transitively; NULL if
                          * the dependencies are cyclic */
        size_t words;
} StepGraph;

static void step_graph_done(StepGraph *g)
{
        free(g->by_name);
        free(g->edge_start);
        free(g->edges);
        free(g->edge_nodes);
        free(g->reach);
}

static int by_name_cmp(const void *a, const void *b, void *userdata)
{
        const Flow *f = userdata;
        size_t x = *(const size_t *) a, y = *(const size_t *) b;
        int c = strcmp(f->steps[x].name, f->steps[y].name);
        return c != 0 ? c : (x < y ? -1 : x > y);
}

/* The first step called name, or SIZE_MAX. */
static size_t step_lookup(const StepGraph *g, const char *name)
{
        size_t lo = 0, hi = g->n_by_name;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(g->flow->steps[g->by_name[mid]].name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < g->n_by_name && streq(g->flow->steps[g->by_name[lo]].name, name))
                return g->by_name[lo];
        return SIZE_MAX;
}

typedef struct StepCheck {
        const StepGraph *graph;
        size_t reader; /* the step whose template this is; SIZE_MAX: flow level, any step */
} StepCheck;

static int step_check(const char *name, void *userdata)
{
        const StepCheck *c = userdata;
        const StepGraph *g = c->graph;
        size_t i = step_lookup(g, name);

        if (i == SIZE_MAX)
                return -ENOENT;
        if (c->reader == SIZE_MAX || !g->reach)
                return 0;
        if (!(g->reach[c->reader * g->words + i / 64] & (UINT64_C(1) << (i % 64))))
                return -ENOLINK;
        return 0;
}

static void index_names(Parse *p, StepGraph *g, StepNodes *sn)
{
        const Flow *f = g->flow;

        g->by_name = check_alloc(p, new0(size_t, f->n_steps));
        if (!g->by_name)
                return;
        for (size_t i = 0; i < f->n_steps; i++)
                if (f->steps[i].name)
                        g->by_name[g->n_by_name++] = i;
        qsort_r(g->by_name, g->n_by_name, sizeof(size_t), by_name_cmp, (void *) f);

        for (size_t k = 1; k < g->n_by_name; k++) {
                const Step *a = &f->steps[g->by_name[k - 1]], *b = &f->steps[g->by_name[k]];
                if (streq(a->name, b->name))
                        report(p, sn[g->by_name[k]].name, "duplicate step name '%s' (first at "
                                                          "line %u)",
                               b->name, a->loc.line);
        }
}

static void resolve_dependencies(Parse *p, StepGraph *g, StepNodes *sn)
{
        const Flow *f = g->flow;
        _cleanup_free_ const char **names = NULL;
        size_t n_edges = 0, e = 0;

        for (size_t i = 0; i < f->n_steps; i++)
                n_edges += strv_length(f->steps[i].depends_on);
        g->edge_start = check_alloc(p, new0(size_t, f->n_steps + 1));
        g->edges = check_alloc(p, new0(size_t, n_edges));
        g->edge_nodes = check_alloc(p, new0(yaml_node_t *, n_edges));
        names = check_alloc(p, new0(const char *, f->n_steps + 1));
        if (!g->edge_start || !g->edges || !g->edge_nodes || !names)
                return;
        for (size_t i = 0, k = 0; i < f->n_steps; i++)
                if (f->steps[i].name)
                        names[k++] = f->steps[i].name;

        for (size_t i = 0; i < f->n_steps; i++) {
                g->edge_start[i] = e;
                for (size_t k = 0; f->steps[i].depends_on && f->steps[i].depends_on[k]; k++) {
                        const char *d = f->steps[i].depends_on[k], *c;
                        size_t j = step_lookup(g, d);

                        if (j != SIZE_MAX) {
                                g->edge_nodes[e] = sn[i].deps[k];
                                g->edges[e++] = j;
                                continue;
                        }
                        c = diag_closest(d, names);
                        if (c)
                                report(p, sn[i].deps[k],
                                       "dependsOn: unknown step '%s' (did you mean '%s'?)", d, c);
                        else
                                report(p, sn[i].deps[k], "dependsOn: unknown step '%s'", d);
                }
        }
        g->edge_start[f->n_steps] = e;
}

static char *cycle_path(const Flow *f, const size_t *stack, size_t from, size_t to, size_t back)
{
        _cleanup_free_ char *path = NULL;
        size_t len = 0;

        for (size_t x = from; x <= to + 1; x++) {
                const char *name = f->steps[x <= to ? stack[x] : back].name;
                size_t l = strlen(name);
                char *np = realloc(path, len + l + 5);
                if (!np)
                        return NULL;
                path = np;
                if (x > from) {
                        memcpy(path + len, " -> ", 4);
                        len += 4;
                }
                memcpy(path + len, name, l + 1);
                len += l;
        }
        return TAKE_PTR(path);
}

/* Depth-first, without recursion. Reports every edge that closes a cycle, naming the cycle;
 * returns the steps in an order where every step comes after what it depends on, or NULL if
 * there is a cycle. */
static size_t *sort_dependencies(Parse *p, const StepGraph *g)
{
        const Flow *f = g->flow;
        size_t n = f->n_steps, n_order = 0;
        _cleanup_free_ size_t *order = NULL, *stack = NULL, *next = NULL;
        _cleanup_free_ uint8_t *color = NULL; /* 0 not seen, 1 on the stack, 2 done */
        bool cyclic = false;

        order = check_alloc(p, new0(size_t, n));
        stack = check_alloc(p, new0(size_t, n));
        next = check_alloc(p, new0(size_t, n));
        color = check_alloc(p, new0(uint8_t, n));
        if (!order || !stack || !next || !color)
                return NULL;

        for (size_t root = 0; root < n; root++) {
                size_t sp = 0;

                if (color[root] != 0)
                        continue;
                color[root] = 1;
                stack[sp++] = root;
                next[root] = g->edge_start[root];
                while (sp > 0) {
                        size_t u = stack[sp - 1], e = next[u], v;

                        if (e == g->edge_start[u + 1]) {
                                color[u] = 2;
                                order[n_order++] = u;
                                sp--;
                                continue;
                        }
                        next[u]++;
                        v = g->edges[e];
                        if (color[v] == 0) {
                                color[v] = 1;
                                next[v] = g->edge_start[v];
                                stack[sp++] = v;
                        } else if (color[v] == 1) {
                                _cleanup_free_ char *path = NULL;
                                size_t from = 0;

                                while (stack[from] != v)
                                        from++;
                                path = cycle_path(f, stack, from, sp - 1, v);
                                if (!path)
                                        fatal(p, -ENOMEM);
                                report(p, g->edge_nodes[e], "dependency cycle: %s", strna(path));
                                cyclic = true;
                        }
                }
        }
        return cyclic ? NULL : TAKE_PTR(order);
}

static void compute_reach(Parse *p, StepGraph *g, const size_t *order)
{
        size_t n = g->flow->n_steps;

        g->words = (n + 63) / 64;
        g->reach = check_alloc(p, new0(uint64_t, n * g->words));
        if (!g->reach)
                return;
        for (size_t k = 0; k < n; k++) {
                size_t u = order[k];
                uint64_t *ru = g->reach + u * g->words;
                for (size_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
                        size_t v = g->edges[e];
                        const uint64_t *rv = g->reach + v * g->words;
                        for (size_t w = 0; w < g->words; w++)
                                ru[w] |= rv[w];
                        ru[v / 64] |= UINT64_C(1) << (v % 64);
                }
        }
}

/* Names unique, dependencies known and acyclic, templates reading only what is there. */
static void check_steps(Parse *p, Flow *f, StepNodes *sn, yaml_node_t *output)
{
        _cleanup_(step_graph_done) StepGraph g = { .flow = f };
        _cleanup_free_ size_t *order = NULL;

        index_names(p, &g, sn);
        if (p->error < 0)
                return;
        resolve_dependencies(p, &g, sn);
        if (p->error < 0)
                return;
        order = sort_dependencies(p, &g);
        if (order)
                compute_reach(p, &g, order);
        if (p->error < 0)
                return;

        for (size_t i = 0; i < f->n_steps; i++) {
                StepCheck c = { &g, i };
                check_template(p, sn[i].if_node, TEMPLATE_ALL, step_check, &c);
                for (size_t k = 0; k < f->steps[i].n_inputs; k++)
                        check_template(p, sn[i].input_nodes[k], TEMPLATE_ALL, step_check, &c);
                for (size_t k = 0; k < f->steps[i].n_env; k++)
                        check_template(p, sn[i].env_nodes[k], TEMPLATE_ALL, step_check, &c);
        }
        if (output) {
                StepCheck c = { &g, SIZE_MAX };
                check_template(p, output, TEMPLATE_ALL, step_check, &c);
        }
}

static yaml_node_t *step_node(Parse *p, yaml_node_t *seq, size_t i)
{
        return yaml_document_get_node(p->doc, seq->data.sequence.items.start[i]);
}

/* Parses the steps (or activities) of a flow, and its output: (in spec), which reads them. */
static void parse_steps(Parse *p, Flow *f, yaml_node_t *seq, const char *what, yaml_node_t *spec)
{
        yaml_node_t *output = f->output ? field(p, spec, "output", NULL) : NULL;
        StepNodes *sn;
        size_t n;

        if (!expect_type(p, seq, YAML_SEQUENCE_NODE, what))
                return;
        n = yaml_seq_length(seq);
        if (n == 0) {
                report(p, seq, "%s: at least one is needed", what);
                return;
        }
        if (n > STEPS_MAX) {
                report(p, seq, "%s: too many (%zu, at most %u)", what, n, STEPS_MAX);
                return;
        }
        f->steps = check_alloc(p, new0(Step, n));
        sn = check_alloc(p, new0(StepNodes, n));
        if (f->steps && sn) {
                f->n_steps = n;
                for (size_t i = 0; i < n; i++)
                        parse_step(p, step_node(p, seq, i), &f->steps[i], &sn[i]);
                if (p->error == 0)
                        check_steps(p, f, sn, output);
        }
        for (size_t i = 0; sn && i < n; i++) {
                free(sn[i].deps);
                free(sn[i].input_nodes);
                free(sn[i].env_nodes);
        }
        free(sn);
}

/* ---- flows and workflows ----------------------------------------------------------------- */

static void parse_webhooks(Parse *p, Flow *f, yaml_node_t *seq)
{
        static const char *const webhook_keys[] = { "name", "url", "secretFile", NULL };

        if (!expect_type(p, seq, YAML_SEQUENCE_NODE, "webhooks"))
                return;
        f->webhooks = check_alloc(p, new0(Webhook, yaml_seq_length(seq)));
        if (!f->webhooks)
                return;
        YAML_SEQ_FOREACH(it, seq) {
                yaml_node_t *w = yaml_document_get_node(p->doc, *it), *v;
                Webhook *h = &f->webhooks[f->n_webhooks];

                if (!expect_type(p, w, YAML_MAPPING_NODE, "webhooks[]"))
                        continue;
                check_keys(p, w, webhook_keys, "a webhook", NULL);
                if ((v = field(p, w, "name", NULL)))
                        h->name = get_nonempty(p, v, "webhooks[].name");
                v = require_field(p, w, "url", "webhooks[].url");
                if (v && (h->url = get_string(p, v, "webhooks[].url")) &&
                    !startswith(h->url, "http://") && !startswith(h->url, "https://"))
                        report(p, v, "webhooks[].url: '%s' must start with http:// or https://",
                               h->url);
                if ((v = field(p, w, "secretFile", NULL)) &&
                    (h->secret_file = get_string(p, v, "webhooks[].secretFile")) &&
                    h->secret_file[0] != '/')
                        report(p, v, "webhooks[].secretFile: '%s' must be an absolute path",
                               h->secret_file);
                f->n_webhooks++;
        }
}

static void parse_storage_policy(Parse *p, Flow *f, yaml_node_t *v)
{
        static const char *const storage_keys[] = { "type", NULL };
        static const char *const storage_types[] = { "default", "ephemeral", NULL };
        yaml_node_t *t;

        if (!expect_type(p, v, YAML_MAPPING_NODE, "storagePolicy"))
                return;
        check_keys(p, v, storage_keys, "storagePolicy", NULL);
        t = require_field(p, v, "type", "storagePolicy.type");
        if (t && get_word(p, t, "storagePolicy.type", storage_types) >= 0)
                f->storage_policy = p_strdup(p, yaml_scalar(t));
}

/* What ArkFlow specs and AkoFlow workflow specs share. */
static void parse_flow_common(Parse *p, Flow *f, yaml_node_t *spec)
{
        yaml_node_t *v;
        int64_t i;

        if ((v = field(p, spec, "input", NULL)) && expect_type(p, v, YAML_MAPPING_NODE, "input"))
                f->input_defaults = to_json(p, v, "input");
        /* output: is checked with the steps, which it may read. */
        if ((v = field(p, spec, "output", NULL)))
                f->output = get_string(p, v, "output");
        if (get_int(p, field(p, spec, "timeoutSeconds", NULL), "timeoutSeconds", 1,
                    TIMEOUT_SECONDS_MAX, &i))
                f->timeout_usec = (uint64_t) i * USEC_PER_SEC;
        if (get_int(p, field(p, spec, "concurrency", NULL), "concurrency", 0, CONCURRENCY_MAX,
                    &i))
                f->concurrency = (unsigned) i;
        if ((v = field(p, spec, "webhooks", NULL)))
                parse_webhooks(p, f, v);
        if ((v = field(p, spec, "options", NULL)) &&
            expect_type(p, v, YAML_MAPPING_NODE, "options")) {
                static const char *const options_keys[] = { "event", NULL };
                yaml_node_t *e;

                check_keys(p, v, options_keys, "options", NULL);
                if ((e = field(p, v, "event", NULL)))
                        f->event_topic = get_name(p, e, "options.event", true);
        }
        if ((v = field(p, spec, "runtime", NULL)))
                f->runtime = get_nonempty(p, v, "runtime");
        if ((v = field(p, spec, "image", NULL)))
                f->image = get_nonempty(p, v, "image");
        if ((v = field(p, spec, "mountPath", NULL)) &&
            (f->mount_path = get_string(p, v, "mountPath")) && f->mount_path[0] != '/')
                report(p, v, "mountPath: '%s' must be an absolute path", f->mount_path);
        if ((v = field(p, spec, "storagePolicy", NULL)))
                parse_storage_policy(p, f, v);
        if ((v = field(p, spec, "volumes", NULL)))
                parse_volumes(p, v, &f->volumes, &f->n_volumes);
}

static Flow *flow_new(Parse *p, ResourceKind kind)
{
        Flow *f = check_alloc(p, new0(Flow, 1));
        if (f) {
                f->n_ref = 1;
                f->kind = kind;
        }
        return f;
}

static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec", "status",
                                        NULL };
static const Hint top_hints[] = {
        { "name", "metadata.name" },
        { "namespace", "metadata.namespace" },
        { "labels", "metadata.labels" },
        { "steps", "spec.steps" },
        { "source", "spec.source" },
        { "targets", "spec.targets" },
        {},
};
static const char *const metadata_keys[] = { "name", "namespace", "labels", "annotations", NULL };
static const char *const flow_spec_keys[] = {
        "steps",   "input", "output",        "timeoutSeconds", "concurrency", "webhooks",
        "options", "runtime", "image", "storagePolicy", "volumes",   "mountPath",
        "description", NULL,
};
static const Hint flow_spec_hints[] = {
        { "activities", "steps" },
        { "event", "options.event" },
        {},
};
static const char *const workflow_keys[] = { "name", "namespace", "spec", NULL };
static const char *const workflow_spec_keys[] = {
        "runtime", "image",  "storagePolicy", "webhooks",       "volumes",     "mountPath",
        "activities", "input", "output",     "timeoutSeconds", "concurrency", NULL,
};
static const Hint workflow_spec_hints[] = { { "steps", "activities" }, {} };

static void parse_metadata(Parse *p, yaml_node_t *root, ResourceDoc *d, bool *ret_ns_broken)
{
        static const struct {
                const char *key, *what;
        } free_maps[] = {
                { "labels", "metadata.labels" },
                { "annotations", "metadata.annotations" },
        };
        yaml_node_t *md = require_field(p, root, "metadata", "metadata (with name)"), *v;

        if (!md || !expect_type(p, md, YAML_MAPPING_NODE, "metadata"))
                return;
        check_keys(p, md, metadata_keys, "metadata", NULL);
        v = require_field(p, md, "name", "metadata.name");
        if (v) {
                d->name_loc = node_loc(p, v);
                d->name = get_name(p, v, "metadata.name", true);
        }
        if ((v = field(p, md, "namespace", NULL))) {
                d->namespace = get_name(p, v, "metadata.namespace", true);
                *ret_ns_broken = !d->namespace;
        }
        /* Accepted and checked, not kept: nothing reads them yet. */
        for (size_t i = 0; i < ELEMENTSOF(free_maps); i++)
                if ((v = field(p, md, free_maps[i].key, NULL))) {
                        KeyValue *kv = NULL;
                        size_t n = 0;
                        parse_kv(p, v, free_maps[i].what, KEY_ANY, &kv, &n, NULL);
                        key_values_free(kv, n);
                }
}

static void parse_api_version(Parse *p, yaml_node_t *root)
{
        yaml_node_t *v = field(p, root, "apiVersion", NULL);

        if (v && expect_type(p, v, YAML_SCALAR_NODE, "apiVersion") &&
            !streq(yaml_scalar(v), API_VERSION))
                report(p, v, "unsupported apiVersion '%s' (expected %s)", yaml_scalar(v),
                       API_VERSION);
}

static void parse_flow(Parse *p, yaml_node_t *root, ResourceDoc *d, bool *ret_ns_broken)
{
        yaml_node_t *spec;
        Flow *f;

        check_keys(p, root, top_keys, "an ArkFlow", top_hints);
        parse_api_version(p, root);
        parse_metadata(p, root, d, ret_ns_broken);
        f = d->flow = flow_new(p, RESOURCE_FLOW);
        if (!f)
                return;

        spec = require_field(p, root, "spec", "spec (with steps)");
        if (!spec || !expect_type(p, spec, YAML_MAPPING_NODE, "spec"))
                return;
        check_keys(p, spec, flow_spec_keys, "spec", flow_spec_hints);
        parse_flow_common(p, f, spec);
        yaml_node_t *steps = require_field(p, spec, "steps", "spec.steps");
        if (steps)
                parse_steps(p, f, steps, "steps", spec);
}

static void parse_workflow(Parse *p, yaml_node_t *root, ResourceDoc *d, bool *ret_ns_broken)
{
        yaml_node_t *spec, *v;
        Flow *f;

        check_keys(p, root, workflow_keys, "a workflow", NULL);
        v = require_field(p, root, "name", "name");
        if (v) {
                d->name_loc = node_loc(p, v);
                d->name = get_name(p, v, "name", true);
        }
        if ((v = field(p, root, "namespace", NULL))) {
                d->namespace = get_name(p, v, "namespace", true);
                *ret_ns_broken = !d->namespace;
        }
        f = d->flow = flow_new(p, RESOURCE_WORKFLOW);
        if (!f)
                return;

        spec = require_field(p, root, "spec", "spec (with activities)");
        if (!spec || !expect_type(p, spec, YAML_MAPPING_NODE, "spec"))
                return;
        check_keys(p, spec, workflow_spec_keys, "spec", workflow_spec_hints);
        parse_flow_common(p, f, spec);
        v = require_field(p, spec, "activities", "spec.activities");
        if (v)
                parse_steps(p, f, v, "activities", spec);
}

/* ---- triggers ---------------------------------------------------------------------------- */

/* Every string leaf of a target's input may be a template. yaml_node_to_json() has bounded the
 * depth and size of the tree already. */
static void check_input_templates(Parse *p, yaml_node_t *n, unsigned depth)
{
        if (!n || depth >= YAML_JSON_DEPTH_MAX)
                return;
        if (n->type == YAML_SCALAR_NODE)
                check_template(p, n, TEMPLATE_TRIGGER, NULL, NULL);
        else if (n->type == YAML_SEQUENCE_NODE) {
                YAML_SEQ_FOREACH(it, n)
                        check_input_templates(p, yaml_document_get_node(p->doc, *it), depth + 1);
        } else if (n->type == YAML_MAPPING_NODE) {
                YAML_MAP_FOREACH(a, n)
                        check_input_templates(p, yaml_document_get_node(p->doc, a->value),
                                              depth + 1);
        }
}

static void parse_targets(Parse *p, Trigger *t, yaml_node_t *seq)
{
        static const char *const target_keys[] = { "pipeline", "input", NULL };
        static const Hint target_hints[] = { { "flow", "pipeline" }, { "inputs", "input" }, {} };

        if (!expect_type(p, seq, YAML_SEQUENCE_NODE, "spec.targets"))
                return;
        if (yaml_seq_length(seq) == 0) {
                report(p, seq, "spec.targets: at least one target is needed");
                return;
        }
        t->targets = check_alloc(p, new0(TriggerTarget, yaml_seq_length(seq)));
        if (!t->targets)
                return;
        YAML_SEQ_FOREACH(it, seq) {
                yaml_node_t *tn = yaml_document_get_node(p->doc, *it), *v;
                TriggerTarget *x = &t->targets[t->n_targets];

                if (!expect_type(p, tn, YAML_MAPPING_NODE, "spec.targets[]"))
                        continue;
                check_keys(p, tn, target_keys, "a target", target_hints);
                v = require_field(p, tn, "pipeline", "targets[].pipeline");
                if (!v || !(x->pipeline = get_name(p, v, "targets[].pipeline", true)))
                        continue;
                x->loc = node_loc(p, v);
                t->n_targets++;
                if ((v = field(p, tn, "input", NULL)) &&
                    expect_type(p, v, YAML_MAPPING_NODE, "targets[].input")) {
                        x->input = to_json(p, v, "targets[].input");
                        if (x->input)
                                check_input_templates(p, v, 0);
                }
        }
}

static void parse_cron(Parse *p, Trigger *t, yaml_node_t *v)
{
        _cleanup_(cron_freep) CronExpr *c = NULL;
        _cleanup_free_ char *e = NULL;
        size_t off = 0;
        int r;

        t->cron = get_nonempty(p, v, "source.cron");
        if (!t->cron)
                return;
        r = cron_parse(t->cron, &c, &e, &off);
        if (r == -EINVAL) {
                report_in(p, v, off, "invalid cron expression: %s",
                          e ?: "expected 5 fields: minute hour day-of-month month day-of-week");
                return;
        }
        if (r < 0) {
                fatal(p, r);
                return;
        }
        r = cron_to_on_calendar(c, &t->on_calendar);
        if (r == -ENOMEM)
                fatal(p, r);
        else if (r < 0)
                report(p, v, "source.cron: cannot express '%s' as a systemd calendar", t->cron);
}

/* A systemd calendar expression is checked lightly here: the characters it may hold. The
 * timer unit's own parser has the last word. */
static void add_calendar(Parse *p, Trigger *t, yaml_node_t *n)
{
        const char *s;
        size_t bad;

        if (!expect_type(p, n, YAML_SCALAR_NODE, "source.calendar"))
                return;
        s = yaml_scalar(n);
        if (!s[strspn(s, " ")]) {
                report(p, n, "source.calendar: must not be empty");
                return;
        }
        if (strlen(s) > 256) {
                report(p, n, "source.calendar: longer than 256 characters");
                return;
        }
        bad = strspn(s, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        " *,-./:~+_");
        if (s[bad]) {
                int len = 1;
                while (((unsigned char) s[bad + len] & 0xC0) == 0x80)
                        len++;
                report_in(p, n, bad, "source.calendar: unexpected character '%.*s' in a calendar "
                                     "expression",
                          len, s + bad);
                return;
        }
        p_strv_extend(p, &t->on_calendar, s);
}

static void parse_calendar(Parse *p, Trigger *t, yaml_node_t *v)
{
        if (v->type != YAML_SEQUENCE_NODE) {
                add_calendar(p, t, v);
                return;
        }
        if (yaml_seq_length(v) == 0)
                report(p, v, "source.calendar: at least one expression is needed");
        else if (yaml_seq_length(v) > CALENDARS_MAX)
                report(p, v, "source.calendar: too many expressions (at most %u)", CALENDARS_MAX);
        else
                YAML_SEQ_FOREACH(it, v)
                        add_calendar(p, t, yaml_document_get_node(p->doc, *it));
}

static void parse_flow_source(Parse *p, Trigger *t, yaml_node_t *src)
{
        static const char *const po_keys[] = { "name", "onPhase", NULL };
        static const char *const phases[] = { "Succeeded", "Failed", "Any", NULL };
        yaml_node_t *fl = field(p, src, "flow", NULL);
        yaml_node_t *po = field(p, src, "pipelineOutput", NULL);
        yaml_node_t *ph = field(p, src, "onPhase", NULL);
        int r;

        if (po && expect_type(p, po, YAML_MAPPING_NODE, "source.pipelineOutput")) {
                yaml_node_t *n = field(p, po, "name", NULL), *ph2 = field(p, po, "onPhase", NULL);

                check_keys(p, po, po_keys, "source.pipelineOutput", NULL);
                if (fl && n)
                        report(p, n, "source.flow and source.pipelineOutput.name are two "
                                     "spellings of one thing: give one");
                else if (n)
                        fl = n;
                if (ph && ph2)
                        report(p, ph2, "source.onPhase and source.pipelineOutput.onPhase are two "
                                       "spellings of one thing: give one");
                else if (ph2)
                        ph = ph2;
        }
        if (!fl)
                report(p, src, "a flow-output trigger needs source.flow (or "
                               "source.pipelineOutput.name)");
        else if ((t->flow = get_name(p, fl, "source.flow", true)))
                t->source_loc = node_loc(p, fl);

        t->on_phase = ON_PHASE_SUCCEEDED;
        if (ph && (r = get_word(p, ph, "onPhase", phases)) >= 0)
                t->on_phase = (OnPhase) r;
}

/* Which source fields go with which type (the index of trigger_type_table, and the
 * pipeline-output spelling mapped to flow-output). */
static const char *const source_fields[_TRIGGER_TYPE_MAX][4] = {
        [TRIGGER_WEBHOOK] = { "webhook" },
        [TRIGGER_CRON] = { "cron", "calendar" },
        [TRIGGER_FLOW_OUTPUT] = { "flow", "pipelineOutput", "onPhase" },
        [TRIGGER_TOPIC] = { "topic" },
};

static void check_source_fields(Parse *p, TriggerType type, yaml_node_t *src, const char *type_s)
{
        YAML_MAP_FOREACH(a, src) {
                yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
                const char *key = yaml_scalar(k);
                bool own = false, other = false;

                if (!key || streq(key, "type"))
                        continue;
                for (int i = 0; i < _TRIGGER_TYPE_MAX; i++)
                        for (size_t j = 0; j < ELEMENTSOF(source_fields[i]) && source_fields[i][j];
                             j++)
                                if (streq(source_fields[i][j], key)) {
                                        if (i == (int) type)
                                                own = true;
                                        else
                                                other = true;
                                }
                if (other && !own)
                        report(p, k, "source.%s does not apply to a %s trigger", key, type_s);
        }
}

static void parse_source(Parse *p, Trigger *t, yaml_node_t *src)
{
        static const char *const source_keys[] = { "type",    "cron",  "calendar", "flow",
                                                    "pipelineOutput", "onPhase", "topic",
                                                    "webhook", NULL };
        static const char *const types[] = { "webhook", "cron", "flow-output", "pipeline-output",
                                             "topic", NULL };
        yaml_node_t *tv, *v;
        const char *type_s;
        int type;

        if (!expect_type(p, src, YAML_MAPPING_NODE, "spec.source"))
                return;
        check_keys(p, src, source_keys, "spec.source", NULL);
        tv = require_field(p, src, "type",
                           "spec.source.type (webhook, cron, flow-output or topic)");
        if (!tv || (type = get_word(p, tv, "spec.source.type", types)) < 0)
                return;
        type_s = yaml_scalar(tv);
        t->type = streq(type_s, "pipeline-output") ? TRIGGER_FLOW_OUTPUT
                                                   : trigger_type_from_string(type_s);
        check_source_fields(p, t->type, src, type_s);

        switch (t->type) {
        case TRIGGER_WEBHOOK:
                if ((v = field(p, src, "webhook", NULL)) &&
                    expect_type(p, v, YAML_MAPPING_NODE, "source.webhook")) {
                        static const char *const webhook_keys[] = { "hmacSecretFile", NULL };
                        yaml_node_t *h;

                        check_keys(p, v, webhook_keys, "source.webhook", NULL);
                        if ((h = field(p, v, "hmacSecretFile", NULL)) &&
                            (t->hmac_secret_file = get_string(p, h, "hmacSecretFile")) &&
                            t->hmac_secret_file[0] != '/')
                                report(p, h, "hmacSecretFile: '%s' must be an absolute path",
                                       t->hmac_secret_file);
                }
                break;
        case TRIGGER_CRON: {
                yaml_node_t *c = field(p, src, "cron", NULL);
                yaml_node_t *cal = field(p, src, "calendar", NULL);
                if (c && cal)
                        report(p, cal, "source.cron and source.calendar are exclusive");
                else if (c)
                        parse_cron(p, t, c);
                else if (cal)
                        parse_calendar(p, t, cal);
                else
                        report(p, src, "a cron trigger needs source.cron (5 fields, UTC) or "
                                       "source.calendar");
                break;
        }
        case TRIGGER_FLOW_OUTPUT:
                parse_flow_source(p, t, src);
                break;
        case TRIGGER_TOPIC:
                v = require_field(p, src, "topic", "source.topic (for a topic trigger)");
                if (v)
                        t->topic = get_name(p, v, "source.topic", true);
                break;
        default:
                break;
        }
}

static void parse_trigger(Parse *p, yaml_node_t *root, ResourceDoc *d, bool *ret_ns_broken)
{
        static const char *const trigger_spec_keys[] = { "source", "targets", "concurrencyPolicy",
                                                         "suspended", NULL };
        static const char *const policies[] = { "Allow", "Forbid", "Replace", NULL };
        static const Hint trigger_spec_hints[] = { { "type", "source.type" },
                                                   { "cron", "source.cron" },
                                                   { "target", "targets" },
                                                   {} };
        yaml_node_t *spec, *v;
        Trigger *t;
        int r;

        check_keys(p, root, top_keys, "an ArkEvent", top_hints);
        parse_api_version(p, root);
        parse_metadata(p, root, d, ret_ns_broken);
        t = d->trigger = check_alloc(p, new0(Trigger, 1));
        if (!t)
                return;
        t->n_ref = 1;

        spec = require_field(p, root, "spec", "spec (with source and targets)");
        if (!spec || !expect_type(p, spec, YAML_MAPPING_NODE, "spec"))
                return;
        check_keys(p, spec, trigger_spec_keys, "spec", trigger_spec_hints);

        v = require_field(p, spec, "source", "spec.source");
        if (v)
                parse_source(p, t, v);
        v = require_field(p, spec, "targets", "spec.targets (at least one pipeline)");
        if (v)
                parse_targets(p, t, v);
        if ((v = field(p, spec, "concurrencyPolicy", NULL)) &&
            (r = get_word(p, v, "concurrencyPolicy", policies)) >= 0)
                t->concurrency_policy = (ConcurrencyPolicy) r;
        (void) get_bool(p, field(p, spec, "suspended", NULL), "suspended", &t->suspended);
}

/* ---- documents --------------------------------------------------------------------------- */

static void parse_document(Parse *p, yaml_node_t *root, ResourceDoc *d, bool *ret_ns_broken)
{
        static const char *const kinds[] = { "ArkFlow", "ArkEvent", NULL };
        yaml_node_t *kind;
        const char *k, *c;

        if (!expect_type(p, root, YAML_MAPPING_NODE, "document"))
                return;

        kind = field(p, root, "kind", NULL);
        if (kind) {
                if (!expect_type(p, kind, YAML_SCALAR_NODE, "kind"))
                        return;
                k = yaml_scalar(kind);
                if (streq(k, "ArkFlow")) {
                        d->kind = RESOURCE_FLOW;
                        parse_flow(p, root, d, ret_ns_broken);
                        return;
                }
                if (streq(k, "ArkEvent")) {
                        d->kind = RESOURCE_TRIGGER;
                        parse_trigger(p, root, d, ret_ns_broken);
                        return;
                }
                c = diag_closest(k, kinds);
                if (c)
                        report(p, kind, "unknown kind '%s' (did you mean '%s'?)", k, c);
                else
                        report(p, kind, "unknown kind '%s' (expected ArkFlow or ArkEvent)", k);
                return;
        }
        if (yaml_map_get(p->doc, root, "name", NULL) && yaml_map_get(p->doc, root, "spec", NULL)) {
                d->kind = RESOURCE_WORKFLOW;
                parse_workflow(p, root, d, ret_ns_broken);
                return;
        }
        if (yaml_map_get(p->doc, root, "metadata", NULL) ||
            yaml_map_get(p->doc, root, "apiVersion", NULL))
                report(p, root, "kind is required (ArkFlow or ArkEvent)");
        else
                report(p, root, "cannot tell what this document is: expected 'kind: ArkFlow', "
                                "'kind: ArkEvent', or an AkoFlow workflow (name and "
                                "spec.activities)");
}

/* The exact source text of a document, without its "---" line: what RawWorkflow carries, and
 * what a run keeps of the flow it runs. */
static char *document_text(Parse *p, yaml_document_t *doc)
{
        const char *text = p->cursor.text;
        size_t a = text_cursor_seek(&p->cursor, doc->start_mark.index);
        size_t b = text_cursor_seek(&p->cursor, doc->end_mark.index);

        if (b < a)
                b = a;
        if (b - a >= 3 && strncmp(text + a, "---", 3) == 0 &&
            (b - a == 3 || strchr(" \t\r\n", text[a + 3]))) {
                size_t q = a + 3;
                while (q < b && (text[q] == ' ' || text[q] == '\t'))
                        q++;
                /* Content may follow on the same line ("--- {kind: ...}"); keep that. */
                if (q == b || strchr("\r\n#", text[q])) {
                        while (q < b && text[q] != '\n')
                                q++;
                        if (q < b)
                                q++;
                }
                a = q;
        }
        return p_strdup_len(p, text + a, b - a);
}

static void syntax_error(Parse *p, yaml_parser_t *parser)
{
        unsigned line = (unsigned) parser->problem_mark.line + 1;
        unsigned column = (unsigned) parser->problem_mark.column + 1;

        if (parser->error == YAML_MEMORY_ERROR) {
                fatal(p, -ENOMEM);
                return;
        }
        if (parser->error == YAML_READER_ERROR) {
                /* Reader errors (bad encoding, control characters) have a byte offset only. */
                const char *t = p->cursor.text;
                size_t end = MIN(parser->problem_offset, p->cursor.len);
                line = column = 1;
                for (size_t i = 0; i < end; i++)
                        if (t[i] == '\n') {
                                line++;
                                column = 1;
                        } else if (((unsigned char) t[i] & 0xC0) != 0x80)
                                column++;
                report_at(p, line, column, "not valid YAML text: %s", strna(parser->problem));
                return;
        }
        if (parser->context)
                report_at(p, line, column, "YAML syntax error: %s (%s at line %zu, column %zu)",
                          strna(parser->problem), parser->context,
                          parser->context_mark.line + 1, parser->context_mark.column + 1);
        else
                report_at(p, line, column, "YAML syntax error: %s", strna(parser->problem));
}

/* Parses one document into d. */
static void load_document(Parse *p, yaml_document_t *doc, ResourceDoc *d)
{
        bool ns_broken = false;

        d->kind = _RESOURCE_KIND_INVALID;
        d->loc = (SourceLoc){ p_strdup(p, p->file), (unsigned) doc->start_mark.line + 1,
                              (unsigned) doc->start_mark.column + 1 };
        parse_document(p, yaml_document_get_root_node(doc), d, &ns_broken);
        /* A namespace that is there but unreadable leaves the document without identity: it
         * must not stand in for the default namespace. */
        if (!d->namespace && !ns_broken)
                d->namespace = p_strdup(p, "default");
        d->n_errors = p->n_errors;

        if (p->n_errors > 0 || p->error < 0 || !d->name || !d->namespace) {
                d->flow = flow_free(d->flow);
                if (p->error >= 0 && d->trigger && d->namespace) {
                        d->trigger->namespace = p_strdup(p, d->namespace);
                        d->trigger->name = p_strdup(p, d->name ?: "?");
                        d->broken_trigger = TAKE_PTR(d->trigger);
                }
                d->trigger = trigger_free(d->trigger);
        } else if (d->flow) {
                d->flow->namespace = p_strdup(p, d->namespace);
                d->flow->name = p_strdup(p, d->name);
                d->flow->raw_yaml = document_text(p, doc);
                d->flow->loc = (SourceLoc){ p_strdup(p, p->file), d->loc.line, d->loc.column };
        } else if (d->trigger) {
                d->trigger->namespace = p_strdup(p, d->namespace);
                d->trigger->name = p_strdup(p, d->name);
                d->trigger->loc = (SourceLoc){ p_strdup(p, p->file), d->loc.line, d->loc.column };
        }
}

void resource_docs_free(ResourceDoc **docs, size_t n_docs)
{
        for (size_t i = 0; i < n_docs; i++)
                resource_doc_free(docs[i]);
        free(docs);
}

/* Makes room for one more element in an array that only ever grows by one. It doubles at powers
 * of two, so its capacity need not be stored. */
#define GROW_BY_ONE(array, n)                                                                     \
        ({                                                                                        \
                int _r_ = 0;                                                                      \
                if ((n) == 0 || ((n) & ((n) - 1)) == 0) {                                         \
                        __typeof__(array) _a_ =                                                   \
                                realloc((array), ((n) > 0 ? (n) * 2 : 1) * sizeof(*(array)));     \
                        if (_a_)                                                                  \
                                (array) = _a_;                                                    \
                        else                                                                      \
                                _r_ = -ENOMEM;                                                    \
                }                                                                                 \
                _r_;                                                                              \
        })

static int docs_append(ResourceDoc ***docs, size_t *n, ResourceDoc *d)
{
        if (GROW_BY_ONE(*docs, *n) < 0)
                return -ENOMEM;
        (*docs)[(*n)++] = d;
        return 0;
}

/* Appends the placeholder for the rest of a file that cannot be read. */
static int docs_append_unreadable(ResourceDoc ***docs, size_t *n, const char *file, size_t line,
                                  size_t column)
{
        _cleanup_(resource_doc_freep) ResourceDoc *d = new0(ResourceDoc, 1);
        int r;

        if (!d)
                return -ENOMEM;
        d->unreadable = true;
        d->kind = _RESOURCE_KIND_INVALID;
        d->loc = (SourceLoc){ strdup(file), (unsigned) line, (unsigned) column };
        if (!d->loc.file)
                return -ENOMEM;
        r = docs_append(docs, n, d);
        if (r < 0)
                return r;
        TAKE_PTR(d);
        return 0;
}

int resource_text_parse(const char *name, const char *text, size_t len, ResourceDoc ***ret_docs,
                        size_t *ret_n_docs, Diagnostics *diags)
{
        _cleanup_(yaml_parser_deletep) yaml_parser_t parser = {};
        ResourceDoc **docs = NULL;
        size_t n = 0;
        Parse p = { .file = name, .diags = diags };

        /* A byte order mark is not part of the text: libyaml would count it as a character. */
        if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
                text += 3;
                len -= 3;
        }
        text_cursor_init(&p.cursor, text, len);
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
        /* Marks are mapped back to bytes of UTF-8 text: nothing else may be read. */
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

        while (p.error == 0) {
                _cleanup_(yaml_document_deletep) yaml_document_t doc = {};
                _cleanup_(resource_doc_freep) ResourceDoc *d = NULL;
                yaml_node_t *root;

                p.doc = &doc;
                p.n_errors = 0;
                if (!yaml_parser_load(&parser, &doc)) {
                        /* What came before stands; what follows cannot be read. */
                        syntax_error(&p, &parser);
                        if (p.error == 0)
                                fatal(&p, docs_append_unreadable(&docs, &n, name,
                                                                 parser.problem_mark.line + 1,
                                                                 parser.problem_mark.column + 1));
                        break;
                }
                root = yaml_document_get_root_node(&doc);
                if (!root)
                        break; /* the end of the stream */
                if (yaml_scalar_is_null(root))
                        continue; /* an empty document, or only comments */

                d = check_alloc(&p, new0(ResourceDoc, 1));
                if (!d)
                        break;
                load_document(&p, &doc, d);
                if (p.error == 0)
                        fatal(&p, docs_append(&docs, &n, d));
                if (p.error == 0)
                        TAKE_PTR(d);
        }

        if (p.error < 0) {
                resource_docs_free(docs, n);
                return p.error;
        }
        *ret_docs = docs;
        *ret_n_docs = n;
        return 0;
}

int resource_file_parse(const char *path, ResourceDoc ***ret_docs, size_t *ret_n_docs,
                        Diagnostics *diags)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = read_file_capped(path, RESOURCE_FILE_SIZE_MAX + 1, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && len > RESOURCE_FILE_SIZE_MAX)
                r = diag_add(diags, DIAG_ERROR, path, 1, 1,
                             "the file is larger than %u MiB, not reading it",
                             RESOURCE_FILE_SIZE_MAX / 1024 / 1024);
        else if (r < 0)
                r = diag_add(diags, DIAG_ERROR, path, 1, 1, "cannot read the file: %s",
                             strerror(-r));
        else
                return resource_text_parse(path, text, len, ret_docs, ret_n_docs, diags);
        if (r < 0)
                return r;
        {
                ResourceDoc **docs = NULL;
                size_t n = 0;

                r = docs_append_unreadable(&docs, &n, path, 1, 1);
                if (r < 0)
                        return r;
                *ret_docs = docs;
                *ret_n_docs = n;
        }
        return 0;
}

static int yaml_file_filter(const struct dirent *de)
{
        return de->d_name[0] != '.' &&
               (endswith(de->d_name, ".yaml") || endswith(de->d_name, ".yml"));
}

int resource_dir_parse(const char *dir, ResourceDoc ***docs, size_t *n_docs, Diagnostics *diags)
{
        struct dirent **names = NULL;
        int n, r = 0;

        n = scandir(dir, &names, yaml_file_filter, alphasort);
        if (n < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ENOMEM)
                        return -ENOMEM;
                return diag_add(diags, DIAG_ERROR, dir, 1, 1, "cannot read the directory: %m");
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                ResourceDoc **more = NULL, **nd;
                size_t n_more = 0;

                if (r >= 0 && asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
                        path = NULL;
                        r = -ENOMEM;
                }
                if (r >= 0)
                        r = resource_file_parse(path, &more, &n_more, diags);
                if (r >= 0 && n_more > 0) {
                        nd = realloc(*docs, (*n_docs + n_more) * sizeof(ResourceDoc *));
                        if (!nd)
                                r = -ENOMEM;
                        else {
                                memcpy(nd + *n_docs, more, n_more * sizeof(ResourceDoc *));
                                *docs = nd;
                                *n_docs += n_more;
                                n_more = 0;
                        }
                }
                resource_docs_free(more, n_more);
                free(names[i]);
        }
        free(names);
        return r;
}

/* ---- the registry ------------------------------------------------------------------------ */

static bool doc_is_flow(const ResourceDoc *d)
{
        return d->kind == RESOURCE_FLOW || d->kind == RESOURCE_WORKFLOW;
}

static int registry_push_flow(Registry *reg, Flow *f)
{
        if (GROW_BY_ONE(reg->flows, reg->n_flows) < 0)
                return -ENOMEM;
        reg->flows[reg->n_flows++] = flow_ref(f);
        return 0;
}

static int registry_push_trigger(Registry *reg, Trigger *t)
{
        if (GROW_BY_ONE(reg->triggers, reg->n_triggers) < 0)
                return -ENOMEM;
        reg->triggers[reg->n_triggers++] = trigger_ref(t);
        return 0;
}

static const SourceLoc *doc_name_loc(const ResourceDoc *d)
{
        return d->name_loc.file ? &d->name_loc : &d->loc;
}

/* Documents sort by what names them: flows and workflows share one set of names, triggers have
 * their own; then by namespace, name, and position, so the first definition leads. */
static int doc_identity_cmp(const void *a, const void *b, void *userdata)
{
        ResourceDoc *const *docs = userdata;
        size_t i = *(const size_t *) a, j = *(const size_t *) b;
        const ResourceDoc *x = docs[i], *y = docs[j];
        int c;

        if (doc_is_flow(x) != doc_is_flow(y))
                return doc_is_flow(x) ? -1 : 1;
        c = strcmp(x->namespace, y->namespace);
        if (c == 0)
                c = strcmp(x->name, y->name);
        return c != 0 ? c : (i < j ? -1 : i > j);
}

/* For every document with an identity, the index of the first document of that identity (its
 * own index if it is the first); SIZE_MAX for documents without one. */
static size_t *find_first_definitions(ResourceDoc *const *docs, size_t n_docs)
{
        _cleanup_free_ size_t *order = new0(size_t, n_docs), *first = new0(size_t, n_docs);
        size_t n = 0;

        if (!order || !first)
                return NULL;
        for (size_t i = 0; i < n_docs; i++) {
                first[i] = SIZE_MAX;
                /* Without a kind, namespace and name, a document can neither clash with nor
                 * stand for anything: its own errors are all there is to say. */
                if ((int) docs[i]->kind >= 0 && docs[i]->namespace && docs[i]->name)
                        order[n++] = i;
        }
        qsort_r(order, n, sizeof(size_t), doc_identity_cmp, (void *) docs);
        for (size_t k = 0; k < n; k++) {
                const ResourceDoc *x = k > 0 ? docs[order[k - 1]] : NULL, *y = docs[order[k]];
                if (x && doc_is_flow(x) == doc_is_flow(y) && streq(x->namespace, y->namespace) &&
                    streq(x->name, y->name))
                        first[order[k]] = first[order[k - 1]];
                else
                        first[order[k]] = order[k];
        }
        return TAKE_PTR(first);
}

static int add_document(Registry *reg, ResourceDoc *const *docs, size_t i, size_t first_i,
                        const Registry *previous, Diagnostics *diags)
{
        const ResourceDoc *d = docs[i], *first = first_i != i ? docs[first_i] : NULL;
        const SourceLoc *at = doc_name_loc(d);
        const char *what = doc_is_flow(d) ? "flow" : "trigger";
        Flow *f = d->flow;
        Trigger *t = d->trigger;

        if (first) {
                const SourceLoc *fl = doc_name_loc(first);
                return diag_add(diags, DIAG_ERROR, at->file, at->line, at->column,
                                "duplicate %s '%s' in namespace %s (first defined at %s:%u:%u)",
                                what, d->name, d->namespace, fl->file, fl->line, fl->column);
        }

        if (!f && !t && previous) {
                if (doc_is_flow(d))
                        f = registry_find_flow(previous, d->namespace, d->name);
                else
                        t = registry_find_trigger(previous, d->namespace, d->name);
                if ((f || t) &&
                    diag_add(diags, DIAG_WARNING, at->file, at->line, at->column,
                             "keeping the previous version of %s %s/%s in effect until this one "
                             "is fixed",
                             what, d->namespace, d->name) < 0)
                        return -ENOMEM;
        }
        if (f)
                return registry_push_flow(reg, f);
        if (t)
                return registry_push_trigger(reg, t);
        return 0;
}

/* Whether a readable document of docs names this flow (or trigger). */
static bool doc_names(ResourceDoc *const *docs, size_t n_docs, bool flow, const char *ns,
                      const char *name)
{
        for (size_t i = 0; i < n_docs; i++)
                if (docs[i]->name && docs[i]->namespace && (int) docs[i]->kind >= 0 &&
                    doc_is_flow(docs[i]) == flow && streq(docs[i]->namespace, ns) &&
                    streq(docs[i]->name, name))
                        return true;
        return false;
}

/* Whether a previous resource (from file, called ns/name) is to be kept for an unreadable
 * file at: it came from that file, and nothing that could be read defines it now. */
static bool keep_candidate(const Registry *reg, ResourceDoc *const *docs, size_t n_docs,
                           const SourceLoc *at, bool flow, const SourceLoc *from, const char *ns,
                           const char *name)
{
        return streq_ptr(from->file, at->file) && !doc_names(docs, n_docs, flow, ns, name) &&
               !(flow ? (void *) registry_find_flow(reg, ns, name)
                      : (void *) registry_find_trigger(reg, ns, name));
}

static int keep_warning(Diagnostics *diags, const SourceLoc *at, const char *what,
                        const char *ns, const char *name)
{
        return diag_add(diags, DIAG_WARNING, at->file, at->line, at->column,
                        "keeping the previous version of %s %s/%s in effect until the file can "
                        "be read again",
                        what, ns, name);
}

/* A file that cannot be read to its end: what the previous registry took from it, and no
 * readable document names, stays in effect. A typo must not take a live trigger away. */
static int keep_unread(Registry *reg, ResourceDoc *const *docs, size_t n_docs,
                       const ResourceDoc *stub, const Registry *previous, Diagnostics *diags)
{
        const SourceLoc *at = &stub->loc;
        int r = 0;

        for (size_t i = 0; i < previous->n_flows && r >= 0; i++) {
                Flow *f = previous->flows[i];
                if (keep_candidate(reg, docs, n_docs, at, true, &f->loc, f->namespace, f->name))
                        r = keep_warning(diags, at, "flow", f->namespace, f->name) ?:
                            registry_push_flow(reg, f);
        }
        for (size_t i = 0; i < previous->n_triggers && r >= 0; i++) {
                Trigger *t = previous->triggers[i];
                if (keep_candidate(reg, docs, n_docs, at, false, &t->loc, t->namespace, t->name))
                        r = keep_warning(diags, at, "trigger", t->namespace, t->name) ?:
                            registry_push_trigger(reg, t);
        }
        return r;
}

/* The flows of a registry sorted by namespace and name, for lookups in log n. */
typedef struct FlowIndex {
        const Registry *reg;
        size_t *sorted;
} FlowIndex;

static int flow_cmp(const void *a, const void *b, void *userdata)
{
        const Registry *reg = userdata;
        const Flow *x = reg->flows[*(const size_t *) a], *y = reg->flows[*(const size_t *) b];
        int c = strcmp(x->namespace, y->namespace);
        return c != 0 ? c : strcmp(x->name, y->name);
}

static int flow_index_build(FlowIndex *idx, const Registry *reg)
{
        idx->reg = reg;
        idx->sorted = new0(size_t, reg->n_flows);
        if (!idx->sorted)
                return -ENOMEM;
        for (size_t i = 0; i < reg->n_flows; i++)
                idx->sorted[i] = i;
        qsort_r(idx->sorted, reg->n_flows, sizeof(size_t), flow_cmp, (void *) reg);
        return 0;
}

static void flow_index_done(FlowIndex *idx)
{
        free(idx->sorted);
}

/* The index of the flow ns/name in the registry, or SIZE_MAX. */
static size_t flow_index_find(const FlowIndex *idx, const char *ns, const char *name)
{
        size_t lo = 0, hi = idx->reg->n_flows;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const Flow *f = idx->reg->flows[idx->sorted[mid]];
                int c = strcmp(f->namespace, ns);
                if (c == 0)
                        c = strcmp(f->name, name);
                if (c == 0)
                        return idx->sorted[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return SIZE_MAX;
}

/* The flow-output graph: flow -> the flows its completion fires. */
typedef struct FlowGraph {
        const Registry *reg;
        size_t *edge_start; /* per flow, into edges */
        size_t *edges;
        size_t *queue, *parent;
        bool *seen;
        size_t *scc; /* per flow, its strongly connected component */
} FlowGraph;

static void flow_graph_done(FlowGraph *g)
{
        free(g->edge_start);
        free(g->edges);
        free(g->queue);
        free(g->parent);
        free(g->seen);
        free(g->scc);
}

static int flow_graph_build(FlowGraph *g, const Registry *reg, const FlowIndex *index)
{
        size_t n = reg->n_flows, n_edges = 0, e = 0;
        _cleanup_free_ size_t *from = NULL, *to = NULL;

        g->reg = reg;
        for (size_t i = 0; i < reg->n_triggers; i++)
                if (reg->triggers[i]->type == TRIGGER_FLOW_OUTPUT)
                        n_edges += reg->triggers[i]->n_targets;
        from = new0(size_t, n_edges);
        to = new0(size_t, n_edges);
        g->edge_start = new0(size_t, n + 1);
        g->edges = new0(size_t, n_edges);
        g->queue = new0(size_t, n);
        g->parent = new0(size_t, n);
        g->seen = new0(bool, n);
        if (!from || !to || !g->edge_start || !g->edges || !g->queue || !g->parent || !g->seen)
                return -ENOMEM;

        for (size_t i = 0; i < reg->n_triggers; i++) {
                const Trigger *t = reg->triggers[i];
                size_t a;
                if (t->type != TRIGGER_FLOW_OUTPUT || !t->flow)
                        continue;
                a = flow_index_find(index, t->namespace, t->flow);
                for (size_t k = 0; a != SIZE_MAX && k < t->n_targets; k++) {
                        size_t b = flow_index_find(index, t->namespace, t->targets[k].pipeline);
                        if (b != SIZE_MAX) {
                                from[e] = a;
                                to[e++] = b;
                        }
                }
        }
        /* Counting sort of the edges by origin. */
        for (size_t k = 0; k < e; k++)
                g->edge_start[from[k] + 1]++;
        for (size_t i = 0; i < n; i++)
                g->edge_start[i + 1] += g->edge_start[i];
        {
                _cleanup_free_ size_t *fill = new0(size_t, n + 1);
                if (!fill)
                        return -ENOMEM;
                memcpy(fill, g->edge_start, (n + 1) * sizeof(size_t));
                for (size_t k = 0; k < e; k++)
                        g->edges[fill[from[k]]++] = to[k];
        }
        return 0;
}

/* Tarjan's strongly connected components, without recursion: an edge lies on a cycle exactly
 * when both its ends are in one component. Linear, however long the chains of triggers. */
static int flow_graph_components(FlowGraph *g)
{
        size_t n = g->reg->n_flows, counter = 0, comp = 0;
        _cleanup_free_ size_t *idx = new0(size_t, n), *low = new0(size_t, n),
                              *stack = new0(size_t, n), *calls = new0(size_t, n),
                              *next = new0(size_t, n);
        _cleanup_free_ bool *on_stack = new0(bool, n);

        g->scc = new0(size_t, n);
        if (!idx || !low || !stack || !calls || !next || !on_stack || !g->scc)
                return -ENOMEM;
        for (size_t v = 0; v < n; v++)
                idx[v] = SIZE_MAX;

        for (size_t root = 0; root < n; root++) {
                size_t sp = 0, cp = 0;

                if (idx[root] != SIZE_MAX)
                        continue;
                idx[root] = low[root] = counter++;
                stack[sp++] = root;
                on_stack[root] = true;
                next[root] = g->edge_start[root];
                calls[cp++] = root;
                while (cp > 0) {
                        size_t v = calls[cp - 1];

                        if (next[v] < g->edge_start[v + 1]) {
                                size_t w = g->edges[next[v]++];
                                if (idx[w] == SIZE_MAX) {
                                        idx[w] = low[w] = counter++;
                                        stack[sp++] = w;
                                        on_stack[w] = true;
                                        next[w] = g->edge_start[w];
                                        calls[cp++] = w;
                                } else if (on_stack[w])
                                        low[v] = MIN(low[v], idx[w]);
                                continue;
                        }
                        if (low[v] == idx[v]) {
                                size_t w;
                                do {
                                        w = stack[--sp];
                                        on_stack[w] = false;
                                        g->scc[w] = comp;
                                } while (w != v);
                                comp++;
                        }
                        cp--;
                        if (cp > 0)
                                low[calls[cp - 1]] = MIN(low[calls[cp - 1]], low[v]);
                }
        }
        return 0;
}

/* Breadth-first from flow a: if it reaches flow b, returns the path "b -> a -> ... -> b" (the
 * cycle that the edge b -> a closes), else NULL with 0. */
static int flow_graph_cycle(FlowGraph *g, size_t a, size_t b, char **ret)
{
        size_t n = g->reg->n_flows, head = 0, tail = 0, len = 0, hops = 0;
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ size_t *chain = NULL;

        memset(g->seen, 0, n * sizeof(bool));
        g->seen[a] = true;
        g->parent[a] = SIZE_MAX;
        g->queue[tail++] = a;
        while (head < tail && !g->seen[b]) {
                size_t u = g->queue[head++];
                for (size_t e = g->edge_start[u]; e < g->edge_start[u + 1]; e++) {
                        size_t v = g->edges[e];
                        if (g->seen[v])
                                continue;
                        g->seen[v] = true;
                        g->parent[v] = u;
                        g->queue[tail++] = v;
                }
        }
        *ret = NULL;
        if (!g->seen[b])
                return 0;

        /* Walk back from b to a, then print forwards, starting at b. */
        chain = new0(size_t, n + 1);
        if (!chain)
                return -ENOMEM;
        for (size_t v = b; v != SIZE_MAX; v = g->parent[v])
                chain[hops++] = v;
        for (size_t k = 0; k <= hops; k++) {
                const char *name = g->reg->flows[k == 0 ? b : chain[hops - k]]->name;
                size_t l = strlen(name);
                char *np = realloc(path, len + l + 5);
                if (!np)
                        return -ENOMEM;
                path = np;
                if (k > 0) {
                        memcpy(path + len, " -> ", 4);
                        len += 4;
                }
                memcpy(path + len, name, l + 1);
                len += l;
        }
        *ret = TAKE_PTR(path);
        return 1;
}

/* Reports flow-output triggers on a cycle and drops them from reg. */
static int drop_flow_output_cycles(Registry *reg, const FlowIndex *index, Diagnostics *diags)
{
        _cleanup_(flow_graph_done) FlowGraph g = {};
        _cleanup_free_ bool *drop = NULL;
        size_t k = 0, n_paths = 0;
        int r;

        r = flow_graph_build(&g, reg, index);
        if (r >= 0)
                r = flow_graph_components(&g);
        if (r < 0)
                return r;
        drop = new0(bool, reg->n_triggers);
        if (!drop)
                return -ENOMEM;

        for (size_t i = 0; i < reg->n_triggers; i++) {
                const Trigger *t = reg->triggers[i];
                size_t a;

                if (t->type != TRIGGER_FLOW_OUTPUT || !t->flow)
                        continue;
                a = flow_index_find(index, t->namespace, t->flow);
                for (size_t x = 0; a != SIZE_MAX && x < t->n_targets && !drop[i]; x++) {
                        _cleanup_free_ char *path = NULL;
                        size_t b = flow_index_find(index, t->namespace, t->targets[x].pipeline);

                        if (b == SIZE_MAX || g.scc[a] != g.scc[b])
                                continue;
                        drop[i] = true;
                        /* Naming the whole cycle costs a search; a few are plenty to read. */
                        if (n_paths < CYCLE_PATHS_MAX) {
                                n_paths++;
                                r = flow_graph_cycle(&g, b, a, &path);
                                if (r < 0)
                                        return r;
                        }
                        r = diag_add(diags, DIAG_ERROR, t->source_loc.file, t->source_loc.line,
                                     t->source_loc.column,
                                     "flow-output cycle: %s%s%s; trigger %s/%s would fire "
                                     "forever and is not loaded",
                                     path ?: t->flow, path ? "" : " -> ... -> ",
                                     path ? "" : t->flow, t->namespace, t->name);
                        if (r < 0)
                                return r;
                }
        }
        for (size_t i = 0; i < reg->n_triggers; i++)
                if (drop[i])
                        trigger_free(reg->triggers[i]);
                else
                        reg->triggers[k++] = reg->triggers[i];
        reg->n_triggers = k;
        return 0;
}

/* Whether any document, valid or not, defines flow ns/name. */
static bool docs_name_flow(ResourceDoc *const *docs, size_t n_docs, const char *ns,
                           const char *name)
{
        for (size_t i = 0; i < n_docs; i++)
                if (doc_is_flow(docs[i]) && docs[i]->namespace && docs[i]->name &&
                    streq(docs[i]->namespace, ns) && streq(docs[i]->name, name))
                        return true;
        return false;
}

/* What spans documents: the flows that a trigger names exist. For a broken trigger (docs given),
 * a flow that some broken document defines counts as existing: its own errors say enough. */
static int check_trigger_refs(const Trigger *t, const FlowIndex *index, ResourceDoc *const *docs,
                              size_t n_docs, Diagnostics *diags)
{
        int r;

        for (size_t k = 0; k < t->n_targets; k++) {
                const TriggerTarget *x = &t->targets[k];
                if (flow_index_find(index, t->namespace, x->pipeline) != SIZE_MAX ||
                    (docs && docs_name_flow(docs, n_docs, t->namespace, x->pipeline)))
                        continue;
                r = diag_add(diags, DIAG_ERROR, x->loc.file, x->loc.line, x->loc.column,
                             "trigger %s/%s targets flow '%s', which does not exist in "
                             "namespace %s",
                             t->namespace, t->name, x->pipeline, t->namespace);
                if (r < 0)
                        return r;
        }
        if (t->type == TRIGGER_FLOW_OUTPUT && t->flow &&
            flow_index_find(index, t->namespace, t->flow) == SIZE_MAX &&
            !(docs && docs_name_flow(docs, n_docs, t->namespace, t->flow))) {
                r = diag_add(diags, DIAG_ERROR, t->source_loc.file, t->source_loc.line,
                             t->source_loc.column,
                             "trigger %s/%s watches flow '%s', which does not exist in "
                             "namespace %s",
                             t->namespace, t->name, t->flow, t->namespace);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_trigger_references(const Registry *reg, ResourceDoc *const *docs, size_t n_docs,
                                    const FlowIndex *index, Diagnostics *diags)
{
        int r;

        for (size_t i = 0; i < reg->n_triggers; i++) {
                r = check_trigger_refs(reg->triggers[i], index, NULL, 0, diags);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n_docs; i++) {
                if (!docs[i]->broken_trigger)
                        continue;
                r = check_trigger_refs(docs[i]->broken_trigger, index, docs, n_docs, diags);
                if (r < 0)
                        return r;
        }
        return 0;
}

int registry_build(ResourceDoc *const *docs, size_t n_docs, const Registry *previous,
                   Registry **ret, Diagnostics *diags)
{
        _cleanup_(registry_freep) Registry *reg = new0(Registry, 1);
        _cleanup_(flow_index_done) FlowIndex index = {};
        _cleanup_free_ size_t *first = NULL;
        int r;

        if (!reg)
                return -ENOMEM;
        first = find_first_definitions(docs, n_docs);
        if (!first && n_docs > 0)
                return -ENOMEM;

        for (size_t i = 0; i < n_docs; i++) {
                if (first[i] == SIZE_MAX)
                        continue;
                r = add_document(reg, docs, i, first[i], previous, diags);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; previous && i < n_docs; i++) {
                if (!docs[i]->unreadable)
                        continue;
                r = keep_unread(reg, docs, n_docs, docs[i], previous, diags);
                if (r < 0)
                        return r;
        }

        r = flow_index_build(&index, reg);
        if (r < 0)
                return r;
        r = check_trigger_references(reg, docs, n_docs, &index, diags);
        if (r < 0)
                return r;
        /* Last: dropping triggers does not change the flows the index points at. */
        r = drop_flow_output_cycles(reg, &index, diags);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(reg);
        return 0;
}

int registry_load_dir(const char *dir, const Registry *previous, Registry **ret,
                      Diagnostics *diags)
{
        ResourceDoc **docs = NULL;
        size_t n = 0;
        int r;

        r = resource_dir_parse(dir, &docs, &n, diags);
        if (r >= 0)
                r = registry_build(docs, n, previous, ret, diags);
        resource_docs_free(docs, n);
        return r;
}
