/* JSON form of struct sandbox_report (what is and is not enforced). */
#include "sandbox.h"

#include <json-c/json.h>

static int report_add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -1;
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

struct json_object *sandbox_report_to_json(const struct sandbox_report *r)
{
	struct json_object *o = json_object_new_object();
	struct json_object *feats = json_object_new_object();
	int rc = 0;

	if (!o || !feats) {
		json_object_put(o);
		json_object_put(feats);
		return NULL;
	}
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		struct json_object *it = json_object_new_object();

		if (!it) {
			rc = -1;
			break;
		}
		rc |= report_add(it, "enforced", json_object_new_boolean(r->items[i].enforced));
		rc |= report_add(it, "detail", json_object_new_string(r->items[i].detail));
		/* A feature reported twice (e.g. several optional paths) keeps the last. */
		if (rc == 0)
			rc = report_add(feats, r->items[i].feature, it);
		else
			json_object_put(it);
	}
	rc |= report_add(o, "landlock_abi", json_object_new_int(r->landlock_abi));
	rc |= report_add(o, "best_effort", json_object_new_boolean(r->best_effort));
	if (report_add(o, "features", feats) != 0)
		rc = -1;
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
