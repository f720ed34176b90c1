/*
 * end-1 `GET /v2/`: the API version check (distribution-spec "Determining
 * support"). 200 with an empty JSON object; clients probe it first, so it
 * costs one static response and nothing else. The version header every
 * response carries is added by http.c.
 */

#include "handlers.h"
#include "http.h"

void h_base(struct request *req)
{
    respond_static(req, HTTP_OK, "{}", 2, "application/json");
}
