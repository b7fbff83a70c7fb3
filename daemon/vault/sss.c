/*
 * The Secret Service backend: read items from org.freedesktop.secrets (GNOME
 * Keyring, KeePassXC, ...) on the daemon's session bus, as stored by
 *   secret-tool store --label=... service nono username NAME target default
 *
 * Calls are synchronous with a short timeout (the lookup happens only for
 * names the vault does not have). The "plain" session algorithm is used:
 * the value crosses the private session bus in the clear, as with any local
 * client; replies carrying it are marked sensitive so sd-bus wipes them on
 * free, and the value is copied straight into the caller's secbuf. Locked
 * items are not unlocked (that would prompt): they are reported as locked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "log.h"
#include "vault-int.h"

#define SS_NAME "org.freedesktop.secrets"
#define SS_PATH "/org/freedesktop/secrets"
#define SS_IFACE "org.freedesktop.Secret.Service"
#define SS_ITEM "org.freedesktop.Secret.Item"
#define SS_SESSION "org.freedesktop.Secret.Session"
#define SS_TIMEOUT_USEC (2 * 1000 * 1000)

struct sss {
	sd_bus *bus;
};

int sss_new(struct sss **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? 0 : -ENOMEM;
}

void sss_free(struct sss *s)
{
	if (s == NULL)
		return;
	sd_bus_flush_close_unref(s->bus);
	free(s);
}

/* Connect on first use, and again after the bus went away. */
static int sss_bus(struct sss *s, struct vault_err *err)
{
	int r;

	if (s->bus != NULL && sd_bus_is_open(s->bus) > 0)
		return 0;
	s->bus = sd_bus_flush_close_unref(s->bus);
	r = sd_bus_open_user(&s->bus);
	if (r < 0) {
		s->bus = NULL;
		return vault_errf(err, -ENOTCONN, "Secret Service: cannot connect to the session bus: %s",
				  strerror(-r));
	}
	sd_bus_set_method_call_timeout(s->bus, SS_TIMEOUT_USEC);
	return 0;
}

static int bus_fail(struct vault_err *err, const char *what, int r, const sd_bus_error *e)
{
	if (e != NULL && sd_bus_error_is_set(e) &&
	    (sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.ServiceUnknown") ||
	     sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.NameHasNoOwner")))
		return vault_errf(err, -ENOTCONN, "Secret Service: no %s on the session bus", SS_NAME);
	return vault_errf(err, r < 0 ? -EIO : r, "Secret Service: %s: %s", what,
			  e != NULL && sd_bus_error_is_set(e) ? e->message : strerror(-r));
}

static void strv_free(char **l)
{
	if (l == NULL)
		return;
	for (char **p = l; *p != NULL; p++)
		free(*p);
	free(l);
}

/* SearchItems with the given attributes; *unlocked and *locked are owned strvs. */
static int search(struct sss *s, const char *name, char ***unlocked, char ***locked,
		  struct vault_err *err)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	int r;

	*unlocked = *locked = NULL;
	r = sd_bus_message_new_method_call(s->bus, &m, SS_NAME, SS_PATH, SS_IFACE, "SearchItems");
	if (r >= 0)
		r = name != NULL
			? sd_bus_message_append(m, "a{ss}", 3, "service", "nono", "username", name,
						"target", "default")
			: sd_bus_message_append(m, "a{ss}", 1, "service", "nono");
	if (r >= 0)
		r = sd_bus_call(s->bus, m, 0, &e, &reply);
	if (r >= 0)
		r = sd_bus_message_read_strv(reply, unlocked);
	if (r >= 0)
		r = sd_bus_message_read_strv(reply, locked);
	if (r < 0) {
		r = bus_fail(err, "SearchItems", r, &e);
		strv_free(*unlocked);
		strv_free(*locked);
		*unlocked = *locked = NULL;
		sd_bus_error_free(&e);
		sd_bus_message_unref(m);
		sd_bus_message_unref(reply);
		return r;
	}
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return 0;
}

static int read_secret(struct sss *s, const char *item, struct secbuf *out, struct vault_err *err)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *session = NULL, *sp = NULL;
	char *session_path = NULL;
	const void *params, *value;
	size_t plen, vlen;
	int r;

	r = sd_bus_call_method(s->bus, SS_NAME, SS_PATH, SS_IFACE, "OpenSession", &e, &reply,
			       "sv", "plain", "s", "");
	if (r >= 0)
		r = sd_bus_message_skip(reply, "v");
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &session);
	if (r >= 0 && (session_path = strdup(session)) == NULL)
		r = -ENOMEM;
	reply = sd_bus_message_unref(reply);
	if (r < 0) {
		r = bus_fail(err, "OpenSession", r, &e);
		goto out;
	}
	r = sd_bus_call_method(s->bus, SS_NAME, item, SS_ITEM, "GetSecret", &e, &reply, "o",
			       session_path);
	if (r < 0) {
		r = bus_fail(err, "GetSecret", r, &e);
		goto out;
	}
	sd_bus_message_sensitive(reply);
	r = sd_bus_message_enter_container(reply, 'r', "oayays");
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &sp);
	if (r >= 0)
		r = sd_bus_message_read_array(reply, 'y', &params, &plen);
	if (r >= 0)
		r = sd_bus_message_read_array(reply, 'y', &value, &vlen);
	if (r < 0) {
		r = bus_fail(err, "GetSecret reply", r, NULL);
		goto out;
	}
	if (vlen > secbuf_cap(out)) {
		r = vault_errf(err, -E2BIG, "Secret Service item too long (> %zu bytes)", secbuf_cap(out));
	} else {
		secbuf_clear(out);
		r = secbuf_append(out, value, vlen);
	}
	explicit_bzero((void *)value, vlen);
out:
	sd_bus_message_unref(reply);
	if (session_path != NULL)
		sd_bus_call_method(s->bus, SS_NAME, session_path, SS_SESSION, "Close", NULL, NULL, "");
	free(session_path);
	sd_bus_error_free(&e);
	return r;
}

int sss_lookup(struct sss *s, const char *name, struct secbuf *out, struct vault_err *err)
{
	char **unlocked = NULL, **locked = NULL;
	int r;

	r = sss_bus(s, err);
	if (r < 0)
		return r;
	r = search(s, name, &unlocked, &locked, err);
	if (r < 0)
		return r;
	if (unlocked != NULL && unlocked[0] != NULL)
		r = read_secret(s, unlocked[0], out, err);
	else if (locked != NULL && locked[0] != NULL)
		r = vault_errf(err, -EACCES, "Secret Service item for %s is locked; unlock the keyring",
			       name);
	else
		r = vault_errf(err, -ENOENT, "no secret named %s", name);
	strv_free(unlocked);
	strv_free(locked);
	return r;
}

/* Item attributes: the username when target is "default" (or absent). */
static int item_name(struct sss *s, const char *item, char **name)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *k, *val, *user = NULL;
	bool other_target = false;
	int r;

	*name = NULL;
	r = sd_bus_get_property(s->bus, SS_NAME, item, SS_ITEM, "Attributes", &e, &reply, "a{ss}");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "{ss}");
	while (r >= 0 && (r = sd_bus_message_read(reply, "{ss}", &k, &val)) > 0) {
		if (strcmp(k, "username") == 0)
			user = val;
		else if (strcmp(k, "target") == 0 && strcmp(val, "default") != 0)
			other_target = true;
	}
	if (r >= 0 && user != NULL && !other_target && (*name = strdup(user)) == NULL)
		r = -ENOMEM;
	sd_bus_message_unref(reply);
	sd_bus_error_free(&e);
	return r < 0 ? r : 0;
}

int sss_list(struct sss *s, int (*fn)(void *ctx, const char *name), void *ctx,
	     struct vault_err *err)
{
	char **unlocked = NULL, **locked = NULL;
	int r;

	r = sss_bus(s, err);
	if (r < 0)
		return r;
	r = search(s, NULL, &unlocked, &locked, err);
	if (r < 0)
		return r;
	for (char **p = unlocked; r == 0 && p != NULL && *p != NULL; p++) {
		char *name = NULL;

		if (item_name(s, *p, &name) < 0 || name == NULL)
			continue;
		r = fn(ctx, name);
		free(name);
	}
	strv_free(unlocked);
	strv_free(locked);
	return r;
}
