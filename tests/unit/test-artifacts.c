/* SPDX-License-Identifier: MIT */
/* Artifact paths, confined opening, scanning into the store, and runtime names. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/artifacts.h"
#include "engine/runtime.h"
#include "shared/fileio.h"
#include "tests.h"

static char *tmpdir_new(void)
{
        char t[] = "/tmp/test-artifacts-XXXXXX";
        char *d = mkdtemp(t);
        return d ? strdup(d) : NULL;
}

static void write_text(const char *dir, const char *name, const char *text)
{
        char p[4096];
        FILE *f;

        snprintf(p, sizeof(p), "%s/%s", dir, name);
        f = fopen(p, "we");
        ASSERT_NOT_NULL(f);
        fputs(text, f);
        fclose(f);
}

TEST(path_check)
{
        ASSERT_EQ(artifact_path_check("a.txt"), 0);
        ASSERT_EQ(artifact_path_check("out/deep/result.txt"), 0);
        ASSERT_EQ(artifact_path_check("..a/b..c/...d"), 0);
        ASSERT_EQ(artifact_path_check(""), -EINVAL);
        ASSERT_EQ(artifact_path_check("/etc/passwd"), -EINVAL);
        ASSERT_EQ(artifact_path_check(".."), -EINVAL);
        ASSERT_EQ(artifact_path_check("../x"), -EINVAL);
        ASSERT_EQ(artifact_path_check("a/../../x"), -EINVAL);
        ASSERT_EQ(artifact_path_check("a/.."), -EINVAL);
        ASSERT_EQ(artifact_path_check("./a"), -EINVAL);
        ASSERT_EQ(artifact_path_check("a//b"), -EINVAL);
        ASSERT_EQ(artifact_path_check("a/"), -EINVAL);
}

TEST(open_confined)
{
        _cleanup_free_ char *d = tmpdir_new();
        char p[4096], q[4096], hex[65];
        int fd = -1;

        ASSERT_NOT_NULL(d);
        snprintf(p, sizeof(p), "%s/sub", d);
        ASSERT_EQ(mkdir(p, 0755), 0);
        write_text(d, "sub/file.txt", "abc");
        snprintf(p, sizeof(p), "%s/out", d);
        ASSERT_EQ(symlink("/etc/passwd", p), 0);
        snprintf(p, sizeof(p), "%s/in", d);
        ASSERT_EQ(symlink("sub/file.txt", p), 0);
        snprintf(p, sizeof(p), "%s/subdirlink", d);
        ASSERT_EQ(symlink("/etc", p), 0);

        ASSERT_EQ(artifact_open(d, "sub/file.txt", &fd), 0);
        ASSERT_EQ(sha256_fd(fd, hex), 0);
        ASSERT_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        close(fd);

        ASSERT_EQ(artifact_open(d, "../etc/passwd", &fd), -EINVAL);
        ASSERT_EQ(artifact_open(d, "sub/../../x", &fd), -EINVAL);
        ASSERT_TRUE(artifact_open(d, "out", &fd) < 0);
        ASSERT_TRUE(artifact_open(d, "in", &fd) < 0);
        ASSERT_TRUE(artifact_open(d, "subdirlink/passwd", &fd) < 0);
        ASSERT_EQ(artifact_open(d, "sub", &fd), -EISDIR);
        ASSERT_EQ(artifact_open(d, "missing", &fd), -ENOENT);

        snprintf(q, sizeof(q), "%s", d);
        ASSERT_EQ(rm_rf(q), 0);
}

TEST(scan)
{
        _cleanup_free_ char *d = tmpdir_new(), *db = NULL;
        sd_event *e = NULL;
        Store *s = NULL;
        sqlite3_stmt *st;
        char p[4096];

        ASSERT_NOT_NULL(d);
        ASSERT_TRUE(asprintf(&db, "%s/db", d) > 0);
        ASSERT_EQ(sd_event_new(&e), 0);
        ASSERT_EQ(store_open(e, db, &s), 0);
        ASSERT_EQ(store_exec(s, NULL,
                             "INSERT INTO runs(id, namespace, flow, state, flow_yaml, created_usec) "
                             "VALUES (1, 'default', 'w', 'Running', '', 1)",
                             ""),
                  0);

        snprintf(p, sizeof(p), "%s/ws", d);
        ASSERT_EQ(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/ws/a", d);
        ASSERT_EQ(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/ws", d);
        write_text(p, "one.txt", "1");
        write_text(p, "a/two.txt", "22");
        snprintf(p, sizeof(p), "%s/ws/link", d);
        ASSERT_EQ(symlink("/etc/passwd", p), 0);
        snprintf(p, sizeof(p), "%s/ws", d);

        ASSERT_EQ(artifacts_scan(s, 1, p, "first"), 2);
        ASSERT_EQ(artifacts_scan(s, 1, p, "second"), 0);
        write_text(p, "a/two.txt", "changed");
        write_text(p, "three.txt", "3");
        ASSERT_EQ(artifacts_scan(s, 1, p, "second"), 2);

        ASSERT_EQ(store_query(s, &st,
                              "SELECT path, size, activity FROM artifacts WHERE run_id=1 ORDER BY "
                              "path",
                              ""),
                  0);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 0), "a/two.txt");
        ASSERT_EQ(sqlite3_column_int(st, 1), 7);
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 2), "second");
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 0), "one.txt");
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 2), "first");
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 0), "three.txt");
        ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);

        store_free(s);
        sd_event_unref(e);
        ASSERT_EQ(rm_rf(d), 0);
}

TEST(runtimes)
{
        ConfigRuntime defs[] = {
                { .name = (char *) "sdumont", .type = (char *) "apptainer" },
                { .name = (char *) "hpc", .type = (char *) "singularity",
                  .binary = (char *) "/nonexistent/singularity" },
        };
        Config c = { .runtimes = defs, .n_runtimes = ELEMENTSOF(defs) };
        _cleanup_free_ char *known = NULL, *bin = NULL;
        const char *tried = NULL;
        Runtime rt;

        runtimes_use_config(NULL);
        ASSERT_EQ(runtime_lookup(NULL, &rt), 0);
        ASSERT_EQ(rt.type, RUNTIME_LOCAL);
        ASSERT_EQ(runtime_lookup("systemd", &rt), 0);
        ASSERT_EQ(rt.type, RUNTIME_SYSTEMD);
        ASSERT_EQ(runtime_lookup("sdumont", &rt), -ENOENT);

        runtimes_use_config(&c);
        ASSERT_EQ(runtime_lookup("sdumont", &rt), 0);
        ASSERT_EQ(rt.type, RUNTIME_APPTAINER);
        ASSERT_STREQ(rt.name, "sdumont");
        ASSERT_EQ(runtime_lookup("hpc", &rt), 0);
        ASSERT_EQ(rt.type, RUNTIME_SINGULARITY);
        ASSERT_EQ(runtime_find_binary(&rt, &bin, &tried), -ENOENT);
        ASSERT_STREQ(tried, "/nonexistent/singularity");
        ASSERT_EQ(runtime_lookup("kubernetes", &rt), -ENOENT);
        known = runtimes_known_names();
        ASSERT_STREQ(known, "local, systemd, apptainer, singularity, sdumont, hpc");
        runtimes_use_config(NULL);
}

TEST_MAIN()
