/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers over libyaml's document API (nodes keep their marks, so every problem can name
 * its line and column). */

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

/* The value of key in a mapping node, or NULL; ret_key gets the key node. */
yaml_node_t *yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key,
                          yaml_node_t **ret_key);

static inline const char *yaml_scalar(yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE ? (const char *) n->data.scalar.value : NULL;
}

/* A plain scalar that YAML reads as null (~, null, empty). */
bool yaml_scalar_is_null(yaml_node_t *n);

/* Converts a node to JSON: plain scalars become numbers, booleans or null as YAML 1.1 reads them;
 * quoted scalars stay strings. */
json_object *yaml_node_to_json(yaml_document_t *doc, yaml_node_t *n);

/* Parses a plain integer scalar. */
int yaml_scalar_to_int64(yaml_node_t *n, int64_t *ret);
/* Parses a boolean scalar (true/false/yes/no/on/off). */
int yaml_scalar_to_bool(yaml_node_t *n, bool *ret);
