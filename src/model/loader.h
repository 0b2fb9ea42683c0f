/* SPDX-License-Identifier: MIT */
#pragma once

/* Reads resource YAML (several documents per file) into the model, validating fully and
 * reporting every problem with file:line:column (not only the first). */

#include "diag.h"
#include "model.h"

/* Parses the text of one file. name is used in diagnostics and SourceLoc (a path, or a pseudo
 * name like "<workflow>"). Every document yields one ResourceDoc (valid or broken); a YAML syntax
 * error ends the file with an unreadable placeholder (see ResourceDoc). Problems go to diags.
 * Returns 0 when parsing could proceed (even with errors in documents), negative errno on fatal
 * failure (out of memory). */
int resource_text_parse(const char *name, const char *text, size_t len, ResourceDoc ***ret_docs,
                        size_t *ret_n_docs, Diagnostics *diags);

/* Same, reading the file first. An unreadable file is a diagnostic and a single unreadable
 * placeholder, not a fatal error. */
int resource_file_parse(const char *path, ResourceDoc ***ret_docs, size_t *ret_n_docs,
                        Diagnostics *diags);

/* Parses every *.yaml / *.yml file of dir (sorted by name, hidden files skipped) and appends the
 * documents to *docs and *n_docs. A missing dir adds nothing; other problems reading it are
 * diagnostics. Returns negative errno only on fatal failure (out of memory). */
int resource_dir_parse(const char *dir, ResourceDoc ***docs, size_t *n_docs, Diagnostics *diags);

/* Frees an array of documents as the functions above return it. */
void resource_docs_free(ResourceDoc **docs, size_t n_docs);

/* Builds the registry from documents of several files, checking what spans documents: duplicate
 * names in a namespace, triggers whose targets or upstream flow do not exist, cycles of
 * flow-output triggers. previous may be NULL; when a document is broken and previous holds a
 * resource of the same kind, namespace and name, that previous version stays in effect
 * (all-or-nothing per document), with a warning that says so. Likewise, what previous took from
 * a file that now cannot be read to its end stays, unless a readable document names it. Problems
 * go to diags.
 *
 * A trigger whose targets or upstream flow do not exist is an error but stays in the registry
 * (its status says why it cannot fire). A flow-output trigger on a cycle of flows (x fires y,
 * which fires x) is an error and is left out, since it would fire forever. */
int registry_build(ResourceDoc *const *docs, size_t n_docs, const Registry *previous,
                   Registry **ret, Diagnostics *diags);

/* Loads every *.yaml / *.yml file of dir (sorted by name) and builds the registry as above. A
 * missing dir is an empty registry. */
int registry_load_dir(const char *dir, const Registry *previous, Registry **ret,
                      Diagnostics *diags);
