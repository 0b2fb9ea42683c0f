/* SPDX-License-Identifier: MIT */
#include <unistd.h>

#include "runtime.h"
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
