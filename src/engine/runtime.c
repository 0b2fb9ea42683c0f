/* SPDX-License-Identifier: MIT */
#include <unistd.h>

#include "model/diag.h"
#include "model/model.h"
#include "runtime.h"
#include "shared/fileio.h"
#include "shared/strv.h"

static const char *const runtime_type_table[_RUNTIME_TYPE_MAX] = {
        [RUNTIME_LOCAL] = "local",
        [RUNTIME_SYSTEMD] = "systemd",
        [RUNTIME_APPTAINER] = "apptainer",
        [RUNTIME_SINGULARITY] = "singularity",
};

static const Config *runtimes_config;

const char *runtime_type_to_string(RuntimeType t)
{
        return t >= 0 && t < _RUNTIME_TYPE_MAX ? runtime_type_table[t] : NULL;
}

RuntimeType runtime_type_from_string(const char *s)
{
        for (int i = 0; s && i < _RUNTIME_TYPE_MAX; i++)
                if (streq(runtime_type_table[i], s))
                        return (RuntimeType) i;
        return _RUNTIME_TYPE_INVALID;
}

void runtimes_use_config(const Config *c)
{
        runtimes_config = c;
}

int runtime_lookup(const char *name, Runtime *ret)
{
        RuntimeType t;

        if (!name || !*name)
                name = "local";
        /* Configured names first: an operator may give a built-in name its own binary. */
        for (size_t i = 0; runtimes_config && i < runtimes_config->n_runtimes; i++) {
                const ConfigRuntime *cr = &runtimes_config->runtimes[i];
                if (!streq(cr->name, name))
                        continue;
                t = runtime_type_from_string(cr->type);
                if (t < 0)
                        return -EINVAL;
                *ret = (Runtime){ .name = cr->name, .type = t, .binary = cr->binary };
                return 0;
        }
        t = runtime_type_from_string(name);
        if (t < 0)
                return -ENOENT;
        *ret = (Runtime){ .name = runtime_type_table[t], .type = t };
        return 0;
}

char *runtimes_known_names(void)
{
        _cleanup_strv_free_ char **names = NULL;

        for (int i = 0; i < _RUNTIME_TYPE_MAX; i++)
                if (strv_extend(&names, runtime_type_table[i]) < 0)
                        return NULL;
        for (size_t i = 0; runtimes_config && i < runtimes_config->n_runtimes; i++)
                if (!strv_contains(names, runtimes_config->runtimes[i].name) &&
                    strv_extend(&names, runtimes_config->runtimes[i].name) < 0)
                        return NULL;
        return strv_join(names, ", ");
}

int runtime_find_binary(const Runtime *rt, char **ret, const char **ret_tried)
{
        const char *prog = rt->binary ?: runtime_type_to_string(rt->type);
        const char *path;

        if (ret_tried)
                *ret_tried = prog;
        if (prog[0] == '/') {
                if (access(prog, X_OK) < 0)
                        return -ENOENT;
                char *p = strdup(prog);
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return 0;
        }
        path = getenv("PATH") ?: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                _cleanup_free_ char *cand = NULL;

                if (n > 0 && asprintf(&cand, "%.*s/%s", (int) n, p, prog) < 0)
                        return -ENOMEM;
                if (cand && access(cand, X_OK) >= 0) {
                        *ret = TAKE_PTR(cand);
                        return 0;
                }
                p += n;
                if (*p == ':')
                        p++;
        }
        return -ENOENT;
}

bool text_find_key(const char *text, unsigned from, unsigned until, const char *key,
                   unsigned *ret_line, unsigned *ret_column)
{
        size_t klen = strlen(key);
        unsigned line = 1;

        for (const char *p = text; *p; line++) {
                const char *eol = strchrnul(p, '\n'), *q = p;

                if (line >= from && (until == 0 || line < until)) {
                        while (q < eol && (*q == ' ' || *q == '\t' || *q == '-'))
                                q++;
                        if ((size_t) (eol - q) > klen && strncmp(q, key, klen) == 0 &&
                            q[klen] == ':') {
                                *ret_line = line;
                                *ret_column = (unsigned) (q - p) + 1;
                                return true;
                        }
                }
                if (!*eol)
                        break;
                p = eol + 1;
        }
        return false;
}

/* Where a runtime: key is in the flow's file; the value starts after "runtime: ". */
static void runtime_key_loc(const char *text, unsigned from, unsigned until, SourceLoc *loc,
                            unsigned *ret_line, unsigned *ret_column)
{
        *ret_line = loc->line;
        *ret_column = loc->column;
        if (text && text_find_key(text, from, until, "runtime", ret_line, ret_column))
                *ret_column += strlen("runtime: ");
}

static int flow_check_runtimes(const Flow *f, const char *known, Diagnostics *diags)
{
        _cleanup_free_ char *text = NULL;
        unsigned first_step = f->n_steps > 0 ? f->steps[0].loc.line : 0, line, col;
        Runtime rt;
        int n = 0;

        if (f->loc.file && f->loc.file[0] == '/')
                (void) read_file_capped(f->loc.file, 16 * 1024 * 1024, &text, NULL);
        if (f->runtime && runtime_lookup(f->runtime, &rt) < 0) {
                runtime_key_loc(text, f->loc.line, first_step, (SourceLoc *) &f->loc, &line,
                                &col);
                (void) diag_add(diags, DIAG_ERROR, f->loc.file, line, col,
                                "%s: unknown runtime '%s' (known: %s; map it in runtimes: of "
                                "arkevent.yaml)",
                                f->name, f->runtime, known);
                n++;
        }
        for (size_t i = 0; i < f->n_steps; i++) {
                const Step *s = &f->steps[i];
                if (!s->runtime || runtime_lookup(s->runtime, &rt) >= 0)
                        continue;
                runtime_key_loc(text, s->loc.line,
                                i + 1 < f->n_steps ? f->steps[i + 1].loc.line : 0,
                                (SourceLoc *) &s->loc, &line, &col);
                (void) diag_add(diags, DIAG_ERROR, s->loc.file ?: f->loc.file, line, col,
                                "%s: activity %s: unknown runtime '%s' (known: %s)", f->name,
                                s->name, s->runtime, known);
                n++;
        }
        return n;
}

int runtimes_check_registry(Registry *r, Diagnostics *diags)
{
        _cleanup_free_ char *known = runtimes_known_names();
        int removed = 0;

        if (!known)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_flows;) {
                if (flow_check_runtimes(r->flows[i], known, diags) == 0) {
                        i++;
                        continue;
                }
                flow_free(r->flows[i]);
                memmove(r->flows + i, r->flows + i + 1, (r->n_flows - i - 1) * sizeof(Flow *));
                r->n_flows--;
                removed++;
        }
        return removed;
}
