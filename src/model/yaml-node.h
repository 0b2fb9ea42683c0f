/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers over libyaml's document API: nodes keep their marks, so every problem can name
 * its line and column.
 *
 * Two things about libyaml's document trees matter here. An alias is the very node its anchor
 * names, so a tree may share nodes (a few lines can stand for billions of values) or even contain
 * itself; whatever walks a tree generically must bound its depth and its work. And marks count
 * characters, not bytes; TextCursor maps them back to the UTF-8 source. */

#include <json-c/json.h>
#include <yaml.h>

#include "shared/macro.h"

static inline void yaml_parser_deletep(yaml_parser_t *p)
{
        yaml_parser_delete(p);
}

static inline void yaml_document_deletep(yaml_document_t *d)
{
        yaml_document_delete(d);
}

#define YAML_SEQ_FOREACH(it, n)                                                                   \
        for (yaml_node_item_t *it = (n)->data.sequence.items.start;                               \
             it < (n)->data.sequence.items.top; it++)

#define YAML_MAP_FOREACH(pair, n)                                                                 \
        for (yaml_node_pair_t *pair = (n)->data.mapping.pairs.start;                              \
             pair < (n)->data.mapping.pairs.top; pair++)

/* 1-based positions, as diagnostics print them. */
static inline unsigned yaml_node_line(const yaml_node_t *n)
{
        return (unsigned) n->start_mark.line + 1;
}

static inline unsigned yaml_node_column(const yaml_node_t *n)
{
        return (unsigned) n->start_mark.column + 1;
}

static inline size_t yaml_seq_length(const yaml_node_t *n)
{
        return (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
}

static inline size_t yaml_map_length(const yaml_node_t *n)
{
        return (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* The value of key in a mapping node, or NULL; ret_key (may be NULL) gets the key node. */
yaml_node_t *yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key,
                          yaml_node_t **ret_key);

static inline const char *yaml_scalar(yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE ? (const char *) n->data.scalar.value : NULL;
}

/* A scalar written without quotes or block indicators: the only kind YAML reads as a number,
 * boolean or null. */
bool yaml_scalar_is_plain(const yaml_node_t *n);

/* A plain scalar that YAML reads as null (~, null, empty). */
bool yaml_scalar_is_null(yaml_node_t *n);

/* Bounds of yaml_node_to_json(): resources are small, and anything deeper or larger is a mistake
 * or an attack (an alias that contains itself, aliases that multiply). */
#define YAML_JSON_DEPTH_MAX 64
#define YAML_JSON_VALUES_MAX 100000

/* Converts a node to JSON: plain scalars become numbers, booleans or null as YAML 1.1 reads them;
 * quoted scalars stay strings. A null node gives *ret = NULL (JSON null). Returns 0, -ENOMEM, or,
 * with *ret_bad (may be NULL) set to the node at fault: -ELOOP (nested deeper than
 * YAML_JSON_DEPTH_MAX), -E2BIG (more than YAML_JSON_VALUES_MAX values), -EINVAL (a mapping key
 * that is not a scalar), -EEXIST (a mapping key given twice). */
int yaml_node_to_json(yaml_document_t *doc, yaml_node_t *n, json_object **ret,
                      yaml_node_t **ret_bad);

/* Parses an integer scalar (decimal, optional sign). */
int yaml_scalar_to_int64(yaml_node_t *n, int64_t *ret);
/* Parses a boolean scalar (true/false/yes/no/on/off, any case). */
int yaml_scalar_to_bool(yaml_node_t *n, bool *ret);

/* Maps libyaml's character indexes to byte offsets of the UTF-8 text it parsed. Moving is
 * proportional to the distance moved, so walking a file front to back costs one pass. */
typedef struct TextCursor {
        const char *text;
        size_t len;
        size_t chars; /* the character index of ... */
        size_t bytes; /* ... this byte offset */
} TextCursor;

void text_cursor_init(TextCursor *c, const char *text, size_t len);
size_t text_cursor_seek(TextCursor *c, size_t index);

/* The source position (1-based) of the character at offset in the value of scalar n, following
 * its style: block scalars, folded lines, quotes and escapes. An offset past the last visible
 * character gives the position just after it. */
void yaml_scalar_locate(TextCursor *c, const yaml_node_t *n, size_t offset, unsigned *ret_line,
                        unsigned *ret_column);
