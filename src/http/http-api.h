/* SPDX-License-Identifier: MIT */
#pragma once

/* The REST API: routes requests to their handlers. userdata is the Manager. */

#include "http/http-server.h"

int http_api_handler(HttpRequest *req, void *userdata);

/* The route table, read-only: route i's method and path pattern ("{}" is one segment, "{**}" the
 * rest of the path). Returns false past the last route. */
bool http_api_route(size_t i, const char **ret_method, const char **ret_pattern);

/* The OpenAPI document of the REST API (src/http/openapi.json with the project's version),
 * embedded at build time: NUL-terminated, http_openapi_json_size bytes without the NUL. */
extern const char http_openapi_json[];
extern const size_t http_openapi_json_size;
