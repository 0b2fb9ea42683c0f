/* SPDX-License-Identifier: MIT */
#include <getopt.h>

#include "ctl.h"
#include "model/loader.h"
#include "shared/log.h"

int verb_validate(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "quiet", no_argument, NULL, 'q' },
                {},
        };
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_(registry_freep) Registry *reg = NULL;
        ResourceDoc **all = NULL;
        size_t n_all = 0, n_valid = 0;
        bool quiet = false;
        int c, r = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("arkeventctl validate [--quiet] FILE...\n\n"
                               "Check resource files (ArkFlow, ArkEvent, AkoFlow workflows) and "
                               "print every\nproblem as file:line:column. References between "
                               "the files given are checked\ntoo. Exits 1 if any problem is an "
                               "error.\n");
                        return CTL_EXIT_OK;
                case 'q':
                        quiet = true;
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }
        if (optind >= argc) {
                log_error("No files given. See 'arkeventctl validate --help'.");
                return CTL_EXIT_USAGE;
        }

        for (int i = optind; i < argc && r >= 0; i++) {
                ResourceDoc **docs = NULL, **na;
                size_t nd = 0;

                r = resource_file_parse(argv[i], &docs, &nd, &diags);
                if (r < 0)
                        break;
                na = realloc(all, (n_all + nd + 1) * sizeof(ResourceDoc *));
                if (!na) {
                        for (size_t k = 0; k < nd; k++)
                                resource_doc_free(docs[k]);
                        free(docs);
                        r = -ENOMEM;
                        break;
                }
                all = na;
                for (size_t k = 0; k < nd; k++)
                        all[n_all++] = docs[k];
                free(docs);
        }
        if (r >= 0)
                r = registry_build(all, n_all, NULL, &reg, &diags);
        for (size_t i = 0; i < n_all; i++) {
                if (all[i]->flow || all[i]->trigger)
                        n_valid++;
                resource_doc_free(all[i]);
        }
        free(all);
        if (r < 0) {
                log_error_errno(r, "Failed to validate: %m");
                return CTL_EXIT_FAILURE;
        }

        diag_sort(&diags);
        diag_print(&diags, stderr);
        if (!quiet)
                fprintf(stderr, "%zu document%s, %zu valid; %zu error%s, %zu warning%s.\n", n_all,
                        n_all == 1 ? "" : "s", n_valid, diags.n_errors,
                        diags.n_errors == 1 ? "" : "s", diags.n - diags.n_errors,
                        diags.n - diags.n_errors == 1 ? "" : "s");
        return diags.n_errors > 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}
