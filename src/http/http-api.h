/* SPDX-License-Identifier: MIT */
#pragma once

/* The REST API: routes requests to their handlers. userdata is the Manager. */

#include "http/http-server.h"

int http_api_handler(HttpRequest *req, void *userdata);
