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
        { "list-flows", "", "List the flows in effect", verb_list_flows },
        { "list-triggers", "", "List the triggers and whether they are ready", verb_list_triggers },
        { "status", "TRIGGER", "Show a trigger: condition, last and next fire, runs", verb_status },
        { "fire", "TRIGGER", "Fire a trigger (--input JSON|@FILE, --wait)", verb_fire },
        { "start", "FLOW", "Start a run of a flow (--input JSON|@FILE, --wait)", verb_start },
        { "publish", "TOPIC", "Publish a message on a topic (--input JSON|@FILE, --wait)",
          verb_publish },
        { "runs", "", "List runs (--flow FLOW, --state STATE)", verb_runs },
        { "show", "RUN", "Show a run and its activities", verb_show },
        { "logs", "RUN", "Print a run's journal (-f: follow it)", verb_logs },
        { "cancel", "RUN", "Cancel a run", verb_cancel },
        { "token", "TRIGGER", "Print (--rotate: replace) a webhook token", verb_token },
        { "api-token", "", "Print the REST API token (root only)", verb_api_token },
        { "validate", "FILE...", "Check resource files and print every problem", verb_validate },
        { "submit", "FILE", "Send a resource document to the daemon", verb_submit },
        { "reload", "", "Reload configuration and resources, and wait for it", verb_reload },
        { "graph", "FLOW", "Print a flow's DAG in Graphviz dot", verb_graph },
};

static void help(void)
{
        printf("arkeventctl [OPTIONS...] COMMAND ...\n\n"
               "Control the arkevent host agent over D-Bus (dev.arkonis.ArkEvent1).\n\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-14s %-8s %s\n", verbs[i].name, verbs[i].args, verbs[i].help);
        printf("\nOptions:\n" CTL_COMMON_HELP
               "     --version    Show package version\n"
               "\n'arkeventctl COMMAND --help' describes each command.\n"
               "\nExit status: 0 success, 1 failure, 2 usage error, 3 daemon not reachable,\n"
               "4 no such flow, trigger or run, 5 access denied.\n");
}

int main(int argc, char *argv[])
{
        static const struct option options[] = {
                CTL_COMMON_OPTIONS,
                { "version", no_argument, NULL, 'V' },
                {},
        };
        int c, r;

        log_set_ident("arkeventctl");
        log_set_target_console(true);

        /* Options before the verb; each verb parses its own, and the common ones again. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                if (ctl_common_option(c))
                        continue;
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
        }

        if (optind >= argc) {
                help();
                return CTL_EXIT_USAGE;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind])) {
                        r = verbs[i].func(argc - optind, argv + optind);
                        ctl_pager_close();
                        return r;
                }

        log_error("Unknown command '%s'. See 'arkeventctl --help'.", argv[optind]);
        return CTL_EXIT_USAGE;
}
