/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <strings.h>

#include "cron.h"
#include "limits.h"
#include "loader.h"
#include "shared/fileio.h"
#include "shared/strv.h"
#include "template.h"
#include "yaml-node.h"

typedef struct Parse {
        const char *file;
        const char *text;
        size_t len;
        yaml_document_t *doc;
        Diagnostics *diags;
        unsigned n_errors;
} Parse;

/* ---- reporting --------------------------------------------------------------------------- */

_printf_(4, 5) static void err_at(Parse *p, unsigned line, unsigned column, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        (void) diag_add(p->diags, DIAG_ERROR, p->file, line, column, "%s", strna(msg));
        p->n_errors++;
}

#define err(p, node, ...)                                                                         \
        err_at(p, (unsigned) (node)->start_mark.line + 1, (unsigned) (node)->start_mark.column + 1, \
               __VA_ARGS__)

static const char *node_kind(yaml_node_t *n)
{
        if (!n)
                return "nothing";
        switch (n->type) {
        case YAML_SCALAR_NODE:
                return "a scalar";
        case YAML_SEQUENCE_NODE:
                return "a sequence";
        case YAML_MAPPING_NODE:
                return "a mapping";
        default:
                return "nothing";
        }
}

/* Where offset (into the scalar's value) is in the source. */
static void scalar_pos(Parse *p, yaml_node_t *n, size_t offset, unsigned *ret_line,
                       unsigned *ret_col)
{
        const char *v = (const char *) n->data.scalar.value;
        size_t line_in_value = 0, col_in_line = 0;

        for (size_t i = 0; i < offset && v[i]; i++) {
                if (v[i] == '\n') {
                        line_in_value++;
                        col_in_line = 0;
                } else
                        col_in_line++;
        }

        if (n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
            n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE) {
                /* Block scalars: content starts on the line after the indicator, indented. */
                size_t target = n->start_mark.line + 1 + line_in_value, line = 0, i = 0, indent = 0;
                while (i < p->len && line < target) {
                        if (p->text[i] == '\n')
                                line++;
                        i++;
                }
                while (i + indent < p->len && p->text[i + indent] == ' ')
                        indent++;
                *ret_line = (unsigned) target + 1;
                *ret_col = (unsigned) (indent + col_in_line) + 1;
                return;
        }

        bool quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                      n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if (line_in_value == 0) {
                *ret_line = (unsigned) n->start_mark.line + 1;
                *ret_col = (unsigned) (n->start_mark.column + col_in_line + (quoted ? 1 : 0)) + 1;
        } else {
                *ret_line = (unsigned) (n->start_mark.line + line_in_value) + 1;
                *ret_col = (unsigned) col_in_line + 1;
        }
}

static unsigned levenshtein(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        unsigned prev[64], cur[64];

        if (la >= 63 || lb >= 63)
                return 99;
        for (size_t j = 0; j <= lb; j++)
                prev[j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = (unsigned) i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned c = prev[j - 1] +
                                     (tolower((unsigned char) a[i - 1]) !=
                                      tolower((unsigned char) b[j - 1]));
                        cur[j] = MIN(MIN(prev[j] + 1, cur[j - 1] + 1), c);
                }
                memcpy(prev, cur, sizeof(unsigned) * (lb + 1));
        }
        return prev[lb];
}

static const char *closest(const char *s, const char *const *allowed)
{
        const char *best = NULL;
        unsigned best_d = 3;

        for (size_t i = 0; allowed[i]; i++) {
                unsigned d = levenshtein(s, allowed[i]);
                if (d < best_d) {
                        best_d = d;
                        best = allowed[i];
                }
        }
        return best;
}

/* Reports unknown and duplicate keys of a mapping. */
static void check_keys(Parse *p, yaml_node_t *map, const char *const *allowed, const char *where)
{
        for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
             a++) {
                yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
                const char *key = yaml_scalar(k);
                bool known = false;

                if (!key) {
                        err(p, k, "expected a field name, got %s", node_kind(k));
                        continue;
                }
                for (size_t i = 0; allowed[i]; i++)
                        if (streq(allowed[i], key))
                                known = true;
                if (!known) {
                        const char *s = closest(key, allowed);
                        if (s)
                                err(p, k, "unknown field '%s' in %s (did you mean '%s'?)", key,
                                    where, s);
                        else
                                err(p, k, "unknown field '%s' in %s", key, where);
                        continue;
                }
                for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++)
                        if (streq_ptr(yaml_scalar(yaml_document_get_node(p->doc, b->key)), key)) {
                                err(p, k, "duplicate field '%s' in %s", key, where);
                                break;
                        }
        }
}

static bool expect(Parse *p, yaml_node_t *n, yaml_node_type_t type, const char *what)
{
        static const char *const names[] = {
                [YAML_SCALAR_NODE] = "a string",
                [YAML_SEQUENCE_NODE] = "a sequence",
                [YAML_MAPPING_NODE] = "a mapping",
        };
        if (n && n->type == type)
                return true;
        if (n)
                err(p, n, "%s: expected %s, got %s", what, names[type], node_kind(n));
        return false;
}

static char *get_string(Parse *p, yaml_node_t *n, const char *what)
{
        if (!expect(p, n, YAML_SCALAR_NODE, what))
                return NULL;
        return strdup(yaml_scalar(n));
}

static bool get_int(Parse *p, yaml_node_t *n, const char *what, int64_t min, int64_t max,
                    int64_t *ret)
{
        int64_t v;
        if (!expect(p, n, YAML_SCALAR_NODE, what))
                return false;
        if (yaml_scalar_to_int64(n, &v) < 0) {
                err(p, n, "%s: expected an integer, got '%s'", what, yaml_scalar(n));
                return false;
        }
        if (v < min || v > max) {
                err(p, n, "%s: %" PRIi64 " is out of range (%" PRIi64 "..%" PRIi64 ")", what, v,
                    min, max);
                return false;
        }
        *ret = v;
        return true;
}

static bool name_valid(const char *s, bool allow_dot)
{
        if (!s || !*s || strlen(s) > 200)
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '-' && *c != '_' &&
                    !(allow_dot && *c == '.'))
                        return false;
        return true;
}

/* Checks a template-bearing scalar, reporting at the exact position of the problem. */
static void check_template(Parse *p, yaml_node_t *n, bool allow_steps, bool allow_trigger,
                           TemplateStepCheck check, void *userdata)
{
        _cleanup_free_ char *e = NULL;
        size_t off = 0;
        unsigned line, col;

        if (!n || n->type != YAML_SCALAR_NODE)
                return;
        if (template_validate(yaml_scalar(n), allow_steps, allow_trigger, check, userdata, &e,
                              &off) >= 0)
                return;
        scalar_pos(p, n, off, &line, &col);
        err_at(p, line, col, "%s", strna(e));
}

/* ---- steps ------------------------------------------------------------------------------- */

typedef struct StepNodes {
        yaml_node_t *node;
        yaml_node_t *name;
        yaml_node_t **dep_items;
        size_t n_dep_items;
        yaml_node_t *if_node;
        yaml_node_t **input_nodes;
        yaml_node_t **env_nodes;
} StepNodes;

static const char *const step_keys[] = { "name", "run", "command", "dependsOn", "if", "inputs",
                                         "env", "timeoutSeconds", "retries", "cpuLimit",
                                         "memoryLimit", "image", "runtime", "volumes", "user",
                                         NULL };

static int parse_volumes(Parse *p, yaml_node_t *n, Volume **ret, size_t *ret_n)
{
        Volume *v;
        size_t k = 0;

        if (!expect(p, n, YAML_SEQUENCE_NODE, "volumes"))
                return 0;
        v = new0(Volume, (size_t) (n->data.sequence.items.top - n->data.sequence.items.start));
        if (!v)
                return -ENOMEM;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
                yaml_node_t *item = yaml_document_get_node(p->doc, *it);
                const char *s = yaml_scalar(item), *c1, *c2;
                if (!expect(p, item, YAML_SCALAR_NODE, "volumes[]"))
                        continue;
                c1 = strchr(s, ':');
                if (!c1 || c1 == s || c1[1] != '/' || s[0] != '/') {
                        err(p, item, "volume '%s': expected \"/host/path:/container/path[:ro]\"",
                            s);
                        continue;
                }
                c2 = strchr(c1 + 1, ':');
                if (c2 && !streq(c2 + 1, "ro") && !streq(c2 + 1, "rw")) {
                        err(p, item, "volume '%s': the option after the second ':' must be ro or "
                                     "rw",
                            s);
                        continue;
                }
                v[k].host = strndup(s, (size_t) (c1 - s));
                v[k].target = c2 ? strndup(c1 + 1, (size_t) (c2 - c1 - 1)) : strdup(c1 + 1);
                v[k].read_only = c2 && streq(c2 + 1, "ro");
                k++;
        }
        *ret = v;
        *ret_n = k;
        return 0;
}

static int parse_kv(Parse *p, yaml_node_t *n, const char *what, bool env_names, KeyValue **ret,
                    size_t *ret_n, yaml_node_t ***ret_nodes)
{
        size_t cap, k = 0;
        KeyValue *kv;
        yaml_node_t **nodes;

        if (!expect(p, n, YAML_MAPPING_NODE, what))
                return 0;
        cap = (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        kv = new0(KeyValue, cap);
        nodes = new0(yaml_node_t *, cap);
        if (!kv || !nodes) {
                free(kv);
                free(nodes);
                return -ENOMEM;
        }
        for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top;
             a++) {
                yaml_node_t *key = yaml_document_get_node(p->doc, a->key);
                yaml_node_t *val = yaml_document_get_node(p->doc, a->value);
                const char *ks = yaml_scalar(key);
                if (!ks) {
                        err(p, key, "%s: expected a name", what);
                        continue;
                }
                if (!name_valid(ks, false) || (env_names && isdigit((unsigned char) ks[0]))) {
                        err(p, key, "%s: '%s' is not a valid name (letters, digits, '_', '-')",
                            what, ks);
                        continue;
                }
                if (!val || val->type != YAML_SCALAR_NODE) {
                        err(p, val ?: key, "%s.%s: expected a string, got %s", what, ks,
                            node_kind(val));
                        continue;
                }
                kv[k].key = strdup(ks);
                kv[k].value = strdup(yaml_scalar(val));
                nodes[k] = val;
                k++;
        }
        *ret = kv;
        *ret_n = k;
        *ret_nodes = nodes;
        return 0;
}

static int parse_step(Parse *p, yaml_node_t *n, Step *s, StepNodes *sn)
{
        yaml_node_t *v, *key;
        int64_t i;
        int r;

        sn->node = n;
        s->loc = (SourceLoc){ strdup(p->file), (unsigned) n->start_mark.line + 1,
                              (unsigned) n->start_mark.column + 1 };
        if (!expect(p, n, YAML_MAPPING_NODE, "step"))
                return 0;
        check_keys(p, n, step_keys, "a step");

        v = yaml_map_get(p->doc, n, "name", NULL);
        if (!v)
                err(p, n, "a step needs a name");
        else if ((s->name = get_string(p, v, "name"))) {
                sn->name = v;
                if (!name_valid(s->name, false))
                        err(p, v, "invalid step name '%s' (letters, digits, '_' and '-')",
                            s->name);
        }

        yaml_node_t *run = yaml_map_get(p->doc, n, "run", NULL);
        yaml_node_t *cmd = yaml_map_get(p->doc, n, "command", &key);
        if (run && (s->run = get_string(p, run, "run")) && template_has_expression(s->run)) {
                unsigned line, col;
                scalar_pos(p, run, (size_t) (strstr(s->run, "{{") - s->run), &line, &col);
                err_at(p, line, col,
                       "templates are not expanded in run:, pass values through inputs: or env: "
                       "and read them as environment variables");
        }
        if (cmd) {
                if (run)
                        err(p, key, "run: and command: are exclusive");
                if (cmd->type == YAML_MAPPING_NODE) {
                        static const char *const ck[] = { "entrypoint", "arguments", NULL };
                        yaml_node_t *ep = yaml_map_get(p->doc, cmd, "entrypoint", NULL);
                        yaml_node_t *args = yaml_map_get(p->doc, cmd, "arguments", NULL);
                        check_keys(p, cmd, ck, "command");
                        if (!ep)
                                err(p, cmd, "command: needs an entrypoint");
                        else if (expect(p, ep, YAML_SCALAR_NODE, "command.entrypoint"))
                                (void) strv_extend(&s->command, yaml_scalar(ep));
                        if (args && expect(p, args, YAML_SEQUENCE_NODE, "command.arguments"))
                                for (yaml_node_item_t *it = args->data.sequence.items.start;
                                     it < args->data.sequence.items.top; it++) {
                                        yaml_node_t *a = yaml_document_get_node(p->doc, *it);
                                        if (expect(p, a, YAML_SCALAR_NODE, "command.arguments[]"))
                                                (void) strv_extend(&s->command, yaml_scalar(a));
                                }
                } else if (cmd->type == YAML_SEQUENCE_NODE) {
                        for (yaml_node_item_t *it = cmd->data.sequence.items.start;
                             it < cmd->data.sequence.items.top; it++) {
                                yaml_node_t *a = yaml_document_get_node(p->doc, *it);
                                if (expect(p, a, YAML_SCALAR_NODE, "command[]"))
                                        (void) strv_extend(&s->command, yaml_scalar(a));
                        }
                        if (strv_length(s->command) == 0)
                                err(p, cmd, "command: is empty");
                } else
                        err(p, cmd, "command: expected a mapping {entrypoint, arguments} or a "
                                    "list, got %s",
                            node_kind(cmd));
        }
        if (!run && !cmd)
                err(p, n, "step '%s' needs run: or command:", strna(s->name));

        if ((v = yaml_map_get(p->doc, n, "dependsOn", NULL))) {
                if (v->type == YAML_SCALAR_NODE) {
                        (void) strv_extend(&s->depends_on, yaml_scalar(v));
                        sn->dep_items = new0(yaml_node_t *, 1);
                        if (sn->dep_items)
                                sn->dep_items[sn->n_dep_items++] = v;
                } else if (expect(p, v, YAML_SEQUENCE_NODE, "dependsOn")) {
                        size_t cap = (size_t) (v->data.sequence.items.top -
                                               v->data.sequence.items.start);
                        sn->dep_items = new0(yaml_node_t *, cap);
                        for (yaml_node_item_t *it = v->data.sequence.items.start;
                             sn->dep_items && it < v->data.sequence.items.top; it++) {
                                yaml_node_t *d = yaml_document_get_node(p->doc, *it);
                                if (!expect(p, d, YAML_SCALAR_NODE, "dependsOn[]"))
                                        continue;
                                (void) strv_extend(&s->depends_on, yaml_scalar(d));
                                sn->dep_items[sn->n_dep_items++] = d;
                        }
                }
        }
        if ((v = yaml_map_get(p->doc, n, "if", NULL)) && (s->if_expr = get_string(p, v, "if")))
                sn->if_node = v;
        if ((v = yaml_map_get(p->doc, n, "inputs", NULL))) {
                r = parse_kv(p, v, "inputs", false, &s->inputs, &s->n_inputs, &sn->input_nodes);
                if (r < 0)
                        return r;
        }
        if ((v = yaml_map_get(p->doc, n, "env", NULL))) {
                r = parse_kv(p, v, "env", true, &s->env, &s->n_env, &sn->env_nodes);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < s->n_env; k++)
                        if (startswith(s->env[k].key, "ARKEVENT_"))
                                err(p, sn->env_nodes[k],
                                    "env: ARKEVENT_* names are set by arkevent itself");
        }
        if ((v = yaml_map_get(p->doc, n, "timeoutSeconds", NULL)) &&
            get_int(p, v, "timeoutSeconds", 1, 365LL * 24 * 3600, &i))
                s->timeout_usec = (uint64_t) i * 1000000;
        if ((v = yaml_map_get(p->doc, n, "retries", NULL))) {
                s->retries_backoff_usec = 1000000;
                if (v->type == YAML_MAPPING_NODE) {
                        static const char *const rk[] = { "limit", "backoffSeconds", NULL };
                        yaml_node_t *l = yaml_map_get(p->doc, v, "limit", NULL);
                        yaml_node_t *b = yaml_map_get(p->doc, v, "backoffSeconds", NULL);
                        check_keys(p, v, rk, "retries");
                        if (!l)
                                err(p, v, "retries: needs a limit");
                        else if (get_int(p, l, "retries.limit", 0, 100, &i))
                                s->retries_limit = (unsigned) i;
                        if (b && get_int(p, b, "retries.backoffSeconds", 0, 86400, &i))
                                s->retries_backoff_usec = (uint64_t) i * 1000000;
                } else if (get_int(p, v, "retries", 0, 100, &i))
                        s->retries_limit = (unsigned) i;
        }
        if ((v = yaml_map_get(p->doc, n, "cpuLimit", NULL)) &&
            expect(p, v, YAML_SCALAR_NODE, "cpuLimit") &&
            parse_cpu_limit(yaml_scalar(v), &s->cpu_millis) < 0)
                err(p, v, "invalid cpuLimit '%s' (expected cores like 1 or 0.5, or millicores "
                          "like \"500m\")",
                    yaml_scalar(v));
        if ((v = yaml_map_get(p->doc, n, "memoryLimit", NULL)) &&
            expect(p, v, YAML_SCALAR_NODE, "memoryLimit") &&
            parse_memory_limit(yaml_scalar(v), &s->memory_bytes) < 0)
                err(p, v, "invalid memoryLimit '%s' (expected a size like 256Mi, 1Gi, 512M or 1G)",
                    yaml_scalar(v));
        if ((v = yaml_map_get(p->doc, n, "image", NULL)))
                s->image = get_string(p, v, "image");
        if ((v = yaml_map_get(p->doc, n, "runtime", NULL)))
                s->runtime = get_string(p, v, "runtime");
        if ((v = yaml_map_get(p->doc, n, "user", NULL)))
                s->user = get_string(p, v, "user");
        if ((v = yaml_map_get(p->doc, n, "volumes", NULL))) {
                r = parse_volumes(p, v, &s->volumes, &s->n_volumes);
                if (r < 0)
                        return r;
        }
        return 0;
}

typedef struct StepCheck {
        Flow *flow;
        size_t index;
        bool *reach; /* transitive dependencies of the step being checked */
} StepCheck;

static bool step_check(const char *name, void *userdata)
{
        StepCheck *c = userdata;
        Step *s = flow_find_step(c->flow, name);
        if (!s)
                return false;
        return !c->reach || c->reach[s - c->flow->steps];
}

static void mark_deps(Flow *f, size_t i, bool *reach, unsigned depth)
{
        if (depth > f->n_steps)
                return;
        STRV_FOREACH(d, f->steps[i].depends_on) {
                Step *s = flow_find_step(f, *d);
                if (s && !reach[s - f->steps]) {
                        reach[s - f->steps] = true;
                        mark_deps(f, (size_t) (s - f->steps), reach, depth + 1);
                }
        }
}

/* 0 white, 1 on the stack, 2 done. Returns true when a cycle was reported. */
static bool find_cycle(Parse *p, Flow *f, StepNodes *sn, size_t i, int *color, size_t *stack,
                       size_t depth)
{
        color[i] = 1;
        stack[depth] = i;
        for (size_t k = 0; f->steps[i].depends_on && f->steps[i].depends_on[k]; k++) {
                Step *d = flow_find_step(f, f->steps[i].depends_on[k]);
                size_t j;
                if (!d)
                        continue;
                j = (size_t) (d - f->steps);
                if (color[j] == 1) {
                        _cleanup_free_ char *path = NULL;
                        size_t from = 0;
                        while (stack[from] != j)
                                from++;
                        for (size_t x = from; x <= depth; x++) {
                                char *np = NULL;
                                if (asprintf(&np, "%s%s -> ", strempty(path),
                                             strna(f->steps[stack[x]].name)) < 0)
                                        return true;
                                free(path);
                                path = np;
                        }
                        err(p, k < sn[i].n_dep_items ? sn[i].dep_items[k] : sn[i].node,
                            "dependency cycle: %s%s", strempty(path), strna(f->steps[j].name));
                        return true;
                }
                if (color[j] == 0 && find_cycle(p, f, sn, j, color, stack, depth + 1))
                        return true;
        }
        color[i] = 2;
        return false;
}

static int parse_steps(Parse *p, Flow *f, yaml_node_t *seq, const char *what)
{
        StepNodes *sn = NULL;
        size_t n;
        int r = 0;

        if (!expect(p, seq, YAML_SEQUENCE_NODE, what))
                return 0;
        n = (size_t) (seq->data.sequence.items.top - seq->data.sequence.items.start);
        if (n == 0) {
                err(p, seq, "%s: at least one is needed", what);
                return 0;
        }
        f->steps = new0(Step, n);
        sn = new0(StepNodes, n);
        if (!f->steps || !sn) {
                free(sn);
                return -ENOMEM;
        }
        f->n_steps = n;
        for (size_t i = 0; i < n; i++) {
                r = parse_step(p, yaml_document_get_node(p->doc, seq->data.sequence.items.start[i]),
                               &f->steps[i], &sn[i]);
                if (r < 0)
                        goto finish;
        }

        /* Names unique, dependencies known, no cycles. */
        for (size_t i = 0; i < n; i++) {
                if (!f->steps[i].name)
                        continue;
                for (size_t j = 0; j < i; j++)
                        if (streq_ptr(f->steps[j].name, f->steps[i].name)) {
                                err(p, sn[i].name, "duplicate step name '%s' (first at line %u)",
                                    f->steps[i].name, f->steps[j].loc.line);
                                break;
                        }
                for (size_t k = 0; k < sn[i].n_dep_items; k++) {
                        const char *d = yaml_scalar(sn[i].dep_items[k]);
                        if (!flow_find_step(f, d)) {
                                const char *names[65] = {};
                                for (size_t x = 0; x < n && x < 64; x++)
                                        names[x] = f->steps[x].name ?: "";
                                const char *c = closest(d, names);
                                if (c)
                                        err(p, sn[i].dep_items[k],
                                            "dependsOn: unknown step '%s' (did you mean '%s'?)", d,
                                            c);
                                else
                                        err(p, sn[i].dep_items[k], "dependsOn: unknown step '%s'",
                                            d);
                        }
                }
        }
        {
                int *color = new0(int, n);
                size_t *stack = new0(size_t, n + 1);
                for (size_t i = 0; color && stack && i < n; i++)
                        if (color[i] == 0 && find_cycle(p, f, sn, i, color, stack, 0))
                                break;
                free(color);
                free(stack);
        }

        /* Templates: a step may only read the outputs of steps it depends on. */
        for (size_t i = 0; i < n; i++) {
                bool *reach = new0(bool, n);
                StepCheck c = { f, i, reach };
                if (!reach) {
                        r = -ENOMEM;
                        goto finish;
                }
                mark_deps(f, i, reach, 0);
                check_template(p, sn[i].if_node, true, true, step_check, &c);
                for (size_t k = 0; k < f->steps[i].n_inputs; k++)
                        check_template(p, sn[i].input_nodes[k], true, true, step_check, &c);
                for (size_t k = 0; k < f->steps[i].n_env; k++)
                        check_template(p, sn[i].env_nodes[k], true, true, step_check, &c);
                free(reach);
        }

finish:
        for (size_t i = 0; i < n; i++) {
                free(sn[i].dep_items);
                free(sn[i].input_nodes);
                free(sn[i].env_nodes);
        }
        free(sn);
        return r;
}

static int parse_webhooks(Parse *p, Flow *f, yaml_node_t *seq)
{
        static const char *const wk[] = { "name", "url", "secretFile", NULL };
        size_t n;

        if (!expect(p, seq, YAML_SEQUENCE_NODE, "webhooks"))
                return 0;
        n = (size_t) (seq->data.sequence.items.top - seq->data.sequence.items.start);
        f->webhooks = new0(Webhook, n);
        if (!f->webhooks)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *w = yaml_document_get_node(p->doc, seq->data.sequence.items.start[i]);
                yaml_node_t *v;
                Webhook *h = &f->webhooks[f->n_webhooks];
                if (!expect(p, w, YAML_MAPPING_NODE, "webhooks[]"))
                        continue;
                check_keys(p, w, wk, "a webhook");
                if ((v = yaml_map_get(p->doc, w, "name", NULL)))
                        h->name = get_string(p, v, "webhooks[].name");
                v = yaml_map_get(p->doc, w, "url", NULL);
                if (!v)
                        err(p, w, "a webhook needs a url");
                else if ((h->url = get_string(p, v, "webhooks[].url")) &&
                         !startswith(h->url, "http://") && !startswith(h->url, "https://"))
                        err(p, v, "webhook url '%s' must start with http:// or https://", h->url);
                if ((v = yaml_map_get(p->doc, w, "secretFile", NULL)))
                        h->secret_file = get_string(p, v, "webhooks[].secretFile");
                f->n_webhooks++;
        }
        return 0;
}

/* ---- documents --------------------------------------------------------------------------- */

static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };
static const char *const metadata_keys[] = { "name", "namespace", "labels", "annotations", NULL };
static const char *const flow_spec_keys[] = { "steps",   "input",  "output",   "timeoutSeconds",
                                              "concurrency", "webhooks", "options", "runtime",
                                              "image", "storagePolicy", "volumes", "mountPath",
                                              "description", NULL };
static const char *const workflow_keys[] = { "name", "namespace", "spec", NULL };
static const char *const workflow_spec_keys[] = { "runtime",  "image",  "storagePolicy",
                                                  "webhooks", "volumes", "mountPath",
                                                  "activities", "input", "output",
                                                  "timeoutSeconds", "concurrency", NULL };
static const char *const trigger_spec_keys[] = { "source", "targets", "concurrencyPolicy",
                                                 "suspended", NULL };
static const char *const source_keys[] = { "type",  "cron",  "calendar", "flow", "pipelineOutput",
                                           "onPhase", "topic", "webhook", NULL };

static void parse_metadata(Parse *p, yaml_node_t *root, ResourceDoc *d)
{
        yaml_node_t *md = yaml_map_get(p->doc, root, "metadata", NULL), *v;

        if (!md) {
                err(p, root, "missing metadata (with name, and optionally namespace)");
                return;
        }
        if (!expect(p, md, YAML_MAPPING_NODE, "metadata"))
                return;
        check_keys(p, md, metadata_keys, "metadata");
        v = yaml_map_get(p->doc, md, "name", NULL);
        if (!v)
                err(p, md, "metadata.name is required");
        else if ((d->name = get_string(p, v, "metadata.name")) && !name_valid(d->name, true))
                err(p, v, "invalid name '%s' (letters, digits, '-', '_' and '.')", d->name);
        if ((v = yaml_map_get(p->doc, md, "namespace", NULL))) {
                if ((d->namespace = get_string(p, v, "metadata.namespace")) &&
                    !name_valid(d->namespace, true))
                        err(p, v, "invalid namespace '%s'", d->namespace);
        }
}

static int parse_flow_common(Parse *p, Flow *f, yaml_node_t *spec)
{
        yaml_node_t *v;
        int64_t i;
        int r;

        if ((v = yaml_map_get(p->doc, spec, "input", NULL))) {
                if (expect(p, v, YAML_MAPPING_NODE, "input"))
                        f->input_defaults = yaml_node_to_json(p->doc, v);
        }
        if ((v = yaml_map_get(p->doc, spec, "output", NULL)) &&
            (f->output = get_string(p, v, "output")))
                check_template(p, v, true, true, NULL, NULL);
        if ((v = yaml_map_get(p->doc, spec, "timeoutSeconds", NULL)) &&
            get_int(p, v, "timeoutSeconds", 1, 365LL * 24 * 3600, &i))
                f->timeout_usec = (uint64_t) i * 1000000;
        if ((v = yaml_map_get(p->doc, spec, "concurrency", NULL)) &&
            get_int(p, v, "concurrency", 0, 100000, &i))
                f->concurrency = (unsigned) i;
        if ((v = yaml_map_get(p->doc, spec, "webhooks", NULL))) {
                r = parse_webhooks(p, f, v);
                if (r < 0)
                        return r;
        }
        if ((v = yaml_map_get(p->doc, spec, "options", NULL)) &&
            expect(p, v, YAML_MAPPING_NODE, "options")) {
                static const char *const ok[] = { "event", NULL };
                yaml_node_t *e;
                check_keys(p, v, ok, "options");
                if ((e = yaml_map_get(p->doc, v, "event", NULL)))
                        f->event_topic = get_string(p, e, "options.event");
        }
        if ((v = yaml_map_get(p->doc, spec, "runtime", NULL)))
                f->runtime = get_string(p, v, "runtime");
        if ((v = yaml_map_get(p->doc, spec, "image", NULL)))
                f->image = get_string(p, v, "image");
        if ((v = yaml_map_get(p->doc, spec, "mountPath", NULL)) &&
            (f->mount_path = get_string(p, v, "mountPath")) && f->mount_path[0] != '/')
                err(p, v, "mountPath must be an absolute path");
        if ((v = yaml_map_get(p->doc, spec, "storagePolicy", NULL)) &&
            expect(p, v, YAML_MAPPING_NODE, "storagePolicy")) {
                static const char *const sk[] = { "type", NULL };
                yaml_node_t *t;
                check_keys(p, v, sk, "storagePolicy");
                if ((t = yaml_map_get(p->doc, v, "type", NULL)) &&
                    (f->storage_policy = get_string(p, t, "storagePolicy.type")) &&
                    !streq(f->storage_policy, "default") && !streq(f->storage_policy, "ephemeral"))
                        err(p, t, "storagePolicy.type must be default or ephemeral, not '%s'",
                            f->storage_policy);
        }
        if ((v = yaml_map_get(p->doc, spec, "volumes", NULL))) {
                r = parse_volumes(p, v, &f->volumes, &f->n_volumes);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_flow(Parse *p, yaml_node_t *root, ResourceDoc *d)
{
        yaml_node_t *spec;
        Flow *f;
        int r;

        check_keys(p, root, top_keys, "an ArkFlow");
        parse_metadata(p, root, d);
        f = new0(Flow, 1);
        if (!f)
                return -ENOMEM;
        f->n_ref = 1;
        f->kind = RESOURCE_FLOW;
        d->flow = f;

        spec = yaml_map_get(p->doc, root, "spec", NULL);
        if (!spec) {
                err(p, root, "missing spec (with steps)");
                return 0;
        }
        if (!expect(p, spec, YAML_MAPPING_NODE, "spec"))
                return 0;
        check_keys(p, spec, flow_spec_keys, "spec");
        r = parse_flow_common(p, f, spec);
        if (r < 0)
                return r;
        yaml_node_t *steps = yaml_map_get(p->doc, spec, "steps", NULL);
        if (!steps) {
                err(p, spec, "spec.steps is required");
                return 0;
        }
        return parse_steps(p, f, steps, "steps");
}

static int parse_workflow(Parse *p, yaml_node_t *root, ResourceDoc *d)
{
        yaml_node_t *spec, *v;
        Flow *f;
        int r;

        check_keys(p, root, workflow_keys, "a workflow");
        v = yaml_map_get(p->doc, root, "name", NULL);
        if ((d->name = get_string(p, v, "name")) && !name_valid(d->name, true))
                err(p, v, "invalid workflow name '%s' (letters, digits, '-', '_' and '.')",
                    d->name);
        if ((v = yaml_map_get(p->doc, root, "namespace", NULL)))
                d->namespace = get_string(p, v, "namespace");

        f = new0(Flow, 1);
        if (!f)
                return -ENOMEM;
        f->n_ref = 1;
        f->kind = RESOURCE_WORKFLOW;
        d->flow = f;

        spec = yaml_map_get(p->doc, root, "spec", NULL);
        if (!expect(p, spec, YAML_MAPPING_NODE, "spec"))
                return 0;
        check_keys(p, spec, workflow_spec_keys, "spec");
        r = parse_flow_common(p, f, spec);
        if (r < 0)
                return r;
        v = yaml_map_get(p->doc, spec, "activities", NULL);
        if (!v) {
                err(p, spec, "spec.activities is required");
                return 0;
        }
        return parse_steps(p, f, v, "activities");
}

static int parse_targets(Parse *p, Trigger *t, yaml_node_t *seq)
{
        static const char *const tk[] = { "pipeline", "input", NULL };
        size_t n;

        if (!expect(p, seq, YAML_SEQUENCE_NODE, "targets"))
                return 0;
        n = (size_t) (seq->data.sequence.items.top - seq->data.sequence.items.start);
        if (n == 0) {
                err(p, seq, "targets: at least one target is needed");
                return 0;
        }
        t->targets = new0(TriggerTarget, n);
        if (!t->targets)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *tn = yaml_document_get_node(p->doc, seq->data.sequence.items.start[i]);
                TriggerTarget *x = &t->targets[t->n_targets];
                yaml_node_t *v;
                if (!expect(p, tn, YAML_MAPPING_NODE, "targets[]"))
                        continue;
                check_keys(p, tn, tk, "a target");
                v = yaml_map_get(p->doc, tn, "pipeline", NULL);
                if (!v) {
                        err(p, tn, "a target needs a pipeline");
                        continue;
                }
                x->pipeline = get_string(p, v, "targets[].pipeline");
                if (!x->pipeline)
                        continue;
                x->loc = (SourceLoc){ strdup(p->file), (unsigned) v->start_mark.line + 1,
                                      (unsigned) v->start_mark.column + 1 };
                if ((v = yaml_map_get(p->doc, tn, "input", NULL)) &&
                    expect(p, v, YAML_MAPPING_NODE, "targets[].input")) {
                        /* Every string leaf may be a template. */
                        yaml_node_t *stack[256];
                        size_t sp = 0;
                        stack[sp++] = v;
                        while (sp > 0) {
                                yaml_node_t *c = stack[--sp];
                                if (c->type == YAML_SCALAR_NODE)
                                        check_template(p, c, false, true, NULL, NULL);
                                else if (c->type == YAML_MAPPING_NODE)
                                        for (yaml_node_pair_t *a = c->data.mapping.pairs.start;
                                             a < c->data.mapping.pairs.top && sp < 256; a++)
                                                stack[sp++] = yaml_document_get_node(p->doc, a->value);
                                else if (c->type == YAML_SEQUENCE_NODE)
                                        for (yaml_node_item_t *it = c->data.sequence.items.start;
                                             it < c->data.sequence.items.top && sp < 256; it++)
                                                stack[sp++] = yaml_document_get_node(p->doc, *it);
                        }
                        x->input = yaml_node_to_json(p->doc, v);
                }
                t->n_targets++;
        }
        return 0;
}

static void parse_cron(Parse *p, Trigger *t, yaml_node_t *v)
{
        _cleanup_(cron_freep) CronExpr *c = NULL;
        _cleanup_free_ char *e = NULL;
        size_t off = 0;
        unsigned line, col;

        if (!(t->cron = get_string(p, v, "source.cron")))
                return;
        if (cron_parse(t->cron, &c, &e, &off) < 0) {
                scalar_pos(p, v, off, &line, &col);
                err_at(p, line, col, "invalid cron expression: %s", strna(e));
                return;
        }
        if (cron_to_on_calendar(c, &t->on_calendar) < 0)
                err(p, v, "cannot convert '%s' to a systemd calendar", t->cron);
}

static void parse_calendar(Parse *p, Trigger *t, yaml_node_t *v)
{
        yaml_node_t *items[64];
        size_t n = 0;

        if (v->type == YAML_SCALAR_NODE)
                items[n++] = v;
        else if (expect(p, v, YAML_SEQUENCE_NODE, "source.calendar"))
                for (yaml_node_item_t *it = v->data.sequence.items.start;
                     it < v->data.sequence.items.top && n < 64; it++)
                        items[n++] = yaml_document_get_node(p->doc, *it);
        for (size_t i = 0; i < n; i++) {
                const char *s = yaml_scalar(items[i]);
                if (!expect(p, items[i], YAML_SCALAR_NODE, "source.calendar[]"))
                        continue;
                if (!*s || strlen(s) > 256 || strpbrk(s, "\n\r;'\"\\")) {
                        err(p, items[i], "invalid calendar expression '%s'", s);
                        continue;
                }
                (void) strv_extend(&t->on_calendar, s);
        }
        if (n == 0)
                err(p, v, "source.calendar is empty");
}

static int parse_trigger(Parse *p, yaml_node_t *root, ResourceDoc *d)
{
        yaml_node_t *spec, *src, *v, *tv;
        Trigger *t;
        int r;

        check_keys(p, root, top_keys, "an ArkEvent");
        parse_metadata(p, root, d);
        t = new0(Trigger, 1);
        if (!t)
                return -ENOMEM;
        t->n_ref = 1;
        d->trigger = t;

        spec = yaml_map_get(p->doc, root, "spec", NULL);
        if (!spec) {
                err(p, root, "missing spec (with source and targets)");
                return 0;
        }
        if (!expect(p, spec, YAML_MAPPING_NODE, "spec"))
                return 0;
        check_keys(p, spec, trigger_spec_keys, "spec");

        src = yaml_map_get(p->doc, spec, "source", NULL);
        if (!src)
                err(p, spec, "spec.source is required");
        else if (expect(p, src, YAML_MAPPING_NODE, "spec.source")) {
                const char *type;
                check_keys(p, src, source_keys, "spec.source");
                tv = yaml_map_get(p->doc, src, "type", NULL);
                type = tv ? yaml_scalar(tv) : NULL;
                if (!tv)
                        err(p, src, "spec.source.type is required (webhook, cron, flow-output or "
                                    "topic)");
                else if (!expect(p, tv, YAML_SCALAR_NODE, "spec.source.type"))
                        ;
                else if (streq(type, "pipeline-output"))
                        t->type = TRIGGER_FLOW_OUTPUT;
                else if ((int) (t->type = trigger_type_from_string(type)) < 0) {
                        static const char *const types[] = { "webhook", "cron", "flow-output",
                                                             "pipeline-output", "topic", NULL };
                        const char *c = closest(type, types);
                        if (c)
                                err(p, tv, "unknown source type '%s' (did you mean '%s'?)", type,
                                    c);
                        else
                                err(p, tv, "unknown source type '%s' (expected webhook, cron, "
                                           "flow-output or topic)",
                                    type);
                }

                if ((int) t->type == TRIGGER_CRON && tv) {
                        yaml_node_t *c = yaml_map_get(p->doc, src, "cron", NULL);
                        yaml_node_t *cal = yaml_map_get(p->doc, src, "calendar", NULL);
                        if (c && cal)
                                err(p, cal, "source.cron and source.calendar are exclusive");
                        else if (c)
                                parse_cron(p, t, c);
                        else if (cal)
                                parse_calendar(p, t, cal);
                        else
                                err(p, src, "a cron trigger needs source.cron (5 fields, UTC) or "
                                            "source.calendar");
                }
                if ((int) t->type == TRIGGER_FLOW_OUTPUT && tv) {
                        yaml_node_t *fl = yaml_map_get(p->doc, src, "flow", NULL);
                        yaml_node_t *po = yaml_map_get(p->doc, src, "pipelineOutput", NULL);
                        yaml_node_t *ph = yaml_map_get(p->doc, src, "onPhase", NULL);
                        if (po && expect(p, po, YAML_MAPPING_NODE, "source.pipelineOutput")) {
                                static const char *const pk[] = { "name", "onPhase", NULL };
                                check_keys(p, po, pk, "source.pipelineOutput");
                                if (!fl)
                                        fl = yaml_map_get(p->doc, po, "name", NULL);
                                if (!ph)
                                        ph = yaml_map_get(p->doc, po, "onPhase", NULL);
                        }
                        if (!fl)
                                err(p, src, "a flow-output trigger needs source.flow (or "
                                            "source.pipelineOutput.name)");
                        else if ((t->flow = get_string(p, fl, "source.flow")))
                                t->source_loc = (SourceLoc){ strdup(p->file),
                                                             (unsigned) fl->start_mark.line + 1,
                                                             (unsigned) fl->start_mark.column + 1 };
                        if (ph && expect(p, ph, YAML_SCALAR_NODE, "onPhase") &&
                            (int) (t->on_phase = on_phase_from_string(yaml_scalar(ph))) < 0) {
                                err(p, ph, "onPhase must be Succeeded, Failed or Any, not '%s'",
                                    yaml_scalar(ph));
                                t->on_phase = ON_PHASE_SUCCEEDED;
                        }
                }
                if ((int) t->type == TRIGGER_TOPIC && tv) {
                        yaml_node_t *tp = yaml_map_get(p->doc, src, "topic", NULL);
                        if (!tp)
                                err(p, src, "a topic trigger needs source.topic");
                        else
                                t->topic = get_string(p, tp, "source.topic");
                }
                if ((v = yaml_map_get(p->doc, src, "webhook", NULL)) &&
                    expect(p, v, YAML_MAPPING_NODE, "source.webhook")) {
                        static const char *const wk[] = { "hmacSecretFile", NULL };
                        yaml_node_t *h;
                        check_keys(p, v, wk, "source.webhook");
                        if ((h = yaml_map_get(p->doc, v, "hmacSecretFile", NULL)) &&
                            (t->hmac_secret_file = get_string(p, h, "hmacSecretFile")) &&
                            t->hmac_secret_file[0] != '/')
                                err(p, h, "hmacSecretFile must be an absolute path");
                }
        }

        v = yaml_map_get(p->doc, spec, "targets", NULL);
        if (!v)
                err(p, spec, "spec.targets is required (at least one pipeline)");
        else {
                r = parse_targets(p, t, v);
                if (r < 0)
                        return r;
        }
        if ((v = yaml_map_get(p->doc, spec, "concurrencyPolicy", NULL)) &&
            expect(p, v, YAML_SCALAR_NODE, "concurrencyPolicy") &&
            (int) (t->concurrency_policy = concurrency_policy_from_string(yaml_scalar(v))) < 0) {
                err(p, v, "concurrencyPolicy must be Allow, Forbid or Replace, not '%s'",
                    yaml_scalar(v));
                t->concurrency_policy = CONCURRENCY_ALLOW;
        }
        if ((v = yaml_map_get(p->doc, spec, "suspended", NULL)) &&
            expect(p, v, YAML_SCALAR_NODE, "suspended") &&
            yaml_scalar_to_bool(v, &t->suspended) < 0)
                err(p, v, "suspended: expected true or false, got '%s'", yaml_scalar(v));
        return 0;
}

static int parse_document(Parse *p, ResourceDoc *d)
{
        yaml_node_t *root = yaml_document_get_root_node(p->doc), *kind;
        const char *k;

        if (!expect(p, root, YAML_MAPPING_NODE, "document"))
                return 0;

        kind = yaml_map_get(p->doc, root, "kind", NULL);
        if (kind) {
                k = yaml_scalar(kind);
                if (!expect(p, kind, YAML_SCALAR_NODE, "kind"))
                        return 0;
                if (streq(k, "ArkFlow")) {
                        d->kind = RESOURCE_FLOW;
                        return parse_flow(p, root, d);
                }
                if (streq(k, "ArkEvent")) {
                        d->kind = RESOURCE_TRIGGER;
                        return parse_trigger(p, root, d);
                }
                static const char *const kinds[] = { "ArkFlow", "ArkEvent", NULL };
                const char *c = closest(k, kinds);
                if (c)
                        err(p, kind, "unknown kind '%s' (did you mean '%s'?)", k, c);
                else
                        err(p, kind, "unknown kind '%s' (expected ArkFlow or ArkEvent)", k);
                return 0;
        }
        if (yaml_map_get(p->doc, root, "name", NULL) && yaml_map_get(p->doc, root, "spec", NULL)) {
                d->kind = RESOURCE_WORKFLOW;
                return parse_workflow(p, root, d);
        }
        err(p, root, "cannot tell what this document is: expected 'kind: ArkFlow', "
                     "'kind: ArkEvent', or an AkoFlow workflow (name and spec.activities)");
        return 0;
}

static char *slice_document(const char *text, size_t len, yaml_document_t *doc)
{
        size_t a = MIN(doc->start_mark.index, len), b = MIN(doc->end_mark.index, len);
        if (b < a)
                b = a;
        /* Skip a leading "---" line: the raw text is the document itself. */
        if (b - a >= 3 && strncmp(text + a, "---", 3) == 0) {
                const char *nl = memchr(text + a, '\n', b - a);
                a = nl ? (size_t) (nl - text) + 1 : b;
        }
        return strndup(text + a, b - a);
}

int resource_text_parse(const char *name, const char *text, size_t len, ResourceDoc ***ret_docs,
                        size_t *ret_n_docs, Diagnostics *diags)
{
        _cleanup_(yaml_parser_deletep) yaml_parser_t parser = {};
        ResourceDoc **docs = NULL;
        size_t n = 0;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);

        for (;;) {
                _cleanup_(yaml_document_deletep) yaml_document_t doc = {};
                _cleanup_(resource_doc_freep) ResourceDoc *d = NULL;
                Parse p = { .file = name, .text = text, .len = len, .doc = &doc, .diags = diags };
                ResourceDoc **nd;

                if (!yaml_parser_load(&parser, &doc)) {
                        /* A syntax error: what came before stands, the rest cannot be read. */
                        const char *ctx = parser.context;
                        (void) diag_add(diags, DIAG_ERROR, name,
                                        (unsigned) parser.problem_mark.line + 1,
                                        (unsigned) parser.problem_mark.column + 1,
                                        "YAML syntax error: %s%s%s", strna(parser.problem),
                                        ctx ? " " : "", strempty(ctx));
                        break;
                }
                if (!yaml_document_get_root_node(&doc))
                        break; /* end of stream */
                if (yaml_document_get_root_node(&doc)->type == YAML_SCALAR_NODE &&
                    yaml_scalar_is_null(yaml_document_get_root_node(&doc)))
                        continue; /* an empty document */

                d = new0(ResourceDoc, 1);
                if (!d) {
                        r = -ENOMEM;
                        break;
                }
                d->kind = _RESOURCE_KIND_INVALID;
                d->loc = (SourceLoc){ strdup(name), (unsigned) doc.start_mark.line + 1,
                                      (unsigned) doc.start_mark.column + 1 };
                r = parse_document(&p, d);
                if (r < 0)
                        break;
                if (!d->namespace)
                        d->namespace = strdup("default");
                d->n_errors = p.n_errors;

                Flow *f = d->flow;
                Trigger *t = d->trigger;
                if (p.n_errors > 0 || !d->name) {
                        d->flow = flow_free(d->flow);
                        d->trigger = trigger_free(d->trigger);
                } else if (f) {
                        f->namespace = strdup(d->namespace);
                        f->name = strdup(d->name);
                        f->raw_yaml = slice_document(text, len, &doc);
                        f->loc = (SourceLoc){ strdup(name), d->loc.line, d->loc.column };
                } else if (t) {
                        t->namespace = strdup(d->namespace);
                        t->name = strdup(d->name);
                        t->loc = (SourceLoc){ strdup(name), d->loc.line, d->loc.column };
                }

                nd = realloc(docs, (n + 1) * sizeof(ResourceDoc *));
                if (!nd) {
                        r = -ENOMEM;
                        break;
                }
                docs = nd;
                docs[n++] = TAKE_PTR(d);
        }

        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        resource_doc_free(docs[i]);
                free(docs);
                return r;
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

        r = read_file_capped(path, 16 * 1024 * 1024, &text, &len);
        if (r < 0) {
                (void) diag_add(diags, DIAG_ERROR, path, 1, 1, "cannot read the file: %s",
                                strerror(-r));
                *ret_docs = NULL;
                *ret_n_docs = 0;
                return 0;
        }
        return resource_text_parse(path, text, len, ret_docs, ret_n_docs, diags);
}

/* ---- the registry ------------------------------------------------------------------------ */

static int push_flow(Registry *reg, Flow *f)
{
        Flow **n = realloc(reg->flows, (reg->n_flows + 1) * sizeof(Flow *));
        if (!n)
                return -ENOMEM;
        reg->flows = n;
        reg->flows[reg->n_flows++] = flow_ref(f);
        return 0;
}

static int push_trigger(Registry *reg, Trigger *t)
{
        Trigger **n = realloc(reg->triggers, (reg->n_triggers + 1) * sizeof(Trigger *));
        if (!n)
                return -ENOMEM;
        reg->triggers = n;
        reg->triggers[reg->n_triggers++] = trigger_ref(t);
        return 0;
}

/* Flow-output triggers make edges upstream flow -> target flows; a cycle would fire forever. */
static bool flow_reaches(const Registry *reg, const char *ns, const char *from, const char *to,
                         unsigned depth)
{
        if (streq(from, to))
                return true;
        if (depth > reg->n_triggers)
                return false;
        for (size_t i = 0; i < reg->n_triggers; i++) {
                Trigger *t = reg->triggers[i];
                if (t->type != TRIGGER_FLOW_OUTPUT || !streq(t->namespace, ns) ||
                    !streq_ptr(t->flow, from))
                        continue;
                for (size_t k = 0; k < t->n_targets; k++)
                        if (flow_reaches(reg, ns, t->targets[k].pipeline, to, depth + 1))
                                return true;
        }
        return false;
}

int registry_build(ResourceDoc *const *docs, size_t n_docs, const Registry *previous,
                   Registry **ret, Diagnostics *diags)
{
        _cleanup_(registry_freep) Registry *reg = new0(Registry, 1);
        int r;

        if (!reg)
                return -ENOMEM;

        for (size_t i = 0; i < n_docs; i++) {
                ResourceDoc *d = docs[i];
                bool is_flow = d->kind == RESOURCE_FLOW || d->kind == RESOURCE_WORKFLOW;

                if (!d->name || (int) d->kind < 0)
                        continue;
                if (is_flow) {
                        Flow *dup = registry_find_flow(reg, d->namespace, d->name);
                        Flow *f = d->flow;
                        if (dup) {
                                (void) diag_add(diags, DIAG_ERROR, d->loc.file, d->loc.line,
                                                d->loc.column,
                                                "duplicate flow %s/%s (first defined at %s:%u:%u)",
                                                d->namespace, d->name, dup->loc.file,
                                                dup->loc.line, dup->loc.column);
                                continue;
                        }
                        if (!f && previous) {
                                f = registry_find_flow(previous, d->namespace, d->name);
                                if (f)
                                        (void) diag_add(diags, DIAG_WARNING, d->loc.file,
                                                        d->loc.line, d->loc.column,
                                                        "keeping the previous version of flow "
                                                        "%s/%s until this one is fixed",
                                                        d->namespace, d->name);
                        }
                        if (f && (r = push_flow(reg, f)) < 0)
                                return r;
                } else {
                        Trigger *dup = registry_find_trigger(reg, d->namespace, d->name);
                        Trigger *t = d->trigger;
                        if (dup) {
                                (void) diag_add(diags, DIAG_ERROR, d->loc.file, d->loc.line,
                                                d->loc.column,
                                                "duplicate trigger %s/%s (first defined at "
                                                "%s:%u:%u)",
                                                d->namespace, d->name, dup->loc.file,
                                                dup->loc.line, dup->loc.column);
                                continue;
                        }
                        if (!t && previous) {
                                t = registry_find_trigger(previous, d->namespace, d->name);
                                if (t)
                                        (void) diag_add(diags, DIAG_WARNING, d->loc.file,
                                                        d->loc.line, d->loc.column,
                                                        "keeping the previous version of trigger "
                                                        "%s/%s until this one is fixed",
                                                        d->namespace, d->name);
                        }
                        if (t && (r = push_trigger(reg, t)) < 0)
                                return r;
                }
        }

        /* What spans documents: targets and upstream flows exist, no flow-output cycles. */
        for (size_t i = 0; i < reg->n_triggers; i++) {
                Trigger *t = reg->triggers[i];
                for (size_t k = 0; k < t->n_targets; k++)
                        if (!registry_find_flow(reg, t->namespace, t->targets[k].pipeline))
                                (void) diag_add(diags, DIAG_ERROR, t->targets[k].loc.file,
                                                t->targets[k].loc.line, t->targets[k].loc.column,
                                                "trigger %s/%s targets flow '%s', which does not "
                                                "exist in namespace %s",
                                                t->namespace, t->name, t->targets[k].pipeline,
                                                t->namespace);
                if (t->type != TRIGGER_FLOW_OUTPUT || !t->flow)
                        continue;
                if (!registry_find_flow(reg, t->namespace, t->flow))
                        (void) diag_add(diags, DIAG_ERROR, t->source_loc.file, t->source_loc.line,
                                        t->source_loc.column,
                                        "trigger %s/%s watches flow '%s', which does not exist "
                                        "in namespace %s",
                                        t->namespace, t->name, t->flow, t->namespace);
                for (size_t k = 0; k < t->n_targets; k++)
                        if (flow_reaches(reg, t->namespace, t->targets[k].pipeline, t->flow, 0)) {
                                (void) diag_add(diags, DIAG_ERROR, t->source_loc.file,
                                                t->source_loc.line, t->source_loc.column,
                                                "flow-output cycle: flow %s fires %s, which leads "
                                                "back to %s",
                                                t->flow, t->targets[k].pipeline, t->flow);
                                break;
                        }
        }

        *ret = TAKE_PTR(reg);
        return 0;
}

static int yaml_file_filter(const struct dirent *de)
{
        return de->d_name[0] != '.' &&
               (endswith(de->d_name, ".yaml") || endswith(de->d_name, ".yml"));
}

int registry_load_dir(const char *dir, const Registry *previous, Registry **ret,
                      Diagnostics *diags)
{
        struct dirent **names = NULL;
        ResourceDoc **all = NULL;
        size_t n_all = 0;
        int n, r = 0;

        n = scandir(dir, &names, yaml_file_filter, alphasort);
        if (n < 0) {
                if (errno != ENOENT)
                        (void) diag_add(diags, DIAG_ERROR, dir, 1, 1, "cannot read: %m");
                n = 0;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                ResourceDoc **docs = NULL, **na;
                size_t nd = 0;

                if (r >= 0 && asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = resource_file_parse(path, &docs, &nd, diags);
                if (r >= 0 && nd > 0) {
                        na = realloc(all, (n_all + nd) * sizeof(ResourceDoc *));
                        if (!na) {
                                r = -ENOMEM;
                                for (size_t k = 0; k < nd; k++)
                                        resource_doc_free(docs[k]);
                        } else {
                                all = na;
                                memcpy(all + n_all, docs, nd * sizeof(ResourceDoc *));
                                n_all += nd;
                        }
                }
                free(docs);
                free(names[i]);
        }
        free(names);

        if (r >= 0)
                r = registry_build(all, n_all, previous, ret, diags);
        for (size_t i = 0; i < n_all; i++)
                resource_doc_free(all[i]);
        free(all);
        return r;
}
