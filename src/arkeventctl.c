/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>

#include "build-config.h"
#include "ctl/ctl.h"
#include "shared/log.h"

typedef struct Verb {
        const char *name;
        const char *args;
        const char *help;
        int (*func)(int argc, char *argv[]);
} Verb;

static const Verb verbs[] = {
        { "validate", "FILE...", "Check resource files and print every problem", verb_validate },
        { "reload", "", "Reload configuration and resources, and wait for it", verb_reload },
        { "start", "FLOW", "Start a run of a flow", verb_start },
        { "show", "RUN", "Show a run and its activities", verb_show },
        { "cancel", "RUN", "Cancel a run", verb_cancel },
        { "token", "TRIGGER", "Print (--rotate: replace) a webhook token", verb_token },
        { "api-token", "", "Print the REST API token (root only)", verb_api_token },
};

static void help(void)
{
        printf("arkeventctl [OPTIONS...] COMMAND ...\n\n"
               "Control the arkevent host agent.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-10s %-12s %s\n", verbs[i].name, verbs[i].args, verbs[i].help);
        printf("\nOptions:\n"
               "  -h --help      Show this help\n"
               "     --version   Show package version\n"
               "\nExit status: 0 success, 1 failure, 2 usage error, 3 daemon not reachable.\n");
}

int main(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        int c;

        log_set_ident("arkeventctl");
        log_set_target_console(true);

        /* Options before the verb only; each verb parses its own. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return CTL_EXIT_OK;
                case 'V':
                        printf("arkevent %s\n", PACKAGE_VERSION);
                        return CTL_EXIT_OK;
                default:
                        return CTL_EXIT_USAGE;
                }

        if (optind >= argc) {
                help();
                return CTL_EXIT_USAGE;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind]))
                        return verbs[i].func(argc - optind, argv + optind);

        log_error("Unknown command '%s'. See 'arkeventctl --help'.", argv[optind]);
        return CTL_EXIT_USAGE;
}
