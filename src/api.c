/* api.c - the route table and the handlers that need no database. */
#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "api.h"
#include "http.h"
#include "version.h"

static void api_healthz(struct np_request *req, struct np_response *resp)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", "ok");
	http_respond_json(resp, 200, o);
}

static void api_version(struct np_request *req, struct np_response *resp)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", NP_NAME);
	cJSON_AddStringToObject(o, "version", NP_VERSION);
	cJSON_AddNumberToObject(o, "libpq", PQlibVersion());
	cJSON_AddStringToObject(o, "api", "v1");
	http_respond_json(resp, 200, o);
}

static const struct np_route api_table[] = {
	{ "GET", "/healthz", api_healthz, 0, "healthz" },
	{ "GET", "/api/v1/version", api_version, 0, "version" },
};

const struct np_route *api_routes(size_t *n)
{
	*n = sizeof(api_table) / sizeof(api_table[0]);
	return api_table;
}
