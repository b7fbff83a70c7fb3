/*
 * Exclusion globs. A pattern without '/' matches an entry's name at any
 * depth ("node_modules", "*.o"); a pattern containing '/' matches the path
 * relative to the workspace root, with a leading '/' ignored ("/build",
 * "src/gen/<star>" where <star> is '*'); '*' does not cross '/' there
 * (FNM_PATHNAME). An excluded
 * directory is not descended. The patterns are stored with each snapshot and
 * restore honours the stored ones, so excluded paths are never touched.
 */
#include <fnmatch.h>
#include <string.h>

#include "snap-int.h"

bool exclude_match(char *const *ex, size_t n, const char *rel, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = ex[i];
		if (strchr(p, '/') == NULL) {
			if (fnmatch(p, name, 0) == 0)
				return true;
			continue;
		}
		while (*p == '/')
			p++;
		if (*p != '\0' && fnmatch(p, rel, FNM_PATHNAME) == 0)
			return true;
	}
	return false;
}
