/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <sys/stat.h>

#include "ctl.h"
#include "model/loader.h"
#include "shared/json-util.h"
#include "shared/log.h"

static void validate_help(void)
{
        printf("arkeventctl validate [OPTIONS...] FILE|DIRECTORY...\n\n"
               "Check resource files (ArkFlow, ArkEvent, AkoFlow workflows) and print every\n"
               "problem as file:line:column. References between the files given (targets,\n"
               "upstream flows, duplicate names, flow-output cycles) are checked too; a\n"
               "directory stands for its *.yaml and *.yml files.\n\n"
               "Options:\n"
               "  -h --help    Show this help\n"
               "  -q --quiet   Print the problems only, no summary\n"
               "     --json   Print the problems as JSON on standard output\n\n"
               "Exit status: 0 if there is no error, 1 if there is any, 2 on bad usage.\n");
}

static int parse_path(const char *path, ResourceDoc ***docs, size_t *n_docs, Diagnostics *diags)
{
        ResourceDoc **more = NULL, **nd;
        size_t n_more = 0;
        struct stat st;
        int r;

        if (stat(path, &st) >= 0 && S_ISDIR(st.st_mode))
                return resource_dir_parse(path, docs, n_docs, diags);

        r = resource_file_parse(path, &more, &n_more, diags);
        if (r < 0 || n_more == 0)
                return r;
        nd = realloc(*docs, (*n_docs + n_more + 1) * sizeof(ResourceDoc *));
        if (!nd) {
                resource_docs_free(more, n_more);
                return -ENOMEM;
        }
        memcpy(nd + *n_docs, more, n_more * sizeof(ResourceDoc *));
        *docs = nd;
        *n_docs += n_more;
        free(more);
        return 0;
}

static const char *plural(size_t n, const char *one, const char *many)
{
        return n == 1 ? one : many;
}

int verb_validate(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "quiet", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                {},
        };
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_(registry_freep) Registry *reg = NULL;
        ResourceDoc **docs = NULL;
        size_t n_docs = 0, n_read = 0, n_valid = 0, n_warnings;
        bool quiet = false;
        int c, r = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hq", options, NULL)) >= 0) {
                if (ctl_common_option(c))
                        continue;
                switch (c) {
                case 'h':
                        validate_help();
                        return CTL_EXIT_OK;
                case 'q':
                        quiet = true;
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                log_error("No files given. See 'arkeventctl validate --help'.");
                return CTL_EXIT_USAGE;
        }

        for (int i = optind; i < argc && r >= 0; i++)
                r = parse_path(argv[i], &docs, &n_docs, &diags);
        if (r >= 0)
                r = registry_build(docs, n_docs, NULL, &reg, &diags);
        for (size_t i = 0; i < n_docs; i++) {
                if (!docs[i]->unreadable)
                        n_read++;
                if (docs[i]->flow || docs[i]->trigger)
                        n_valid++;
        }
        resource_docs_free(docs, n_docs);
        if (r < 0) {
                log_error_errno(r, "Failed to validate: %m");
                return CTL_EXIT_FAILURE;
        }

        diag_sort(&diags);
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                json_object *items = json_object_new_array();
                for (size_t i = 0; i < diags.n; i++) {
                        const Diagnostic *d = &diags.items[i];
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "file", json_object_new_string(d->file));
                        json_object_object_add(e, "line", json_object_new_int((int) d->line));
                        json_object_object_add(e, "column", json_object_new_int((int) d->column));
                        json_object_object_add(
                                e, "severity",
                                json_object_new_string(d->severity == DIAG_ERROR ? "error"
                                                                                 : "warning"));
                        json_object_object_add(e, "message", json_object_new_string(d->message));
                        json_object_array_add(items, e);
                }
                json_object_object_add(o, "documents", json_object_new_int64((int64_t) n_read));
                json_object_object_add(o, "valid", json_object_new_int64((int64_t) n_valid));
                json_object_object_add(o, "errors", json_object_new_int64((int64_t) diags.n_errors));
                json_object_object_add(o, "problems", items);
                ctl_print_json(o);
                return diags.n_errors > 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
        }
        diag_print(&diags, stderr);
        n_warnings = diags.n - diags.n_errors;
        if (!quiet)
                fprintf(stderr, "%zu %s, %zu valid: %zu %s, %zu %s.\n", n_read,
                        plural(n_read, "document", "documents"), n_valid, diags.n_errors,
                        plural(diags.n_errors, "error", "errors"), n_warnings,
                        plural(n_warnings, "warning", "warnings"));
        return diags.n_errors > 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}
