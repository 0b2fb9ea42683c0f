/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "engine/runtime.h"
#include "model/template.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "shared/time-util.h"
#include "shared/fileio.h"
#include "unit-start.h"

StepSandbox step_sandbox_from_string(const char *s)
{
        if (streq_ptr(s, "none"))
                return STEP_SANDBOX_NONE;
        if (streq_ptr(s, "default"))
                return STEP_SANDBOX_DEFAULT;
        if (streq_ptr(s, "strict"))
                return STEP_SANDBOX_STRICT;
        return _STEP_SANDBOX_INVALID;
}

char *env_name_from(const char *prefix, const char *name)
{
        char *r = NULL;
        if (asprintf(&r, "%s%s", prefix, name) < 0)
                return NULL;
        for (char *p = r + strlen(prefix); *p; p++)
                *p = isalnum((unsigned char) *p) ? (char) toupper((unsigned char) *p) : '_';
        return r;
}

int prepare_output_file(const char *path, uid_t uid, gid_t gid)
{
        return write_private_file(path, "", 0, uid, gid);
}

/* PATH with DATA, mode 0600, owned by UID:GID unless those are -1; an existing file is
 * replaced, never followed. */
int write_private_file(const char *path, const char *data, size_t size, uid_t uid, gid_t gid)
{
        _cleanup_close_ int fd = -EBADF;

        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (uid != (uid_t) -1 && fchown(fd, uid, gid) < 0)
                return -errno;
        return loop_write(fd, data, size);
}

static int append_prop_s(sd_bus_message *m, const char *name, const char *v)
{
        return sd_bus_message_append(m, "(sv)", name, "s", v);
}

static int append_prop_b(sd_bus_message *m, const char *name, int v)
{
        return sd_bus_message_append(m, "(sv)", name, "b", v);
}

static int append_prop_t(sd_bus_message *m, const char *name, uint64_t v)
{
        return sd_bus_message_append(m, "(sv)", name, "t", v);
}

static int append_exec(sd_bus_message *m, const char *prop, char **argv)
{
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", prop);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sasb");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[0]);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, argv);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);
        for (int i = 0; i < 4 && r >= 0; i++)
                r = sd_bus_message_close_container(m);
        return r;
}

/* ExecStopPostEx= with the "privileged" flag ('+'): runs outside RootDirectory=, User= and the
 * sandbox, so it can always write the result file. */
static int append_stop_post(sd_bus_message *m, const char *binary, const char *result_path)
{
        char *argv[] = { (char *) binary, (char *) "record", (char *) result_path, NULL };
        char *flags[] = { (char *) "privileged", NULL };
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "ExecStopPostEx");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(sasas)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sasas)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sasas");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", binary);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, argv);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, flags);
        for (int i = 0; i < 4 && r >= 0; i++)
                r = sd_bus_message_close_container(m);
        return r;
}

/* Why the last unit_start_message() failed, in words, when it was the resource's fault. */
static char *last_error;

const char *unit_start_last_error(void)
{
        return last_error;
}

_printf_(2, 3) static int fail_with(int error, const char *format, ...)
{
        va_list ap;

        free(TAKE_PTR(last_error));
        va_start(ap, format);
        if (vasprintf(&last_error, format, ap) < 0)
                last_error = NULL;
        va_end(ap);
        return error;
}

/* BindPaths= (read_only false) or BindReadOnlyPaths= (true) from the flow's and the step's
 * volumes, plus one extra bind (the workspace at mountPath). */
static int append_binds(sd_bus_message *m, const char *prop, const UnitSpec *s, bool read_only,
                        const char *extra_src, const char *extra_dst)
{
        const Volume *lists[] = { s->flow_def->volumes, s->step->volumes };
        const size_t counts[] = { s->flow_def->n_volumes, s->step->n_volumes };
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", prop);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a(ssbt)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ssbt)");
        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (size_t i = 0; i < counts[l] && r >= 0; i++)
                        if (lists[l][i].read_only == read_only)
                                r = sd_bus_message_append(m, "(ssbt)", lists[l][i].host,
                                                          lists[l][i].target, 0,
                                                          (uint64_t) MS_REC);
        if (r >= 0 && extra_src)
                r = sd_bus_message_append(m, "(ssbt)", extra_src, extra_dst, 0,
                                          (uint64_t) MS_REC);
        for (int i = 0; i < 3 && r >= 0; i++)
                r = sd_bus_message_close_container(m);
        return r;
}

/* One more BindPaths= entry (systemd appends to the list). */
static int append_bind_one(sd_bus_message *m, const char *src, const char *dst)
{
        return sd_bus_message_append(m, "(sv)", "BindPaths", "a(ssbt)", 1, src, dst, 0,
                                     (uint64_t) MS_REC);
}

static bool spec_has_volumes(const UnitSpec *s, bool read_only)
{
        for (size_t i = 0; i < s->flow_def->n_volumes; i++)
                if (s->flow_def->volumes[i].read_only == read_only)
                        return true;
        for (size_t i = 0; i < s->step->n_volumes; i++)
                if (s->step->volumes[i].read_only == read_only)
                        return true;
        return false;
}

/* apptainer/singularity: "BINARY exec --pwd DIR --bind WS:DIR --bind HOST:TARGET[:ro] IMAGE". */
static int container_argv(const UnitSpec *s, const char *binary, const char *image,
                          const char *target, char ***argv)
{
        const Volume *lists[] = { s->flow_def->volumes, s->step->volumes };
        const size_t counts[] = { s->flow_def->n_volumes, s->step->n_volumes };
        _cleanup_free_ char *ws = NULL;
        int r;

        if (asprintf(&ws, "%s:%s", s->workspace, target) < 0)
                return -ENOMEM;
        r = strv_extend(argv, binary);
        if (r >= 0)
                r = strv_extend(argv, "exec");
        if (r >= 0)
                r = strv_extend(argv, "--pwd");
        if (r >= 0)
                r = strv_extend(argv, target);
        if (r >= 0)
                r = strv_extend(argv, "--bind");
        if (r >= 0)
                r = strv_extend(argv, ws);
        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (size_t i = 0; i < counts[l] && r >= 0; i++) {
                        _cleanup_free_ char *b = NULL;
                        if (asprintf(&b, "%s:%s%s", lists[l][i].host, lists[l][i].target,
                                     lists[l][i].read_only ? ":ro" : "") < 0)
                                return -ENOMEM;
                        r = strv_extend(argv, "--bind");
                        if (r >= 0)
                                r = strv_extend(argv, b);
                }
        /* The command's script file (step_needs_script()), at its own path. */
        if (r >= 0 && s->script_path) {
                _cleanup_free_ char *dir = strdup(s->script_path), *b = NULL;
                char *slash = dir ? strrchr(dir, '/') : NULL;
                if (!slash)
                        return -ENOMEM;
                *slash = 0;
                if (asprintf(&b, "%s:%s:ro", dir, dir) < 0)
                        return -ENOMEM;
                r = strv_extend(argv, "--bind");
                if (r >= 0)
                        r = strv_extend(argv, b);
        }
        if (r >= 0)
                r = strv_extend(argv, image);
        return r;
}

bool step_needs_script(const Step *step)
{
        if (!step->command)
                return strpbrk(strempty(step->run), "$\\");
        STRV_FOREACH(c, step->command)
                if (strpbrk(*c, "$\\"))
                        return true;
        return false;
}

int step_script_text(const Step *step, char **ret_text)
{
        char *text, *p;
        size_t n = 0;

        if (!step->command) {
                text = strdup(strempty(step->run));
                if (!text)
                        return -ENOMEM;
                *ret_text = text;
                return 0;
        }
        /* exec 'ARG' 'ARG' ...: each argument single-quoted, its own ' as '\''. */
        STRV_FOREACH(c, step->command)
                n += 3 + strlen(*c) * 4;
        text = malloc(n + sizeof("exec\n"));
        if (!text)
                return -ENOMEM;
        p = stpcpy(text, "exec");
        STRV_FOREACH(c, step->command) {
                p = stpcpy(p, " '");
                for (const char *q = *c; *q; q++)
                        p = *q == '\'' ? stpcpy(p, "'\\''") : (*p = *q, p + 1);
                *p++ = '\'';
        }
        strcpy(p, "\n");
        *ret_text = text;
        return 0;
}

static int build_env(const UnitSpec *s, char ***ret)
{
        _cleanup_strv_free_ char **env = NULL;
        char *e;
        int r;

#define PUSHF(...)                                                                                \
        do {                                                                                      \
                if (asprintf(&e, __VA_ARGS__) < 0)                                                \
                        return -ENOMEM;                                                           \
                r = strv_push(&env, e);                                                           \
                if (r < 0)                                                                        \
                        return r;                                                                 \
        } while (0)

        PUSHF("ARKEVENT_RUN_ID=%" PRIi64, s->run_id);
        PUSHF("ARKEVENT_FLOW=%s/%s", s->ns, s->flow);
        PUSHF("ARKEVENT_ACTIVITY=%s", s->step->name);
        PUSHF("ARKEVENT_ATTEMPT=%u", s->attempt);
        PUSHF("ARKEVENT_INPUT=%s", s->input_path);
        PUSHF("ARKEVENT_OUTPUT=%s", s->output_path);
        PUSHF("ARKEVENT_WORKSPACE=%s", s->workspace);

        /* Values reach the step as environment, never as shell text. */
        for (size_t i = 0; i < s->step->n_inputs; i++) {
                _cleanup_free_ char *v = NULL, *name = NULL;
                r = template_expand(s->step->inputs[i].value, s->template_ctx, &v);
                if (r < 0)
                        return r;
                name = env_name_from("INPUT_", s->step->inputs[i].key);
                if (!name)
                        return -ENOMEM;
                PUSHF("%s=%s", name, v);
        }
        for (size_t i = 0; i < s->step->n_env; i++) {
                _cleanup_free_ char *v = NULL;
                r = template_expand(s->step->env[i].value, s->template_ctx, &v);
                if (r < 0)
                        return r;
                PUSHF("%s=%s", s->step->env[i].key, v);
        }
#undef PUSHF
        *ret = TAKE_PTR(env);
        return 0;
}

int unit_start_message(sd_bus *bus, const UnitSpec *s, sd_bus_message **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_strv_free_ char **env = NULL, **argv = NULL;
        _cleanup_free_ char *desc = NULL, *max = NULL, *container_bin = NULL;
        const char *image = s->step->image ?: s->flow_def->image;
        const char *rt_name = s->step->runtime ?: s->flow_def->runtime;
        const char *mount = s->flow_def->mount_path;
        const char *workdir = s->workspace, *target = mount ?: "/workspace";
        struct stat st;
        bool in_image = false, in_container = false, wrapper_records;
        Runtime rt;
        int r;

        free(TAKE_PTR(last_error));
        r = runtime_lookup(rt_name, &rt);
        if (r < 0) {
                _cleanup_free_ char *known = runtimes_known_names();
                return fail_with(-ENOENT, "unknown runtime '%s' (known: %s)", rt_name,
                                 strna(known));
        }

        r = build_env(s, &env);
        if (r < 0)
                return r;

        switch (rt.type) {
        case RUNTIME_LOCAL:
                /* Without a runtime named, an image that exists still becomes the root. */
                if (!rt_name && image && image[0] == '/' && stat(image, &st) >= 0)
                        in_image = true;
                break;
        case RUNTIME_SYSTEMD:
                if (!image)
                        return fail_with(-EINVAL, "runtime '%s' needs an image", rt.name);
                if (image[0] != '/' || stat(image, &st) < 0)
                        return fail_with(-ENOENT,
                                         "runtime '%s': image %s does not exist (a directory "
                                         "for RootDirectory= or a file for RootImage=)",
                                         rt.name, image);
                in_image = true;
                break;
        case RUNTIME_APPTAINER:
        case RUNTIME_SINGULARITY: {
                const char *tried = NULL;
                if (!image)
                        return fail_with(-EINVAL, "runtime '%s' needs an image", rt.name);
                r = runtime_find_binary(&rt, &container_bin, &tried);
                if (r == -ENOENT)
                        return fail_with(-ENOENT,
                                         "runtime '%s' (%s): %s not found on this host; install "
                                         "it or map the runtime to another type in "
                                         "arkevent.yaml (runtimes:)",
                                         rt.name, runtime_type_to_string(rt.type), tried);
                if (r < 0)
                        return r;
                in_container = true;
                break;
        }
        default:
                return -EINVAL;
        }

        /* Where the step sees its workspace. */
        for (size_t i = 0; (in_image || in_container || mount) && env[i]; i++)
                if (startswith(env[i], "ARKEVENT_WORKSPACE=")) {
                        char *ws = NULL;
                        if (asprintf(&ws, "ARKEVENT_WORKSPACE=%s", target) < 0)
                                return -ENOMEM;
                        free_and_replace(env[i], ws);
                        break;
                }

        /* Who writes the result down: on the host, as root, the wrapper itself when the command
         * ends (no process more per unit); elsewhere (an image's root, another user, who cannot
         * write the run's meta directory) a privileged ExecStopPost=. */
        wrapper_records = !in_image && !s->step->user && s->result_path;

        /* The command: the step's own, wrapped so its standard output is also captured. Inside
         * an image the wrapper is not there: output then comes from $ARKEVENT_OUTPUT alone. */
        if (!in_image) {
                if (asprintf(&max, "%" PRIu64, s->output_max_bytes) < 0)
                        return -ENOMEM;
                char *pre[] = { (char *) s->step_binary, (char *) "run",
                                (char *) s->capture_path, max, (char *) "--", NULL, NULL };
                if (wrapper_records) {
                        pre[4] = (char *) s->result_path;
                        pre[5] = (char *) "--";
                }
                argv = strv_copy(pre);
                if (!argv)
                        return -ENOMEM;
        }
        if (in_container) {
                r = container_argv(s, container_bin, image, target, &argv);
                if (r < 0)
                        return r;
        }
        if (s->script_path) {
                r = strv_extend(&argv, "/bin/sh");
                if (r >= 0)
                        r = strv_extend(&argv, s->script_path);
                if (r < 0)
                        return r;
        } else if (s->step->command)
                STRV_FOREACH(c, s->step->command) {
                        r = strv_extend(&argv, *c);
                        if (r < 0)
                                return r;
                }
        else {
                r = strv_extend(&argv, "/bin/sh");
                if (r >= 0)
                        r = strv_extend(&argv, "-c");
                if (r >= 0)
                        r = strv_extend(&argv, strempty(s->step->run));
                if (r < 0)
                        return r;
        }

        if (asprintf(&desc, "arkevent run %" PRIi64 " %s/%s: %s (attempt %u)", s->run_id, s->ns,
                     s->flow, s->step->name, s->attempt) < 0)
                return -ENOMEM;

        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager",
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", s->unit, "fail");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r < 0)
                return r;

        r = append_prop_s(m, "Description", desc);
        if (r >= 0)
                r = append_prop_s(m, "Slice", "arkevent.slice");
        if (r >= 0)
                r = append_prop_s(m, "Type", "exec");
        /* With ExecStopPost= the result is always written down, so the unit may go as soon as
         * it ends. The wrapper writes it only when it sees the command end: a unit it could not
         * record for (timeout, OOM, SIGKILL) fails, and stays loaded with its result until the
         * daemon has recorded it and resets it. */
        if (r >= 0)
                r = append_prop_s(m, "CollectMode",
                                  wrapper_records ? "inactive" : "inactive-or-failed");
        if (r >= 0)
                r = append_exec(m, "ExecStart", argv);
        if (r >= 0 && !wrapper_records)
                r = append_stop_post(m, s->step_binary, s->result_path);
        if (r >= 0 && in_image) {
                r = append_prop_s(m, S_ISDIR(st.st_mode) ? "RootDirectory" : "RootImage", image);
                if (r >= 0)
                        r = append_binds(m, "BindPaths", s, false, s->workspace, target);
                /* ExecStopPost= still sees the image's root, and the step's $ARKEVENT_OUTPUT
                 * lives there too: the run's meta directory at its own path. */
                if (r >= 0 && s->result_path) {
                        _cleanup_free_ char *meta = strdup(s->result_path);
                        char *slash = meta ? strrchr(meta, '/') : NULL;
                        if (!slash)
                                return -ENOMEM;
                        *slash = 0;
                        r = append_bind_one(m, meta, meta);
                }
                workdir = target;
        } else if (r >= 0 && !in_container) {
                /* On the host the workspace is also seen at mountPath, and works there. */
                if (spec_has_volumes(s, false) || mount)
                        r = append_binds(m, "BindPaths", s, false, mount ? s->workspace : NULL,
                                         mount);
                if (mount)
                        workdir = mount;
        }
        if (r >= 0 && !in_container && spec_has_volumes(s, true))
                r = append_binds(m, "BindReadOnlyPaths", s, true, NULL, NULL);
        /* "-": the daemon made the directory already, and a working directory systemd must
         * check for would make it load (and later collect) a mount unit for every component of
         * the path, four of them new for each run. */
        if (r >= 0) {
                _cleanup_free_ char *wd = NULL;
                if (asprintf(&wd, "-%s", workdir) < 0)
                        return -ENOMEM;
                r = append_prop_s(m, "WorkingDirectory", wd);
        }
        if (r >= 0) {
                r = sd_bus_message_open_container(m, 'r', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "Environment");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, env);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0) {
                char f1[64], f2[512], f3[512], f4[64];
                snprintf(f1, sizeof(f1), "ARKEVENT_RUN=%" PRIi64, s->run_id);
                snprintf(f2, sizeof(f2), "ARKEVENT_FLOW=%s/%s", s->ns, s->flow);
                snprintf(f3, sizeof(f3), "ARKEVENT_ACTIVITY=%s", s->step->name);
                snprintf(f4, sizeof(f4), "ARKEVENT_ATTEMPT=%u", s->attempt);
                const char *fields[] = { f1, f2, f3, f4 };
                r = sd_bus_message_open_container(m, 'r', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "LogExtraFields");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "aay");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "ay");
                for (size_t k = 0; k < ELEMENTSOF(fields) && r >= 0; k++)
                        r = sd_bus_message_append_array(m, 'y', fields[k], strlen(fields[k]));
                for (int k = 0; k < 3 && r >= 0; k++)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0 && s->step->cpu_millis > 0)
                r = append_prop_t(m, "CPUQuotaPerSecUSec", s->step->cpu_millis * 1000);
        if (r >= 0 && s->step->memory_bytes > 0) {
                r = append_prop_t(m, "MemoryMax", s->step->memory_bytes);
                /* Without this a step over its limit would swap instead of being stopped. */
                if (r >= 0)
                        r = append_prop_t(m, "MemorySwapMax", 0);
        }
        if (r >= 0 && s->step->timeout_usec > 0)
                r = append_prop_t(m, "RuntimeMaxUSec", s->step->timeout_usec);
        if (r >= 0 && s->step->user)
                r = append_prop_s(m, "User", s->step->user);
        /* The sandbox. The strict level's extra mounts cost systemd about 15 ms per unit start
         * here, so it is a choice (engine.stepSandbox), not the default. The default level
         * costs about 1.3 ms per unit (bench/run-engine, floor_sandbox): PrivateTmp= most of
         * it (its mount namespace and the dependencies on /tmp and /var/tmp), RestrictSUIDSGID=
         * (a seccomp filter) about 0.4 ms, NoNewPrivileges= nothing measurable. */
        if (r >= 0 && s->sandbox >= STEP_SANDBOX_DEFAULT) {
                r = append_prop_b(m, "PrivateTmp", 1);
                if (r >= 0)
                        r = append_prop_b(m, "NoNewPrivileges", 1);
                if (r >= 0)
                        r = append_prop_b(m, "RestrictSUIDSGID", 1);
        }
        if (r >= 0 && s->sandbox >= STEP_SANDBOX_STRICT) {
                r = append_prop_b(m, "ProtectKernelTunables", 1);
                if (r >= 0)
                        r = append_prop_b(m, "ProtectKernelModules", 1);
                if (r >= 0)
                        r = append_prop_b(m, "ProtectControlGroups", 1);
                if (r >= 0)
                        r = append_prop_s(m, "ProtectHome", "read-only");
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

int unit_result_interpret(const char *result, const char *code, const char *status,
                          int *ret_exit_code, char **ret_result, ActivityState *ret_state,
                          char **ret_reason)
{
        _cleanup_free_ char *reason = NULL;
        ActivityState s = ACTIVITY_FAILED;
        bool exited = streq_ptr(code, "exited");
        int ec = exited && status ? atoi(status) : -1;

        result = result && *result ? result : "unknown";

        if (streq(result, "success") && exited && ec == 0)
                s = ACTIVITY_SUCCEEDED;
        else if (streq(result, "timeout")) {
                s = ACTIVITY_TIMED_OUT;
                reason = strdup("exceeded its time limit (timeoutSeconds)");
        } else if (streq(result, "oom-kill"))
                reason = strdup("killed: memory limit (memoryLimit) exceeded");
        else if (exited)
                (void) asprintf(&reason, "exited with status %i", ec);
        else if (streq_ptr(code, "killed") || streq_ptr(code, "dumped"))
                (void) asprintf(&reason, "%s by signal %s", streq(code, "dumped") ? "dumped core"
                                                                                  : "killed",
                                strempty(status));
        else
                (void) asprintf(&reason, "unit failed (%s)", result);

        free(*ret_result);
        *ret_result = strdup(result);
        *ret_exit_code = ec;
        *ret_state = s;
        *ret_reason = TAKE_PTR(reason);
        return 0;
}

/* Reads the next complete value of m (basic, array, struct or variant) as JSON. */
static int message_read_json(sd_bus_message *m, json_object **ret)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -ENODATA;

        if (type == SD_BUS_TYPE_ARRAY || type == SD_BUS_TYPE_STRUCT ||
            type == SD_BUS_TYPE_VARIANT || type == SD_BUS_TYPE_DICT_ENTRY) {
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                if (type == SD_BUS_TYPE_VARIANT) {
                        r = message_read_json(m, &o);
                        if (r < 0)
                                return r;
                } else {
                        o = json_object_new_array();
                        if (!o)
                                return -ENOMEM;
                        while ((r = sd_bus_message_at_end(m, false)) == 0) {
                                json_object *e = NULL;
                                r = message_read_json(m, &e);
                                if (r < 0)
                                        return r;
                                json_object_array_add(o, e);
                        }
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(o);
                return 0;
        }

        switch (type) {
        case SD_BUS_TYPE_STRING:
        case SD_BUS_TYPE_OBJECT_PATH:
        case SD_BUS_TYPE_SIGNATURE: {
                const char *s;
                r = sd_bus_message_read_basic(m, type, &s);
                if (r >= 0)
                        o = json_object_new_string(s);
                break;
        }
        case SD_BUS_TYPE_BOOLEAN: {
                int b;
                r = sd_bus_message_read_basic(m, type, &b);
                if (r >= 0)
                        o = json_object_new_boolean(b);
                break;
        }
        case SD_BUS_TYPE_UINT64: {
                uint64_t u;
                r = sd_bus_message_read_basic(m, type, &u);
                if (r >= 0)
                        o = json_object_new_uint64(u);
                break;
        }
        case SD_BUS_TYPE_INT64: {
                int64_t i;
                r = sd_bus_message_read_basic(m, type, &i);
                if (r >= 0)
                        o = json_object_new_int64(i);
                break;
        }
        case SD_BUS_TYPE_UINT32:
        case SD_BUS_TYPE_INT32: {
                uint32_t u;
                r = sd_bus_message_read_basic(m, type, &u);
                if (r >= 0)
                        o = json_object_new_int64(type == SD_BUS_TYPE_INT32 ? (int64_t) (int32_t) u
                                                                            : (int64_t) u);
                break;
        }
        case SD_BUS_TYPE_BYTE: {
                uint8_t y;
                r = sd_bus_message_read_basic(m, type, &y);
                if (r >= 0)
                        o = json_object_new_int(y);
                break;
        }
        case SD_BUS_TYPE_DOUBLE: {
                double d;
                r = sd_bus_message_read_basic(m, type, &d);
                if (r >= 0)
                        o = json_object_new_double(d);
                break;
        }
        default:
                r = sd_bus_message_skip(m, (char[]){ type, 0 });
                break;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o); /* NULL (JSON null) for what has no JSON form */
        return 0;
}

/* One property of the call, in unit file terms, added to o. */
static int describe_property(json_object *o, const char *name, json_object *v)
{
        char buf[64];

        if (streq(name, "Environment") || streq(name, "LogExtraFields")) {
                json_object_put(v);
                return 0;
        }
        if (startswith(name, "Exec") && json_object_is_type(v, json_type_array)) {
                /* a(sasb) / a(sasas): the argv of each command. */
                _cleanup_(json_object_putp) json_object *cmds = v;
                json_object *argv = NULL;
                _cleanup_free_ char *key = strndup(name, strlen(name) - (endswith(name, "Ex") ? 2 : 0));

                if (!key)
                        return -ENOMEM;

                for (size_t i = 0; i < json_object_array_length(cmds); i++) {
                        json_object *c = json_object_array_get_idx(cmds, i);
                        json_object *a = json_object_array_get_idx(c, 1);
                        if (!a)
                                continue;
                        if (!argv)
                                argv = json_object_get(a);
                        else {
                                /* Several commands: a list of argvs. */
                                if (!json_object_is_type(json_object_array_get_idx(argv, 0),
                                                         json_type_array)) {
                                        json_object *l = json_object_new_array();
                                        if (!l) {
                                                json_object_put(argv);
                                                return -ENOMEM;
                                        }
                                        json_object_array_add(l, argv);
                                        argv = l;
                                }
                                json_object_array_add(argv, json_object_get(a));
                        }
                }
                json_object_object_add(o, key, argv);
                return 0;
        }
        if (streq(name, "CPUQuotaPerSecUSec") && json_object_is_type(v, json_type_int)) {
                uint64_t u = json_object_get_uint64(v);
                json_object_put(v);
                if (u % 10000 == 0)
                        snprintf(buf, sizeof(buf), "%" PRIu64 "%%", u / 10000);
                else
                        snprintf(buf, sizeof(buf), "%.2f%%", (double) u / 10000.0);
                json_object_object_add(o, "CPUQuota", json_object_new_string(buf));
                return 0;
        }
        if (endswith(name, "USec") && json_object_is_type(v, json_type_int)) {
                /* RuntimeMaxUSec= -> RuntimeMaxSec= */
                uint64_t u = json_object_get_uint64(v);
                _cleanup_free_ char *key = NULL;

                json_object_put(v);
                if (asprintf(&key, "%.*sSec", (int) (strlen(name) - 4), name) < 0)
                        return -ENOMEM;
                if (u % USEC_PER_SEC == 0)
                        json_object_object_add(o, key, json_object_new_uint64(u / USEC_PER_SEC));
                else
                        json_object_object_add(o, key,
                                               json_object_new_double((double) u / USEC_PER_SEC));
                return 0;
        }
        if (startswith(name, "Bind") && json_object_is_type(v, json_type_array)) {
                /* a(ssbt) -> "source:destination" */
                _cleanup_(json_object_putp) json_object *in = v;
                json_object *l = json_object_new_array();
                if (!l)
                        return -ENOMEM;
                for (size_t i = 0; i < json_object_array_length(in); i++) {
                        json_object *b = json_object_array_get_idx(in, i);
                        _cleanup_free_ char *s = NULL;
                        if (asprintf(&s, "%s:%s",
                                     json_object_get_string(json_object_array_get_idx(b, 0)),
                                     json_object_get_string(json_object_array_get_idx(b, 1))) < 0) {
                                json_object_put(l);
                                return -ENOMEM;
                        }
                        json_object_array_add(l, json_object_new_string(s));
                }
                json_object_object_add(o, name, l);
                return 0;
        }
        json_object_object_add(o, name, v);
        return 0;
}

int unit_start_describe(sd_bus *bus, const UnitSpec *spec, json_object **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *unit, *mode;
        int r;

        r = unit_start_message(bus, spec, &m);
        if (r < 0)
                return r;
        r = sd_bus_message_seal(m, 1, 0);
        if (r < 0)
                return r;
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "Unit", json_object_new_string(unit));

        r = sd_bus_message_enter_container(m, 'a', "(sv)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'r', "sv")) > 0) {
                json_object *v = NULL;
                const char *name;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                r = message_read_json(m, &v);
                if (r < 0)
                        return r;
                r = describe_property(o, name, v);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}
