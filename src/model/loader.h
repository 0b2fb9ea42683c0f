/* SPDX-License-Identifier: MIT */
#pragma once

/* Reads resource YAML (several documents per file) into the model, validating fully and
 * reporting every problem with file:line:column (not only the first). */

#include "diag.h"
#include "model.h"

/* Parses the text of one file. name is used in diagnostics and SourceLoc (a path, or a pseudo
 * name like "<workflow>"). Every document yields one ResourceDoc (valid or broken); problems go to
 * diags. Returns 0 when parsing could proceed (even with errors in documents), negative errno on
 * fatal failure (out of memory). */
int resource_text_parse(const char *name, const char *text, size_t len, ResourceDoc ***ret_docs,
                        size_t *ret_n_docs, Diagnostics *diags);

/* Same, reading the file first. An unreadable file is a diagnostic, not a fatal error. */
int resource_file_parse(const char *path, ResourceDoc ***ret_docs, size_t *ret_n_docs,
                        Diagnostics *diags);

/* Builds the registry from documents of several files, checking what spans documents: duplicate
 * names in a namespace, triggers whose targets or upstream flow do not exist, cycles of
 * flow-output triggers. previous may be NULL; when a document is broken and previous holds a
 * resource of the same kind, namespace and name, that previous version stays in effect
 * (all-or-nothing per document). Problems go to diags. */
int registry_build(ResourceDoc *const *docs, size_t n_docs, const Registry *previous,
                   Registry **ret, Diagnostics *diags);

/* Loads every *.yaml / *.yml file of dir (sorted by name) and builds the registry as above. A
 * missing dir is an empty registry. */
int registry_load_dir(const char *dir, const Registry *previous, Registry **ret,
                      Diagnostics *diags);
