/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>

#include "build-config.h"
#include "daemon/manager.h"
#include "shared/log.h"

static const char *arg_config = NULL;
static bool arg_dump_config = false;

static void help(void)
{
        printf("arkeventd [OPTIONS...]\n\n"
               "The arkevent host agent: turns webhooks, schedules, flow completions and topic\n"
               "messages into pipeline runs, each step a transient systemd unit.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "  -c --config=PATH       Configuration file (default: %s)\n"
               "     --log-level=LEVEL   debug, info, notice, warning, err\n"
               "     --dump-config       Print the effective configuration and exit\n"
               "\nSee arkeventd(8).\n",
               CONFIG_FILE);
}

static int parse_argv(int argc, char *argv[])
{
        enum { ARG_VERSION = 0x100, ARG_LOG_LEVEL, ARG_DUMP_CONFIG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "dump-config", no_argument, NULL, ARG_DUMP_CONFIG },
                {},
        };
        int c, l;

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("arkevent %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        l = log_parse_level(optarg);
                        if (l < 0)
                                return log_error_errno(l, "Unknown log level: %s", optarg);
                        log_set_max_level(l);
                        break;
                case ARG_DUMP_CONFIG:
                        arg_dump_config = true;
                        break;
                default:
                        return -EINVAL;
                }

        if (optind < argc)
                return log_error_errno(EINVAL, "%s takes no positional arguments.", argv[0]);
        return 1;
}

static int run(int argc, char *argv[])
{
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        log_set_ident("arkeventd");
        log_open();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        if (arg_dump_config) {
                Config c;
                r = config_init(&c);
                if (r < 0)
                        return log_oom();
                r = config_load(&c, arg_config ?: CONFIG_FILE);
                if (r >= 0)
                        config_dump(&c, stdout);
                config_done(&c);
                return r < 0 ? r : 0;
        }

        r = manager_new(arg_config, &m);
        if (r < 0)
                return r;

        r = manager_startup(m);
        if (r < 0)
                return r;

        return manager_run(m);
}

int main(int argc, char *argv[])
{
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : r;
}
